/* The metrics collector: see collector.h.
 *
 * Counters start at zero when the scheduler starts (as Prometheus expects
 * of a counter: rate() handles the reset) and follow job_events, the
 * append-only history of every applied event, by id: each look reads the
 * events after the last id seen. An event's state is the state the job
 * entered; the time since the job's previous event is the time it spent in
 * the state it left, which gives the per-stage histogram
 * (stage="queued", "generating", "postprocessing", ...); the time from
 * submission to a terminal event is stage="end_to_end". Audio and compute
 * seconds come from the usage ledger row a terminal job gets.
 *
 * Several schedulers would each count every event; in a cluster, scrape
 * one (the metrics are the same) or sum with care. */
#include "scheduler/collector.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/db/db.h"
#include "common/db/jobs.h"
#include "common/db/outbox.h"
#include "common/db/pools.h"
#include "common/log.h"
#include "common/metrics.h"

#define BATCH 5000

static void label(char *out, size_t n, const char *k, const char *v) {
    snprintf(out, n, "%s=\"%.60s\"", k, v);
}

/* The id to start after: the newest event now. */
static long long newest_event(PGconn *db) {
    cz_err err;
    return cz_db_job_events_newest(db, &err);
}

static void count_events(PGconn *db, long long *last, double cost_per_s) {
    cz_err err;
    PGresult *r = cz_db_job_events_after(db, *last, BATCH, &err);
    if (!r) {
        cz_log_warn("metrics: %s", err.msg);
        return;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        *last = atoll(PQgetvalue(r, i, 0));
        const char *event = PQgetvalue(r, i, 1), *state = PQgetvalue(r, i, 2),
                   *left = PQgetvalue(r, i, 3), *cls = PQgetvalue(r, i, 6);
        if (!strcmp(event, "progress"))
            continue; /* reports where the job is; it does not move */
        char l[128];
        label(l, sizeof l, "state", state);
        cz_metric_add(cz_metric_counter("cadenza_jobs_total",
                                        "Jobs that entered each state (transitions applied).", l),
                      1);
        if (strcmp(left, state)) {
            label(l, sizeof l, "stage", left);
            cz_metric_observe(cz_metric_histogram("cadenza_job_duration_seconds",
                                                  "Time jobs spent in each stage, and from "
                                                  "submission to the end (stage=\"end_to_end\").",
                                                  l, cz_metrics_latency_buckets,
                                                  cz_metrics_latency_nbuckets),
                              atof(PQgetvalue(r, i, 4)));
        }
        bool terminal = !strcmp(state, "succeeded") || !strcmp(state, "failed") ||
                        !strcmp(state, "canceled") || !strcmp(state, "rejected");
        if (terminal) {
            label(l, sizeof l, "stage", "end_to_end");
            cz_metric_observe(cz_metric_histogram("cadenza_job_duration_seconds", "", l,
                                                  cz_metrics_latency_buckets,
                                                  cz_metrics_latency_nbuckets),
                              atof(PQgetvalue(r, i, 5)));
        }
        if (!strcmp(event, "retry") && cls[0]) {
            label(l, sizeof l, "class", cls);
            cz_metric_add(cz_metric_counter("cadenza_job_retries_total",
                                            "Attempts that failed and were retried, by class.", l),
                          1);
        }
        if (!strcmp(state, "failed")) {
            label(l, sizeof l, "class", cls[0] ? cls : "unknown");
            cz_metric_add(cz_metric_counter("cadenza_job_failures_total",
                                            "Jobs that ended failed, by failure class.", l),
                          1);
        }
        double audio = atof(PQgetvalue(r, i, 7)), compute = atof(PQgetvalue(r, i, 8)) / 1000.0;
        if (terminal && audio >= 0) {
            cz_metric_add(cz_metric_counter("cadenza_audio_seconds_total",
                                            "Seconds of audio delivered by succeeded jobs.", ""),
                          audio);
            cz_metric_add(cz_metric_counter("cadenza_compute_seconds_total",
                                            "Worker seconds spent on jobs that ended.", ""),
                          compute);
        }
    }
    PQclear(r);
    double audio_min =
        cz_metric_value(cz_metric_counter("cadenza_audio_seconds_total", "", "")) / 60.0;
    double compute = cz_metric_value(cz_metric_counter("cadenza_compute_seconds_total", "", ""));
    cz_metric_set(cz_metric_gauge("cadenza_cost_per_audio_minute",
                                  "Compute cost per minute of audio delivered since start "
                                  "(CADENZA_COST_PER_COMPUTE_S per worker second).",
                                  ""),
                  audio_min > 0 ? compute * cost_per_s / audio_min : 0);
}

static void set_gauges(PGconn *db) {
    cz_err err;
    PGresult *r = cz_db_job_count_by_state(
        db, "{queued,dispatched,generating,generated,postprocessing,in_review}", &err);
    for (int i = 0; r && i < PQntuples(r); i++) {
        char l[96];
        label(l, sizeof l, "state", PQgetvalue(r, i, 0));
        cz_metric_set(
            cz_metric_gauge("cadenza_jobs_in_state", "Jobs in each unfinished state now.", l),
            atof(PQgetvalue(r, i, 1)));
    }
    PQclear(r);
    r = cz_db_outbox_backlogs(db, &err);
    if (r) {
        cz_metric_set(cz_metric_gauge("cadenza_outbox_backlog",
                                      "Messages stored but not yet published to Kafka.", ""),
                      atof(PQgetvalue(r, 0, 0)));
        cz_metric_set(cz_metric_gauge("cadenza_review_queue_oldest_seconds",
                                      "Age of the oldest job waiting in review.", ""),
                      atof(PQgetvalue(r, 0, 1)));
        cz_metric_set(cz_metric_gauge("cadenza_webhook_backlog",
                                      "Webhook deliveries not yet delivered or given up.", ""),
                      atof(PQgetvalue(r, 0, 2)));
        cz_metric_set(cz_metric_gauge("cadenza_webhook_overdue_seconds",
                                      "How long the most overdue webhook delivery has been due.",
                                      ""),
                      atof(PQgetvalue(r, 0, 3)));
        PQclear(r);
    }
    r = cz_db_pools_observed(db, &err);
    for (int i = 0; r && i < PQntuples(r); i++) {
        char l[160], p[80];
        const char *pool = PQgetvalue(r, i, 0);
        label(p, sizeof p, "pool", pool);
        snprintf(l, sizeof l, "%s,kind=\"desired\"", p);
        cz_metric_set(cz_metric_gauge("cadenza_pool_replicas",
                                      "Worker replicas per pool: desired and running.", l),
                      atof(PQgetvalue(r, i, 1)));
        /* Only a supervising scheduler knows how many run; in a cluster
         * the series is absent (KEDA's and the Deployment's own are used). */
        snprintf(l, sizeof l, "%s,kind=\"running\"", p);
        if (!PQgetisnull(r, i, 2))
            cz_metric_set(cz_metric_gauge("cadenza_pool_replicas", "", l),
                          atof(PQgetvalue(r, i, 2)));
        cz_metric_set(cz_metric_gauge("cadenza_kafka_lag",
                                      "Messages the pool's consumer group has not finished.", p),
                      atof(PQgetvalue(r, i, 3)));
        cz_metric_set(cz_metric_gauge("cadenza_pool_throughput_per_replica",
                                      "Messages finished per second per replica.", p),
                      atof(PQgetvalue(r, i, 4)));
    }
    PQclear(r);
    if (!r)
        cz_log_warn("metrics: %s", err.msg);
}

void cz_collector_run(const cz_config *cfg, atomic_bool *stop) {
    int interval = cz_env_int("CADENZA_METRICS_INTERVAL_MS", 2000, 100, 600000);
    double cost_per_s = atof(cz_env("CADENZA_COST_PER_COMPUTE_S", "0.0004"));
    PGconn *db = NULL;
    long long last = -1;
    while (!atomic_load(stop)) {
        cz_err err;
        if (!db && !(db = cz_db_connect(cfg->database_url, &err)))
            cz_log_warn("metrics: %s", err.msg);
        if (db && cz_db_ensure(db) == 0) {
            if (last < 0)
                last = newest_event(db);
            if (last >= 0)
                count_events(db, &last, cost_per_s);
            set_gauges(db);
        }
        for (int slept = 0; slept < interval && !atomic_load(stop); slept += 100)
            usleep(100 * 1000);
    }
    PQfinish(db);
}
