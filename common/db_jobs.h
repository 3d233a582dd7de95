/* SQL for a job and what hangs off it: its history (job_events), artifacts,
 * QA report, generate message in the outbox, and usage ledger row. The API
 * creates and reads jobs; the scheduler applies events to them. A job's JSON
 * form is built by the cz_job_json() SQL function (migrations/), so every
 * reader returns the same representation. */
#ifndef CZ_DB_JOBS_H
#define CZ_DB_JOBS_H

#include <libpq-fe.h>
#include <stdint.h>

#include "err.h"
#include "event.h"

typedef struct cz_job_new {
    const char *id; /* UUIDv7 */
    const char *tenant;
    const char *request;      /* canonical request JSON */
    const char *request_hash; /* sha256 hex of it */
    const char *model;        /* name@version */
    uint64_t seed;
    const char *trace_id;
    const char *traceparent;
    int max_attempts;
} cz_job_new;

/**
 * @brief Inserts the job (queued) and its generate message in the outbox in
 * one statement, hence one transaction: either both exist or neither.
 * @returns the job's JSON (caller frees), or NULL with @p err filled.
 */
char *cz_db_job_create(PGconn *c, const cz_job_new *j, cz_err *err);

/**
 * @brief The job's JSON if it belongs to @p tenant.
 * @returns JSON text (caller frees); NULL with an empty @p err when not found,
 * NULL with @p err filled on a database error.
 */
char *cz_db_job_get(PGconn *c, const char *tenant, const char *id, cz_err *err);

/**
 * @brief A page of @p tenant's jobs, newest first, strictly older than the
 * job @p before (NULL: from the newest), optionally only in @p state.
 * @returns a JSON list object {"object":"list","data":[...],"has_more":..,
 * "next_cursor":..} (caller frees), or NULL with @p err filled.
 */
char *cz_db_job_list(PGconn *c, const char *tenant, const char *before, const char *state,
                     int limit, cz_err *err);

/**
 * @brief Finds the current attempt's artifact @p kind in @p format for a job
 * of @p tenant; copies its URI into @p uri.
 * @returns 1 found, 0 not found, -1 with @p err filled.
 */
int cz_db_job_artifact(PGconn *c, const char *tenant, const char *id, const char *kind,
                       const char *format, char *uri, size_t n, cz_err *err);

/**
 * @brief Like cz_db_job_artifact(), for one artifact of a kind that has
 * several (a stem: drums, bass...): @p name selects it.
 * @returns 1 found, 0 not found, -1 with @p err filled.
 */
int cz_db_job_artifact_named(PGconn *c, const char *tenant, const char *id, const char *kind,
                             const char *name, const char *format, char *uri, size_t n,
                             cz_err *err);

/**
 * @brief Applies a worker's event to its job as a guarded transition, in one
 * transaction with its history row, artifacts, QA report and, on a terminal
 * transition, the usage ledger row. Running jobs' leases are extended by
 * @p lease_s seconds.
 * @returns 1 applied, 0 no-op (duplicate, late, stale attempt), -1 with @p err.
 */
int cz_db_job_apply(PGconn *c, const cz_event *ev, int lease_s, cz_err *err);

#endif
