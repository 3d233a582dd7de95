/* cadenza-scheduler: moves jobs through their lives.
 *
 * Loops, each on its own thread with its own Postgres session: the
 * outbox relay (Postgres -> Kafka), the status-event consumer (Kafka ->
 * Postgres), the sweeper (lease expiry, clean-up), the webhook dispatcher
 * (due deliveries -> HTTP), the autoscaler (Kafka lag -> each pool's
 * desired replicas, autoscaler.h), the metrics collector (collector.h; GET
 * /metrics on CADENZA_METRICS_LISTEN), playlist precomputation (the most
 * requested playlists kept fresh in Redis, precompute.h), and in local
 * mode the supervisor of the worker processes (supervisor.h). SIGINT/SIGTERM stop them all: the
 * relay flushes what is in flight, the consumer commits its offsets, the
 * dispatcher records the attempts that finished, the supervisor drains its
 * workers, and the process exits. */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>

#include "common/config.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "scheduler/autoscaler.h"
#include "scheduler/collector.h"
#include "scheduler/events.h"
#include "scheduler/precompute.h"
#include "scheduler/relay.h"
#include "scheduler/supervisor.h"
#include "scheduler/sweeper.h"
#include "scheduler/webhooks.h"

static atomic_bool stop;

static const cz_config *config;
static cz_webhooks *dispatcher;

static void *relay_thread(void *arg) {
    (void)arg;
    cz_relay_run(config, &stop);
    return NULL;
}

static void *sweeper_thread(void *arg) {
    (void)arg;
    cz_sweeper_run(config, &stop);
    return NULL;
}

static void *supervisor_thread(void *arg) {
    (void)arg;
    cz_supervisor_run(config, &stop);
    return NULL;
}

static void *autoscaler_thread(void *arg) {
    (void)arg;
    cz_autoscaler_run(config, &stop);
    return NULL;
}

static void *collector_thread(void *arg) {
    (void)arg;
    cz_collector_run(config, &stop);
    return NULL;
}

static void *precompute_thread(void *arg) {
    (void)arg;
    cz_precompute_run(config, &stop);
    return NULL;
}

static void *events_thread(void *arg) {
    (void)arg;
    cz_events_run(config, &stop);
    return NULL;
}

static void *webhooks_thread(void *arg) {
    (void)arg;
    cz_webhooks_run(dispatcher, &stop);
    return NULL;
}

int main(void) {
    cz_mem_init();
    cz_config cfg;
    cz_config_load(&cfg);
    cz_log_init("scheduler");
    config = &cfg;
    cz_err err;
    if (!(dispatcher = cz_webhooks_new(&cfg, &err))) {
        cz_log_error("webhooks: %s", err.msg);
        return 1;
    }

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL); /* inherited by every thread */

    /* Scheduling matters more than its metrics: a listener that cannot
     * bind is logged (and its scrape target shows down), not fatal. */
    if (cz_metrics_serve(cz_env("CADENZA_METRICS_LISTEN", NULL), &err))
        cz_log_error("%s: serving no metrics", err.msg);
    pthread_t relay, events, sweeper, webhooks, supervisor, autoscaler, collector, precompute;
    if (pthread_create(&relay, NULL, relay_thread, NULL) ||
        pthread_create(&events, NULL, events_thread, NULL) ||
        pthread_create(&sweeper, NULL, sweeper_thread, NULL) ||
        pthread_create(&webhooks, NULL, webhooks_thread, NULL) ||
        pthread_create(&supervisor, NULL, supervisor_thread, NULL) ||
        pthread_create(&autoscaler, NULL, autoscaler_thread, NULL) ||
        pthread_create(&collector, NULL, collector_thread, NULL) ||
        pthread_create(&precompute, NULL, precompute_thread, NULL)) {
        cz_log_error("cannot start threads");
        return 1;
    }
    cz_log_info("scheduler running");
    int sig;
    sigwait(&set, &sig);
    cz_log_info("signal %d: stopping", sig);
    atomic_store(&stop, true);
    pthread_join(relay, NULL);
    pthread_join(events, NULL);
    pthread_join(sweeper, NULL);
    pthread_join(webhooks, NULL);
    cz_webhooks_free(dispatcher);
    pthread_join(supervisor, NULL);
    pthread_join(autoscaler, NULL);
    pthread_join(collector, NULL);
    pthread_join(precompute, NULL);
    cz_log_info("scheduler stopped");
    return 0;
}
