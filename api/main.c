/* cadenza-api: the HTTP API, and the schema migration runner.
 *
 *   cadenza-api [serve]   serve HTTP on CADENZA_API_LISTEN until SIGINT/SIGTERM
 *   cadenza-api migrate   apply migrations/ to CADENZA_DATABASE_URL and exit */
#include <curl/curl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/db.h"
#include "../common/kafka.h"
#include "../common/log.h"
#include "server.h"

static int migrate(const cz_config *cfg) {
    cz_err err;
    PGconn *c = cz_db_connect(cfg->database_url, &err);
    if (!c) {
        fprintf(stderr, "cadenza-api migrate: %s\n", err.msg);
        return 1;
    }
    int n = cz_db_migrate(c, cfg->migrations_dir, &err);
    PQfinish(c);
    if (n < 0) {
        fprintf(stderr, "cadenza-api migrate: %s\n", err.msg);
        return 1;
    }
    printf("cadenza-api migrate: %d migration%s applied\n", n, n == 1 ? "" : "s");
    return 0;
}

static int serve(const cz_config *cfg) {
    /* Block the stop signals before any thread exists, so every thread
     * inherits the mask and only sigwait() below receives them. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    cz_err err;
    cz_api api = {.cfg = cfg};
    if (cz_netguard_parse(cfg->webhook_allow, &api.guard, &err)) {
        cz_log_error("%s", err.msg);
        return 1;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT); /* URL parsing for webhook URLs */
    if (!(api.db = cz_db_pool_new(cfg->database_url, cfg->api_threads, &err))) {
        cz_log_error("%s", err.msg);
        return 1;
    }
    /* Readiness only; the producer never produces (jobs go via the outbox). */
    if (!(api.kafka = cz_kafka_producer(cfg->kafka_brokers, NULL, NULL, &err))) {
        cz_log_error("%s", err.msg);
        cz_db_pool_free(api.db);
        return 1;
    }
    struct MHD_Daemon *d = cz_server_start(&api, &err);
    if (!d) {
        cz_log_error("%s", err.msg);
        rd_kafka_destroy(api.kafka);
        cz_db_pool_free(api.db);
        return 1;
    }
    cz_log_info("listening on %s with %d threads", cfg->api_listen, cfg->api_threads);

    int sig;
    sigwait(&set, &sig);
    cz_log_info("signal %d: finishing requests in flight and stopping", sig);

    MHD_stop_daemon(d); /* waits for the request threads */
    rd_kafka_destroy(api.kafka);
    cz_db_pool_free(api.db);
    return 0;
}

int main(int argc, char **argv) {
    cz_config cfg;
    cz_config_load(&cfg);
    cz_log_init("api");
    if (argc > 1 && !strcmp(argv[1], "migrate"))
        return migrate(&cfg);
    if (argc > 1 && strcmp(argv[1], "serve")) {
        fprintf(stderr, "usage: cadenza-api [serve|migrate]\n");
        return 2;
    }
    return serve(&cfg);
}
