/* SQL for the review queue: review_tasks and review_audit
 * (migrations/0009_review.sql). The tenants' review policy is a column of
 * tenants, so its SQL is in keys.h.
 *
 * Two callers. The scheduler opens a task inside the transaction that
 * moves a job to in_review. The API lists the queue, claims and releases
 * tasks, and applies curators' decisions.
 *
 * A claim is a lease: the task is the curator's until claim_expires_at,
 * then any curator may claim it again. Claims take the oldest open task
 * with FOR UPDATE SKIP LOCKED, so curators claiming at once never wait on
 * each other and never get the same task. A decision is a job event
 * (approved, rejected) applied by the same guarded transition as every
 * worker's event (db_jobs.h), in one transaction with the task's update and
 * its audit row: the history, the usage ledger, identical requests waiting
 * for the job and any webhook deliveries follow exactly as for any other
 * change of state. */
#ifndef CZ_DB_REVIEW_H
#define CZ_DB_REVIEW_H

#include <cjson/cJSON.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/db/jobs.h"
#include "common/err.h"
#include "common/event.h"
#include "common/hash.h"
#include "common/ids.h"
#include "common/review.h"

/**
 * @brief Opens the review task of the job @p ev moved to in_review, inside
 * the caller's transaction. Its reasons are the event's "reasons", or, for
 * an event without them, those of its QA report (review.h). A job has one
 * task; a second call for it is a no-op.
 * @returns 0, or -1 with @p err filled.
 */
int cz_db_review_open_tx(PGconn *c, const cz_event *ev, cz_err *err);

/**
 * @brief @p tenant's queue: counts (open, waiting, claimed), the oldest
 * open task's age, decisions in the last 24 hours, and up to @p limit open
 * tasks, oldest first, each with its job's prompt and duration.
 * @returns JSON text (caller frees), or NULL with @p err.
 */
char *cz_db_review_queue(PGconn *c, const char *tenant, int limit, cz_err *err);

/**
 * @brief Claims a task of @p tenant for key @p key_id for @p lease_s
 * seconds: the task the key already holds (its lease renewed), else the
 * oldest task nobody holds (never claimed, released, or its lease passed).
 * The claim is audited.
 * @returns 1 with the task in @p json (caller frees: the task with its
 * "job", the matched "catalog_track" and "manifest_uri", the provenance
 * manifest's file), 0 when the queue has nothing to claim, -1 with @p err.
 */
int cz_db_review_claim(PGconn *c, const char *tenant, long long key_id, int lease_s, char **json,
                       cz_err *err);

/* What a release or a decision found. */
enum {
    CZ_REVIEW_OK = 1,            /* done */
    CZ_REVIEW_NOT_FOUND = 0,     /* no review task for this job in this tenant */
    CZ_REVIEW_DECIDED = 2,       /* the task was decided already */
    CZ_REVIEW_NOT_IN_REVIEW = 3, /* the job left in_review (canceled) */
    CZ_REVIEW_HELD = 4,          /* another curator holds a live claim on it */
    CZ_REVIEW_NOT_HELD = 5,      /* release: the key holds no live claim on it */
};

/**
 * @brief Gives back @p key_id's live claim on @p job_id, so the task is
 * first in line again. Audited.
 * @returns CZ_REVIEW_OK, _NOT_FOUND, _DECIDED or _NOT_HELD, or -1 with @p err.
 */
int cz_db_review_release(PGconn *c, const char *tenant, const char *job_id, long long key_id,
                         cz_err *err);

/** A curator's decision on one task. */
typedef struct cz_review_decision {
    const char *tenant;
    const char *job_id;
    long long key_id; /* the curator's key */
    cz_review_decision_kind kind;
    const char *reason; /* required for reject; may be NULL otherwise */
    /* regenerate: the new job's id, seed and trace */
    const char *new_job_id;
    uint64_t new_seed;
    const char *trace_id;
    const char *traceparent;
} cz_review_decision;

/** What a decision did. */
typedef struct cz_review_outcome {
    int status;      /* CZ_REVIEW_* */
    char *json;      /* CZ_REVIEW_OK: the decision as the API answers it (caller frees) */
    cJSON *announce; /* ids of every job that changed: publish them after the commit */
    /* The prompt cache's entry for an approved job (cacheable when true). */
    bool cacheable;
    char cache_key[CZ_SHA256_HEX];
    char model[128];
    char model_version[64];
} cz_review_outcome;

/**
 * @brief Locks the review task of @p job_id in @p tenant and its job, for
 * the curator with key id @p key. Columns: decision, job state, claim live,
 * claimed by the key, the key's prefix, job attempt, request, model,
 * max_attempts.
 * @returns the row (PQclear it; no row: no such task), or NULL with @p err.
 */
PGresult *cz_db_review_lock(PGconn *c, const char *tenant, const char *job_id, const char *key,
                            cz_err *err);

/**
 * @brief Why a task locked by cz_db_review_lock() cannot be released or
 * decided; @p need_held: only the curator holding its live claim may.
 * @returns CZ_REVIEW_OK when it can, else a CZ_REVIEW_* status.
 */
int cz_db_review_task_status(PGresult *r, bool need_held);

/**
 * @brief Records decision @p d in the task and the audit, and reads back
 * what the caller needs into @p out: the answer, the jobs to announce, the
 * cache entry.
 * @returns 0, or -1 with @p err.
 */
int cz_db_review_record_decision(PGconn *c, const cz_review_decision *d, const char *key,
                                 cz_review_outcome *out, cz_err *err);

/** @brief Frees what cz_db_review_decide_tx() allocated in @p out. */
void cz_review_outcome_free(cz_review_outcome *out);

#endif
