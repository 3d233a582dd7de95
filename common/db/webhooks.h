/* SQL for webhooks: endpoints, the tenants' default secrets, deliveries and
 * their attempts (migrations/0006_webhooks.sql).
 *
 * Three callers. The scheduler's event consumer (and the API's cancel)
 * enqueue deliveries inside the transaction that changes a job's state.
 * The API manages endpoints and secrets and reads the delivery log. The
 * dispatcher (scheduler/webhooks.c) takes due deliveries and records what
 * each attempt did. */
#ifndef CZ_DB_WEBHOOKS_H
#define CZ_DB_WEBHOOKS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "common/err.h"

/* The most enabled endpoints a tenant may have: each event fans out to all. */
#define CZ_WEBHOOK_ENDPOINTS_MAX 16

/**
 * @brief Enqueues @p event ("job.succeeded", ...) of job @p job_id for every
 * receiver that wants it: the tenant's enabled endpoints whose filter names
 * it, and the job's own webhook.url (its events, or the default ones).
 * Each delivery carries the job as cz_job_json() shows it now, the event
 * type and the job's next sequence number, and is due at once. Runs inside
 * the caller's transaction, after the job's change of state, so both commit
 * or neither does. Creates the tenant's default secret on first need.
 * @returns the number of deliveries created (>= 0), or -1 with @p err filled.
 */
int cz_db_webhook_enqueue_tx(PGconn *c, const char *job_id, const char *event, cz_err *err);

/* ---- the API's side --------------------------------------------------------- */

typedef struct cz_webhook_endpoint_new {
    const char *id; /* UUIDv7 */
    const char *tenant;
    const char *url;
    const char *description;
    const char *events; /* Postgres text[] literal of valid event names */
    const char *secret;
} cz_webhook_endpoint_new;

/**
 * @brief Creates an endpoint.
 * @returns its JSON with its "secret" (caller frees); NULL with an empty
 * @p err when the tenant already has CZ_WEBHOOK_ENDPOINTS_MAX enabled
 * endpoints; NULL with @p err filled on a database error.
 */
char *cz_db_webhook_endpoint_create(PGconn *c, const cz_webhook_endpoint_new *e, cz_err *err);

/** @brief The tenant's endpoints as a list object. @returns JSON (caller frees) or NULL. */
char *cz_db_webhook_endpoint_list(PGconn *c, const char *tenant, cz_err *err);

/**
 * @brief One endpoint of @p tenant (id already checked to be a UUID).
 * @returns JSON (caller frees); NULL with an empty @p err when not found,
 * NULL with @p err filled on a database error.
 */
char *cz_db_webhook_endpoint_get(PGconn *c, const char *tenant, const char *id, cz_err *err);

/**
 * @brief Replaces the endpoint's secret with @p secret; the old one keeps
 * signing (a second signature) for @p window_s seconds.
 * @returns JSON with the new "secret" (caller frees); NULL as for _get().
 */
char *cz_db_webhook_endpoint_rotate(PGconn *c, const char *tenant, const char *id,
                                    const char *secret, int window_s, cz_err *err);

/**
 * @brief Enables or disables an endpoint. Disabling fails its pending
 * deliveries (they can be redelivered once it is enabled again).
 * @returns JSON (caller frees); NULL as for _get().
 */
char *cz_db_webhook_endpoint_enable(PGconn *c, const char *tenant, const char *id, bool enable,
                                    cz_err *err);

/**
 * @brief The tenant's default secret, created with @p candidate if it has
 * none yet.
 * @returns JSON {"object":"webhook_secret","secret":...} (caller frees), or
 * NULL with @p err filled.
 */
char *cz_db_webhook_secret_get(PGconn *c, const char *tenant, const char *candidate, cz_err *err);

/** @brief Rotates the tenant's default secret to @p secret (see _endpoint_rotate). */
char *cz_db_webhook_secret_rotate(PGconn *c, const char *tenant, const char *secret, int window_s,
                                  cz_err *err);

/**
 * @brief The delivery log of @p tenant's job @p job_id: every delivery with
 * every attempt, as a list object.
 * @returns JSON (caller frees); NULL with an empty @p err when the job is not
 * the tenant's; NULL with @p err filled on a database error.
 */
char *cz_db_webhook_deliveries(PGconn *c, const char *tenant, const char *job_id, cz_err *err);

enum { CZ_REDELIVER_NOT_FOUND = 0, CZ_REDELIVER_QUEUED = 1, CZ_REDELIVER_DISABLED = 2 };

/**
 * @brief Makes @p tenant's delivery @p id due now with a fresh schedule (the
 * same webhook-id and body), whatever its state.
 * @returns CZ_REDELIVER_QUEUED with its JSON in @p json (caller frees),
 * CZ_REDELIVER_NOT_FOUND, CZ_REDELIVER_DISABLED (its endpoint is disabled),
 * or -1 with @p err filled.
 */
int cz_db_webhook_redeliver(PGconn *c, const char *tenant, const char *id, char **json,
                            cz_err *err);

/* ---- the dispatcher's side ------------------------------------------------- */

/**
 * @brief Prepares the dispatcher's statements (due, load, record) on @p c;
 * call after every (re)connection, before the functions below.
 * @returns 0, or -1 with @p err filled.
 */
int cz_db_webhook_prepare(PGconn *c, cz_err *err);

/**
 * @brief Up to @p limit due deliveries, oldest due first, leaving out the ids
 * in the uuid[] literal @p exclude_ids (in flight, or done but not yet
 * recorded) and the receivers in the text[] literal @p exclude_origins
 * (at their concurrency limit). Columns: id, origin. Narrow on purpose:
 * the dispatcher picks what it can start, then loads only those.
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_webhook_due(PGconn *c, int limit, const char *exclude_ids,
                            const char *exclude_origins, cz_err *err);

/**
 * @brief The deliveries in the uuid[] literal @p ids that are still pending
 * and whose endpoint (if any) is enabled, ready to send. Columns: id, url,
 * origin, payload, attempts, round_start, secret, previous secret (NULL
 * outside a rotation window), job_id.
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_webhook_load(PGconn *c, const char *ids, cz_err *err);

/**
 * @brief Records finished attempts, given as a JSON array of objects {id,
 * attempt, started_at, status (null: no response), latency_ms, error,
 * excerpt, state (pending|succeeded|failed), delay_ms, gone}: each goes to
 * the attempt log, and its delivery (if still pending) takes the new state
 * and due time. A "gone" attempt (410) disables its endpoint, or for a
 * job's own URL stops that job's deliveries to it, and fails what was
 * still pending for it. One statement, one transaction. Sent without
 * waiting for the answer: collect it with cz_db_webhook_record_result().
 * @returns 0 when sent, or -1 with @p err filled.
 */
int cz_db_webhook_record_send(PGconn *c, const char *attempts_json, cz_err *err);

/**
 * @brief The answer to cz_db_webhook_record_send(); with @p block false it
 * only looks (call it when the connection's socket is readable, or now and
 * then).
 * @returns 1 recorded, 0 not answered yet, -1 failed with @p err filled
 * (nothing was recorded).
 */
int cz_db_webhook_record_result(PGconn *c, bool block, cz_err *err);

#endif
