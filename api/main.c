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

#include "api/committer.h"
#include "api/keycache.h"
#include "api/ratelimit.h"
#include "api/registry.h"
#include "api/server.h"
#include "api/sse.h"
#include "common/config.h"
#include "common/db/db.h"
#include "common/db/migrate.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/playlist/service.h"

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
    /* Submissions are committed in groups (committer.h); two committers
     * let one batch execute while the other waits for its WAL flush. */
    api.committer = cz_committer_start(cfg->database_url, 2, cfg->api_batch_max, &err);
    api.redis = cz_redis_pool_new(cfg->redis_url, cfg->api_threads, cfg->rate_limit_timeout_ms);
    api.ratelimit = cz_ratelimit_new(api.redis);
    api.keys = cz_keycache_new(cfg->api_key_cache_ms);
    api.models = cz_registry_new(api.db, cfg->api_models_cache_ms);
    api.sse = api.committer ? cz_sse_start(cfg, &err) : NULL;
    api.playlists =
        api.sse ? cz_playlists_start(cfg->database_url, cfg->playlist_sync_ms, &err) : NULL;
    struct MHD_Daemon *d =
        api.committer && api.sse && api.playlists ? cz_server_start(&api, &err) : NULL;
    if (!d) {
        cz_log_error("%s", err.msg);
        cz_sse_stop(api.sse);
        cz_sse_free(api.sse);
        cz_playlists_stop(api.playlists);
        cz_keycache_free(api.keys);
        cz_registry_free(api.models);
        cz_committer_stop(api.committer);
        cz_ratelimit_free(api.ratelimit);
        cz_redis_pool_free(api.redis);
        rd_kafka_destroy(api.kafka);
        cz_db_pool_free(api.db);
        return 1;
    }
    cz_log_info("listening on %s with %d threads; rate limit %d/s, burst %d, fail %s when "
                "Redis is down",
                cfg->api_listen, cfg->api_threads, cfg->rate_limit_per_s, cfg->rate_limit_burst,
                cfg->rate_limit_fail_open ? "open" : "closed");

    int sig;
    sigwait(&set, &sig);
    cz_log_info("signal %d: finishing requests in flight and stopping", sig);

    cz_sse_stop(api.sse); /* ends the event streams, so their connections can close */
    MHD_stop_daemon(d);   /* waits for the request threads */
    cz_sse_free(api.sse);
    cz_playlists_stop(api.playlists);
    cz_committer_stop(api.committer);
    cz_ratelimit_free(api.ratelimit);
    cz_redis_pool_free(api.redis);
    cz_keycache_free(api.keys);
    cz_registry_free(api.models);
    rd_kafka_destroy(api.kafka);
    cz_db_pool_free(api.db);
    return 0;
}

int main(int argc, char **argv) {
    cz_mem_init();
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
