/* The sweeper: see sweeper.h.
 *
 * Leases. A running job (generating, postprocessing) holds a lease that
 * every event from its worker renews. A worker that crashed, hung or lost
 * its network stops renewing; once the lease has passed, the sweeper feeds
 * the job a `failed` event of class worker_lost through the same code path
 * as a worker's own failure, so it is retried with backoff or, out of
 * attempts, failed and dead-lettered. The guard re-checks the lease under
 * the row lock: a progress event that renewed it in the meantime wins.
 *
 * Several schedulers may sweep at once: the row lock and the guard make a
 * second sweep of the same job a no-op. */
#include "scheduler/sweeper.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/artifact.h"
#include "common/clock.h"
#include "common/db/db.h"
#include "common/db/jobs.h"
#include "common/event.h"
#include "common/json.h"
#include "common/log.h"

#define SWEEP_BATCH 100

static void expire_leases(PGconn *db, const cz_config *cfg) {
    cz_err err;
    PGresult *r = cz_db_job_leases_expired(db, SWEEP_BATCH, &err);
    if (!r) {
        cz_log_warn("sweeper: %s", err.msg);
        return;
    }
    cz_apply_policy policy = {cfg->lease_s, cfg->retry_base_ms, cfg->retry_cap_ms};
    for (int i = 0; i < PQntuples(r); i++) {
        const char *id = PQgetvalue(r, i, 0);
        int attempt = atoi(PQgetvalue(r, i, 1));
        cJSON *o = cz_event_new(CZ_EV_FAILED, id, attempt, CZ_LEASE_SWEEPER);
        cJSON *f = cJSON_AddObjectToObject(o, "failure");
        cJSON_AddStringToObject(f, "class", "worker_lost");
        char detail[96];
        snprintf(detail, sizeof detail, "no sign of life from the worker for %d s", cfg->lease_s);
        cJSON_AddStringToObject(f, "detail", detail);
        char *text = cz_json_print(o);
        cJSON_Delete(o);
        cz_event ev;
        if (text && cz_event_parse(text, strlen(text), &ev, &err) == 0) {
            int rc = cz_db_job_apply(db, &ev, &policy, &err);
            if (rc < 0)
                cz_log_job(CZ_LOG_WARN, id, NULL, "lease expiry: %s", err.msg);
            else if (rc == CZ_APPLY_DONE)
                cz_log_job(CZ_LOG_WARN, id, NULL, "lease expired on attempt %d: worker_lost",
                           attempt);
            cz_event_free(&ev);
        }
        free(text);
    }
    PQclear(r);
}

static void clean_canceled(PGconn *db) {
    cz_err err;
    PGresult *r = cz_db_job_canceled_artifacts(db, &err);
    if (!r) {
        cz_log_warn("sweeper: %s", err.msg);
        return;
    }
    for (int i = 0; i < PQntuples(r); i++) {
        const char *path = cz_artifact_uri_path(PQgetvalue(r, i, 1));
        if (path && unlink(path) && errno != ENOENT) {
            cz_log_warn("sweeper: cannot remove %s: %s", path, strerror(errno));
            continue; /* try again on the next sweep */
        }
        cz_db_job_artifact_deleted(db, PQgetvalue(r, i, 0), &err);
    }
    PQclear(r);
}

static void forget_old_keys(PGconn *db) {
    cz_err err;
    if (cz_db_job_idempotency_purge(db, &err) < 0)
        cz_log_warn("sweeper: %s", err.msg);
}

void cz_sweeper_run(const cz_config *cfg, atomic_bool *stop) {
    PGconn *db = NULL;
    int64_t next_key_purge = 0;
    while (!atomic_load(stop)) {
        cz_err err;
        if (!db && !(db = cz_db_connect(cfg->database_url, &err)))
            cz_log_warn("sweeper: %s", err.msg);
        if (db && cz_db_ensure(db) == 0) {
            expire_leases(db, cfg);
            clean_canceled(db);
            if (cz_mono_ms() >= next_key_purge) {
                forget_old_keys(db);
                next_key_purge = cz_mono_ms() + 60000;
            }
        }
        for (int i = 0; i < 10 && !atomic_load(stop); i++)
            usleep(100 * 1000);
    }
    PQfinish(db);
}
