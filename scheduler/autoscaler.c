/* The autoscaler: see autoscaler.h; the formula is in docs/operations.md.
 *
 * Lag is what the pool's consumer group has not yet committed: messages
 * queued plus the jobs in hand (workers commit a message's offset only when
 * its job is done or handed on). Throughput is the growth of the committed
 * offsets over the interval, divided by the replicas running.
 *
 * Scaling up is immediate: a burst should not wait. Scaling down waits for
 * the cooldown since the pool last changed (by anyone), so a pool that just
 * grew is not shrunk by the first quiet interval, and an operator's change
 * stands for at least that long. The decision is written with a guard
 * (cz_db_pool_autoscale): it applies only while autoscale is on and desired
 * is what was read, so several schedulers, or an operator changing the pool
 * meanwhile, never race into a wrong count. */
#include "scheduler/autoscaler.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/db/db.h"
#include "common/db/pools.h"
#include "common/kafka.h"
#include "common/log.h"

#define KAFKA_TIMEOUT_MS 3000

typedef struct gauge {
    char name[CZ_POOL_NAME_MAX];
    rd_kafka_t *rk; /* lag client in the pool's group */
    long long consumed;
    int64_t measured_at; /* 0: no earlier measurement */
} gauge;

static const char *topic_of(const char *pool) {
    if (!strcmp(pool, "inference"))
        return CZ_TOPIC_GENERATE;
    if (!strcmp(pool, "post"))
        return CZ_TOPIC_POST;
    return NULL;
}

int cz_autoscale_target(long long lag, int target_lag, int min, int max) {
    long long want = target_lag > 0 ? (lag + target_lag - 1) / target_lag : max;
    return want < min ? min : want > max ? max : (int)want;
}

static gauge *gauge_of(gauge *g, int *n, const cz_config *cfg, const char *name) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(g[i].name, name))
            return &g[i];
    if (*n == CZ_POOLS_MAX)
        return NULL;
    gauge *x = &g[(*n)++];
    memset(x, 0, sizeof *x);
    snprintf(x->name, sizeof x->name, "%.*s", CZ_POOL_NAME_MAX - 1, name);
    char group[64];
    snprintf(group, sizeof group, "cadenza-%.*s", CZ_POOL_NAME_MAX - 1, name);
    cz_err err;
    if (!(x->rk = cz_kafka_lag_client(cfg->kafka_brokers, group, &err)))
        cz_log_warn("autoscaler: %s", err.msg);
    return x;
}

static void decide(PGconn *db, const cz_pool *p, long long lag, double tput) {
    int want = cz_autoscale_target(lag, p->target_lag, p->min, p->max);
    if (want == p->desired)
        return;
    char reason[256];
    if (want < p->desired && p->since_change_s < p->cooldown_s)
        return; /* cooling down; the next interval looks again */
    snprintf(reason, sizeof reason, "lag %lld / target %d per replica = %d, within %d..%d%s", lag,
             p->target_lag, (int)((lag + p->target_lag - 1) / p->target_lag), p->min, p->max,
             want < p->desired ? "; cooldown passed" : "");
    cz_err err;
    int rc = cz_db_pool_autoscale(db, p->name, p->desired, want, lag, tput, reason, &err);
    if (rc < 0)
        cz_log_warn("autoscaler: %s", err.msg);
    else if (rc > 0)
        cz_log_info("autoscaler: %s %d -> %d (%s)", p->name, p->desired, want, reason);
}

void cz_autoscaler_run(const cz_config *cfg, atomic_bool *stop) {
    int interval = cz_env_int("CADENZA_AUTOSCALE_INTERVAL_MS", 5000, 100, 600000);
    gauge gauges[CZ_POOLS_MAX];
    int ngauges = 0;
    PGconn *db = NULL;
    while (!atomic_load(stop)) {
        cz_err err;
        if (!db && !(db = cz_db_connect(cfg->database_url, &err)))
            cz_log_warn("autoscaler: %s", err.msg);
        cz_pool pools[CZ_POOLS_MAX];
        int n = db && cz_db_ensure(db) == 0 ? cz_db_pools_load(db, pools, CZ_POOLS_MAX, &err) : -1;
        for (int i = 0; i < n && !atomic_load(stop); i++) {
            const char *topic = topic_of(pools[i].name);
            gauge *g = topic ? gauge_of(gauges, &ngauges, cfg, pools[i].name) : NULL;
            long long lag, consumed;
            if (!g || !g->rk)
                continue;
            if (cz_kafka_group_lag(g->rk, topic, KAFKA_TIMEOUT_MS, &lag, &consumed, &err)) {
                cz_log_warn("autoscaler: %s: %s", pools[i].name, err.msg);
                continue;
            }
            int64_t now = cz_mono_ms();
            double tput = -1;
            if (g->measured_at && now > g->measured_at && consumed >= g->consumed) {
                int replicas = pools[i].running > 0 ? pools[i].running : 1;
                tput = (double)(consumed - g->consumed) * 1000.0 / (double)(now - g->measured_at) /
                       replicas;
            }
            g->consumed = consumed;
            g->measured_at = now;
            if (cz_db_pool_observe(db, pools[i].name, -1, lag, tput, &err))
                cz_log_warn("autoscaler: %s", err.msg);
            if (pools[i].autoscale)
                decide(db, &pools[i], lag, tput);
        }
        for (int slept = 0; slept < interval && !atomic_load(stop); slept += 100)
            usleep(100 * 1000);
    }
    for (int i = 0; i < ngauges; i++)
        if (gauges[i].rk)
            rd_kafka_destroy(gauges[i].rk);
    PQfinish(db);
}
