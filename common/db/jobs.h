/* SQL for a job and what hangs off it: its history (job_events), artifacts,
 * QA report, generate message in the outbox, and usage ledger row. The API
 * creates and reads jobs; the scheduler applies events to them. A job's JSON
 * form is built by the cz_job_json() SQL function (migrations/), so every
 * reader returns the same representation. */
#ifndef CZ_DB_JOBS_H
#define CZ_DB_JOBS_H

#include <libpq-fe.h>
#include <stdint.h>

#include "common/err.h"
#include "common/event.h"

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
    const char *cache_key;   /* tenant-scoped key of what shapes the audio, or NULL */
    const char *cached_from; /* a succeeded job the prompt cache offers, or NULL */
} cz_job_new;

/* How a submission was stored (cz_job_submit's kind). */
enum {
    CZ_JOB_GENERATES = 0, /* a new generation: its generate message is in the outbox */
    CZ_JOB_CACHED = 1,    /* answered from the cache: succeeded already */
    CZ_JOB_COALESCED = 2, /* waits for the identical job in flight */
};

/**
 * @brief The job's JSON if it belongs to @p tenant.
 * @returns JSON text (caller frees); NULL with an empty @p err when not found,
 * NULL with @p err filled on a database error.
 */
char *cz_db_job_get(PGconn *c, const char *tenant, const char *id, cz_err *err);

/**
 * @brief Whether job @p id exists and belongs to @p tenant.
 * @returns 1 yes, 0 no, -1 with @p err filled.
 */
int cz_db_job_exists(PGconn *c, const char *tenant, const char *id, cz_err *err);

/**
 * @brief Job @p id's history after event @p after (at most @p limit events,
 * in id order), for a client that follows the job live. One row per event,
 * or one row with NULL event columns when there is none; no row when the
 * job does not exist. Columns: event id, event, state, created_at (RFC 3339),
 * detail's stage, detail's percent, the job's state, the job's created_at.
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_job_history(PGconn *c, const char *id, long long after, int limit, cz_err *err);

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
 * of @p tenant, and when @p name is not NULL the one of that name (a kind
 * with several, such as stems: drums, bass...); copies its URI into @p uri.
 * A job answered by another (cached_from) has that job's files.
 * @returns 1 found, 0 not found, -1 with @p err filled.
 */
int cz_db_job_artifact(PGconn *c, const char *tenant, const char *id, const char *kind,
                       const char *name, const char *format, char *uri, size_t n, cz_err *err);

/** How events are applied: lease length and retry backoff. */
typedef struct cz_apply_policy {
    int lease_s;       /* a running job's lease after each sign of life */
    int retry_base_ms; /* backoff ceiling of the first retry */
    int retry_cap_ms;  /* largest backoff ceiling */
} cz_apply_policy;

/** What applying an event did. */
enum {
    CZ_APPLY_NOOP = 0,     /* duplicate, late or stale attempt: nothing written */
    CZ_APPLY_DONE = 1,     /* the job moved (or its lease was renewed) */
    CZ_APPLY_CANCELED = 2, /* a canceled job's late result: remove the event's files */
};

/* The `worker` of the scheduler's own worker_lost events (lease expiry). */
#define CZ_LEASE_SWEEPER "scheduler:lease"

/**
 * @brief Applies an event to its job as a guarded transition, inside the
 * caller's transaction: the history row, artifacts, QA report and, on a
 * terminal transition, the usage ledger row. A `failed` event either
 * schedules a retry (queued, attempt + 1, backoff with full jitter, a new
 * generate message in the outbox) or fails the job for good and sends a
 * copy to the dead-letter topic. Progress renews the lease.
 * @returns a CZ_APPLY_* value, or -1 with @p err filled.
 */
int cz_db_job_apply_tx(PGconn *c, const cz_event *ev, const cz_apply_policy *policy, cz_err *err);

/** @brief cz_db_job_apply_tx() in a transaction of its own. */
int cz_db_job_apply(PGconn *c, const cz_event *ev, const cz_apply_policy *policy, cz_err *err);

/**
 * @brief Completes the identical requests that waited for job @p leader_id
 * if it has ended (succeeded, failed or rejected): in a statement of its
 * own, outside any transaction. The transition that ends a job completes
 * its followers too, but a follower committed while that transaction was
 * running is not visible to it (and the follower saw the job still in
 * flight); running this again after either commit catches it.
 * @returns 0, or -1 with @p err filled.
 */
int cz_db_job_complete_followers(PGconn *c, const char *leader_id, cz_err *err);

/**
 * @brief Of the jobs in @p ids (a JSON array of ids), those that have ended
 * succeeded, failed or rejected. Columns: id, whether the prompt cache may
 * remember it ('t': succeeded with a cache key, not itself answered from
 * the cache), cache_key, model, model_version ('' when unknown), and the
 * ids of the identical jobs it completed (not queued), space-separated.
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_job_ended(PGconn *c, const char *ids, cz_err *err);

/**
 * @brief Inserts a curator's regeneration of a job, queued, with its
 * generate message in the outbox, inside the caller's transaction. @p p are
 * the statement's ten parameters, in order: new id, tenant, canonical
 * request, its sha256, model, seed, trace id, max_attempts, the job it
 * regenerates, traceparent (the review decision, review.c, makes them).
 * @returns the number of outbox rows written (1), or -1 with @p err filled.
 */
long cz_db_job_insert_regenerated_tx(PGconn *c, const char *const p[10], cz_err *err);

/**
 * @brief Cancels @p tenant's job @p id if it is not terminal: state, history,
 * ledger row and any unpublished generate message, in one statement.
 * @returns 1 canceled, 2 already terminal, 0 not found (each with the job's
 * JSON in @p json, caller frees, except 0), -1 with @p err filled.
 */
int cz_db_job_cancel(PGconn *c, const char *tenant, const char *id, char **json, cz_err *err);

/* What became of one submission. */
enum {
    CZ_CREATE_NEW = 0,        /* stored: 202 with the job */
    CZ_CREATE_REPLAY = 1,     /* the idempotency key's first response, again */
    CZ_CREATE_CONFLICT = 2,   /* the idempotency key was used for another request */
    CZ_CREATE_OVER_QUOTA = 3, /* the tenant's monthly audio quota would be exceeded */
};

/** One submission in a group commit: what to store, and what became of it. */
typedef struct cz_job_submit {
    cz_job_new job;
    const char *idempotency_key; /* NULL: none */
    double quota_s;              /* the tenant's monthly quota in seconds, < 0 for none */
    double duration_s;           /* what this job asks for, counted against the quota */
    /* Results, valid when the batch committed: */
    int outcome; /* CZ_CREATE_* */
    int status;  /* HTTP status of the stored response (NEW, REPLAY) */
    char *json;  /* the response body (NEW, REPLAY): the caller frees */
    int kind;    /* CZ_JOB_*: how a NEW job was stored */
} cz_job_submit;

/**
 * @brief Stores the submissions @p items in ONE transaction (group commit):
 * for each, the job (queued) and its generate message in the outbox and,
 * with an idempotency key, the key's row and stored response (Stripe's
 * semantics: a repeat of the same request within 24 hours gets the first
 * response again, another request under the key is a conflict). A tenant
 * with a quota is checked under a transaction-level advisory lock on the
 * tenant, so concurrent batches cannot both spend the last minutes.
 * Submissions without key or quota are inserted by one statement.
 * @returns 0 when the transaction committed, with each item's outcome, or
 * -1 with @p err when it did not: then nothing was stored and the caller
 * may retry the items one by one, so that one bad row fails only itself.
 */
int cz_db_job_submit_batch(PGconn *c, cz_job_submit *const *items, int n, cz_err *err);

/**
 * @brief The tenant's usage this month (UTC) as the JSON of GET /v1/usage:
 * minutes used (usage ledger), minutes reserved by open jobs, the quota
 * (null: none) and when the month ends. @returns text (caller frees), or
 * NULL with @p err.
 */
char *cz_db_job_usage(PGconn *c, const char *tenant, cz_err *err);

/* ---- the sweeper -------------------------------------------------------- */

/**
 * @brief Up to @p limit running jobs (generating, postprocessing) whose
 * lease has passed, the longest expired first. Columns: id, attempt.
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_job_leases_expired(PGconn *c, int limit, cz_err *err);

/**
 * @brief Up to 100 files, not yet deleted, of jobs canceled in the last
 * hour. Columns: artifact id, uri.
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_job_canceled_artifacts(PGconn *c, cz_err *err);

/**
 * @brief Records that artifact @p artifact_id's file was deleted.
 * @returns 0, or -1 with @p err filled.
 */
int cz_db_job_artifact_deleted(PGconn *c, const char *artifact_id, cz_err *err);

/**
 * @brief Forgets idempotency keys older than 24 hours.
 * @returns 0, or -1 with @p err filled.
 */
int cz_db_job_idempotency_purge(PGconn *c, cz_err *err);

/* ---- metrics ------------------------------------------------------------ */

/**
 * @brief The id of the newest history row (0 when there is none).
 * @returns it, or -1 with @p err filled.
 */
long long cz_db_job_events_newest(PGconn *c, cz_err *err);

/**
 * @brief Up to @p limit history rows of every job after id @p after, in id
 * order, with what the metrics need. Columns: id, event, state, the state
 * before ('submitted' for the first), seconds since the previous
 * non-progress event (or the submission), seconds since the submission,
 * failure class ('' when none), and from the ledger row of a terminal
 * event audio seconds (-1 when none) and compute ms (0 when none).
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_job_events_after(PGconn *c, long long after, int limit, cz_err *err);

/**
 * @brief How many jobs are in each state of @p states (a text[] literal),
 * 0 included. Columns: state, count.
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_job_count_by_state(PGconn *c, const char *states, cz_err *err);

#endif
