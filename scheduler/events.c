/* The status-event consumer: see events.h.
 *
 * Events are applied in batches: everything the consumer has fetched (up to
 * BATCH_MAX) goes into one transaction, so a busy pipeline pays one commit
 * for many events. Each event runs under its own savepoint: an event the
 * database refuses (a poison message that parsed but cannot be stored) is
 * rolled back alone, logged and skipped, and never blocks its partition.
 * Offsets are stored only after the batch committed, so a crash replays
 * events (harmless: guarded transitions) and never drops one.
 *
 * A database outage is different from a poison message: every event would
 * fail the same way, so the consumer retries the whole batch with a growing
 * pause until Postgres answers again. */
#include "scheduler/events.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/artifact.h"
#include "common/cache.h"
#include "common/db/db.h"
#include "common/db/jobs.h"
#include "common/event.h"
#include "common/json.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/redis.h"

#define GROUP "cadenza-scheduler"
#define BATCH_MAX 500

typedef struct batch {
    rd_kafka_message_t *msgs[BATCH_MAX];
    cz_event events[BATCH_MAX];
    int parsed[BATCH_MAX]; /* 1 when events[i] holds a parsed event */
    int result[BATCH_MAX]; /* CZ_APPLY_* of each event */
    int n;
} batch;

static void batch_clear(batch *b) {
    for (int i = 0; i < b->n; i++) {
        if (b->parsed[i])
            cz_event_free(&b->events[i]);
        rd_kafka_message_destroy(b->msgs[i]);
    }
    b->n = 0;
}

/* Fetches what is ready: waits up to 100 ms for the first message only. */
static void batch_fill(rd_kafka_t *rk, batch *b) {
    int wait = 100;
    while (b->n < BATCH_MAX) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, wait);
        if (!m)
            return;
        wait = 0;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                cz_log_debug("events consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        int i = b->n++;
        cz_err err;
        b->msgs[i] = m;
        b->parsed[i] = cz_event_parse(m->payload, m->len, &b->events[i], &err) == 0;
        if (!b->parsed[i])
            cz_log_warn("skipping event at %s[%d]@%lld: %s", rd_kafka_topic_name(m->rkt),
                        m->partition, (long long)m->offset, err.msg);
    }
}

/* One event under a savepoint. @returns -1 only when the connection failed. */
static int apply_one(PGconn *db, batch *b, int i, const cz_apply_policy *policy) {
    cz_err err;
    const cz_event *ev = &b->events[i];
    if (cz_db_savepoint(db, "ev", &err) < 0)
        return -1;
    int rc = cz_db_job_apply_tx(db, ev, policy, &err);
    if (rc >= 0) {
        b->result[i] = rc;
        return cz_db_savepoint_release(db, "ev", &err) < 0 ? -1 : 0;
    }
    if (PQstatus(db) != CONNECTION_OK)
        return -1;
    cz_log_job(CZ_LOG_ERROR, ev->job_id, NULL, "skipping %s event the database refused: %s",
               cz_job_event_name(ev->type), err.msg);
    b->result[i] = CZ_APPLY_NOOP;
    return cz_db_savepoint_rollback(db, "ev", &err) < 0 ? -1 : 0;
}

/* What Redis hears of a batch (best effort: with Redis down, live streams
 * fall back to polling and the prompt cache simply misses).
 *
 * Before the batch commits, inside its transaction: a generation that
 * reported its model version moves the prompt cache to that version, and a
 * job that succeeded is remembered by the cache. Doing both first means a
 * client that sees the job succeed can already repeat it from the cache; an
 * entry whose transaction then fails names a job that is not succeeded, and
 * the API ignores it.
 *
 * After the commit: every job that moved, and every identical job that an
 * ended one completed, is announced on pub/sub, so live streams read it. */
typedef struct notices {
    cz_redis_pool *redis;
    cJSON *jobs; /* ids to announce once the batch is committed */
} notices;

static void prepare(notices *n, PGconn *db, const batch *b, const cz_config *cfg) {
    n->jobs = cJSON_CreateArray();
    cz_err err;
    redisContext *rc = cz_redis_borrow(n->redis, &err);
    cJSON *ended = cJSON_CreateArray();
    for (int i = 0; i < b->n; i++) {
        const cz_event *ev = &b->events[i];
        if (!b->parsed[i] || b->result[i] != CZ_APPLY_DONE)
            continue;
        cJSON_AddItemToArray(n->jobs, cJSON_CreateString(ev->job_id));
        if (ev->type != CZ_EV_PROGRESS)
            cJSON_AddItemToArray(ended, cJSON_CreateString(ev->job_id));
        const char *model = cz_json_str(ev->root, "model");
        const char *version =
            cz_json_str(cJSON_GetObjectItemCaseSensitive(ev->root, "chosen"), "model_version");
        long dropped = rc && ev->type == CZ_EV_GENERATED && model && version
                           ? cz_cache_announce(rc, model, version)
                           : 0;
        if (dropped > 0)
            cz_log_info("model %s is now version %s: %ld older prompt-cache entries dropped", model,
                        version, dropped);
        if (dropped < 0) { // the connection failed: no more Redis for this batch
            cz_redis_give_back(n->redis, rc);
            rc = NULL;
        }
    }
    char *list = cJSON_GetArraySize(ended) ? cz_json_print(ended) : NULL;
    cJSON_Delete(ended);
    if (!list) {
        cz_redis_give_back(n->redis, rc);
        return;
    }
    PGresult *r = cz_db_job_ended(db, list, &err);
    free(list);
    if (!r)
        cz_log_warn("events: reading ended jobs for the cache: %s", err.msg);
    for (int i = 0; r && i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        if (rc && !strcmp(PQgetvalue(r, i, 1), "t") &&
            cz_cache_store(rc, PQgetvalue(r, i, 3), PQgetvalue(r, i, 4), PQgetvalue(r, i, 2), id,
                           cfg->cache_ttl_s, cfg->cache_max_entries) < 0) {
            cz_redis_give_back(n->redis, rc);
            rc = NULL;
        }
        // The followers this job completed, space-separated.
        const char *f = PQgetvalue(r, i, 5);
        char follower[40];
        for (int used = 0; sscanf(f, " %39s%n", follower, &used) == 1; f += used)
            cJSON_AddItemToArray(n->jobs, cJSON_CreateString(follower));
    }
    PQclear(r);
    cz_redis_give_back(n->redis, rc);
}

static void announce(notices *n) {
    cz_err err;
    redisContext *rc = cz_redis_borrow(n->redis, &err);
    int pending = 0;
    const cJSON *id;
    cJSON_ArrayForEach(id, n->jobs) {
        if (rc &&
            redisAppendCommand(rc, "PUBLISH " CZ_JOB_CHANNEL "%s 1", id->valuestring) == REDIS_OK)
            pending++;
    }
    for (; rc && pending > 0; pending--) {
        redisReply *r = NULL;
        if (redisGetReply(rc, (void **)&r) != REDIS_OK)
            break; // the pool closes a connection that failed
        freeReplyObject(r);
    }
    cz_redis_give_back(n->redis, rc);
    cJSON_Delete(n->jobs);
    n->jobs = NULL;
}

static int apply_batch(PGconn *db, batch *b, const cz_apply_policy *policy, notices *n,
                       const cz_config *cfg, cz_err *err) {
    if (cz_db_begin(db, err))
        return -1;
    for (int i = 0; i < b->n; i++) {
        b->result[i] = CZ_APPLY_NOOP;
        if (b->parsed[i] && apply_one(db, b, i, policy)) {
            cz_err_set(err, "%s", PQerrorMessage(db));
            cz_db_rollback(db);
            return -1;
        }
    }
    prepare(n, db, b, cfg);
    if (cz_db_commit(db, err)) {
        cJSON_Delete(n->jobs);
        n->jobs = NULL;
        cz_db_rollback(db);
        return -1;
    }
    return 0;
}

/* Identical requests that attached to a job while its ending transition
 * was being applied were not visible to it; now that the batch committed,
 * they are (common/db/jobs.h: cz_db_job_complete_followers). The API does the same
 * after committing a follower, so whichever commits last completes it. */
static void complete_late_followers(PGconn *db, const batch *b) {
    for (int i = 0; i < b->n; i++) {
        const cz_event *ev = &b->events[i];
        int to = b->parsed[i] && b->result[i] == CZ_APPLY_DONE ? cz_job_event_target(ev->type) : -1;
        cz_err err;
        if (to >= 0 && cz_job_state_terminal((cz_job_state)to) &&
            cz_db_job_complete_followers(db, ev->job_id, &err))
            cz_log_job(CZ_LOG_WARN, ev->job_id, NULL, "completing late followers: %s", err.msg);
    }
}

/* A canceled job's late result: its files are not wanted by anyone. */
static void remove_files(const cz_event *ev) {
    const cJSON *a;
    cJSON_ArrayForEach(a, ev->artifacts) {
        const char *path = cz_artifact_uri_path(cz_json_str(a, "uri"));
        if (path && unlink(path) == 0)
            cz_log_job(CZ_LOG_INFO, ev->job_id, NULL, "removed %s of the canceled job", path);
    }
}

static void report(batch *b) {
    for (int i = 0; i < b->n; i++) {
        if (!b->parsed[i])
            continue;
        const cz_event *ev = &b->events[i];
        if (b->result[i] == CZ_APPLY_CANCELED)
            remove_files(ev);
        else if (b->result[i] == CZ_APPLY_DONE && ev->type != CZ_EV_PROGRESS)
            cz_log_job(CZ_LOG_INFO, ev->job_id, NULL, "%s (attempt %d)",
                       cz_job_event_name(ev->type), ev->attempt);
        else if (b->result[i] == CZ_APPLY_NOOP)
            cz_log_job(CZ_LOG_DEBUG, ev->job_id, NULL, "%s ignored: duplicate, late or stale",
                       cz_job_event_name(ev->type));
    }
}

void cz_events_run(const cz_config *cfg, atomic_bool *stop) {
    cz_err err;
    rd_kafka_t *rk = cz_kafka_consumer(cfg->kafka_brokers, GROUP, CZ_TOPIC_EVENTS, &err);
    if (!rk) {
        cz_log_error("events: %s", err.msg);
        return;
    }
    cz_apply_policy policy = {cfg->lease_s, cfg->retry_base_ms, cfg->retry_cap_ms};
    notices notes = {.redis = cz_redis_pool_new(cfg->redis_url, 1, 200)};
    batch *b = cz_calloc(1, sizeof *b);
    PGconn *db = NULL;
    while (!atomic_load(stop)) {
        batch_fill(rk, b);
        if (!b->n)
            continue;
        unsigned pause_ms = 200;
        bool applied = false;
        while (!atomic_load(stop)) {
            if (!db)
                db = cz_db_connect(cfg->database_url, &err);
            if (db && cz_db_ensure(db) == 0 &&
                apply_batch(db, b, &policy, &notes, cfg, &err) == 0) {
                applied = true;
                break;
            }
            cz_log_warn("applying %d events: %s; retrying", b->n, db ? err.msg : "no database");
            usleep(pause_ms * 1000);
            pause_ms = pause_ms < 5000 ? pause_ms * 2 : 5000;
        }
        if (applied) {
            report(b);
            complete_late_followers(db, b);
            announce(&notes);
            for (int i = 0; i < b->n; i++)
                if (cz_kafka_store_offset(rk, b->msgs[i], &err))
                    cz_log_warn("events: %s", err.msg);
        }
        batch_clear(b);
    }
    free(b);
    cz_redis_pool_free(notes.redis);
    rd_kafka_consumer_close(rk); /* commits the stored offsets */
    rd_kafka_destroy(rk);
    PQfinish(db);
}
