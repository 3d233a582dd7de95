/* SQL for webhooks: see db_webhooks.h.
 *
 * Endpoints, secrets and deliveries are always read and written with the
 * tenant in the WHERE clause: another tenant's row is simply not found. */
#include "common/db/webhooks.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db/db.h"
#include "common/mem.h"
#include "common/webhook.h"

/* Returns the first column of the one row @p r has, copied (caller frees);
 * NULL with an empty @p err when there is no row. Clears @p r. */
static char *first_value(PGresult *r, cz_err *err) {
    if (!r)
        return NULL;
    char *out = NULL;
    if (PQntuples(r) && !PQgetisnull(r, 0, 0)) {
        out = cz_strdup(PQgetvalue(r, 0, 0));
    } else {
        cz_err_clear(err);
    }
    PQclear(r);
    return out;
}

/* ---- enqueue: in the transaction of the job's change ----------------------- */

int cz_db_webhook_enqueue_tx(PGconn *c, const char *job_id, const char *event, cz_err *err) {
    /* The SQL is cz_webhook_enqueue() (migrations/0006_webhooks.sql): it runs
     * for every change of state, and a function's plans are cached. */
    char secret[CZ_WEBHOOK_SECRET_MAX];
    cz_webhook_secret_new(secret);
    const char *p[] = {job_id, event, secret, CZ_WEBHOOK_DEFAULT_EVENTS};
    PGresult *r = cz_db_query(c, "SELECT cz_webhook_enqueue($1, $2, $3, $4::text[])", 4, p, err);
    if (!r)
        return -1;
    int n = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return n;
}

/* ---- endpoints -------------------------------------------------------------- */

#define WITH_SECRET(row)                                                                           \
    "(cz_webhook_endpoint_json(" row ")::jsonb || jsonb_build_object('secret', " row               \
    ".secret))::text"

char *cz_db_webhook_endpoint_create(PGconn *c, const cz_webhook_endpoint_new *e, cz_err *err) {
    char max[12];
    snprintf(max, sizeof max, "%d", CZ_WEBHOOK_ENDPOINTS_MAX);
    const char *p[] = {e->id, e->tenant, e->url, e->description, e->events, e->secret, max};
    /* The count and the insert race only against the same tenant creating
     * endpoints concurrently; the limit is a guard against fan-out, not
     * an exact quota. */
    return first_value(
        cz_db_query(
            c,
            "INSERT INTO webhook_endpoints (id, tenant_id, url, description, events, secret)"
            " SELECT $1, $2, $3, $4, $5::text[], $6"
            "  WHERE (SELECT count(*) FROM webhook_endpoints"
            "          WHERE tenant_id = $2 AND disabled_at IS NULL) < $7::int"
            " RETURNING " WITH_SECRET("webhook_endpoints"),
            7, p, err),
        err);
}

char *cz_db_webhook_endpoint_list(PGconn *c, const char *tenant, cz_err *err) {
    const char *p[] = {tenant};
    char *out = first_value(
        cz_db_query(c,
                    "SELECT json_build_object('object', 'list', 'data', COALESCE("
                    "         json_agg(cz_webhook_endpoint_json(e) ORDER BY e.created_at, e.id),"
                    "         '[]'::json))::text"
                    "  FROM webhook_endpoints e WHERE e.tenant_id = $1",
                    1, p, err),
        err);
    if (!out && !err->msg[0])
        cz_err_set(err, "endpoint list returned no row");
    return out;
}

char *cz_db_webhook_endpoint_get(PGconn *c, const char *tenant, const char *id, cz_err *err) {
    const char *p[] = {id, tenant};
    return first_value(
        cz_db_query(c,
                    "SELECT cz_webhook_endpoint_json(e)::text FROM webhook_endpoints e"
                    " WHERE e.id = $1 AND e.tenant_id = $2",
                    2, p, err),
        err);
}

char *cz_db_webhook_endpoint_rotate(PGconn *c, const char *tenant, const char *id,
                                    const char *secret, int window_s, cz_err *err) {
    char window[12];
    snprintf(window, sizeof window, "%d", window_s);
    const char *p[] = {id, tenant, secret, window};
    return first_value(
        cz_db_query(c,
                    "UPDATE webhook_endpoints SET previous_secret = secret,"
                    "       previous_secret_until = now() + $4::int * interval '1 second',"
                    "       secret = $3, updated_at = now()"
                    " WHERE id = $1 AND tenant_id = $2"
                    " RETURNING " WITH_SECRET("webhook_endpoints"),
                    4, p, err),
        err);
}

char *cz_db_webhook_endpoint_enable(PGconn *c, const char *tenant, const char *id, bool enable,
                                    cz_err *err) {
    const char *p[] = {id, tenant, enable ? "true" : "false"};
    return first_value(
        cz_db_query(
            c,
            "WITH e AS ("
            "  UPDATE webhook_endpoints"
            "     SET disabled_at = CASE WHEN $3::bool THEN NULL"
            "                            ELSE COALESCE(disabled_at, now()) END,"
            "         disabled_reason = CASE WHEN $3::bool THEN NULL"
            "                    ELSE COALESCE(disabled_reason, 'disabled through the API') END,"
            "         updated_at = now()"
            "   WHERE id = $1 AND tenant_id = $2 RETURNING *"
            "), x AS ("
            "  UPDATE webhook_deliveries SET state = 'failed', next_attempt_at = NULL,"
            "         last_error = 'not attempted: the endpoint was disabled', updated_at = now()"
            "   WHERE NOT $3::bool AND state = 'pending' AND endpoint_id IN (SELECT id FROM e)"
            ")"
            "SELECT cz_webhook_endpoint_json(ROW(e.*)::webhook_endpoints)::text FROM e",
            3, p, err),
        err);
}

/* ---- the tenant's default secret -------------------------------------------- */

#define SECRET_JSON(s)                                                                             \
    "json_build_object('object', 'webhook_secret', 'secret', " s ".secret,"                        \
    " 'previous_secret_expires_at', CASE WHEN " s ".previous_secret_until > now()"                 \
    "   THEN cz_ts(" s ".previous_secret_until) END,"                                              \
    " 'created_at', cz_ts(" s ".created_at), 'updated_at', cz_ts(" s ".updated_at))::text"

char *cz_db_webhook_secret_get(PGconn *c, const char *tenant, const char *candidate, cz_err *err) {
    const char *p[] = {tenant, candidate};
    /* Two first requests at once: the loser's statement started before the
     * winner's row existed and sees neither; its second try sees it. */
    for (int i = 0; i < 2; i++) {
        char *out = first_value(
            cz_db_query(
                c,
                "WITH i AS (INSERT INTO webhook_secrets (tenant_id, secret)"
                "           VALUES ($1, $2) ON CONFLICT (tenant_id) DO NOTHING"
                "           RETURNING *)"
                "SELECT " SECRET_JSON(
                    "i") " FROM i"
                         " UNION ALL "
                         "SELECT " SECRET_JSON(
                             "w") " FROM webhook_secrets w"
                                  " WHERE w.tenant_id = $1 AND NOT EXISTS (SELECT 1 FROM i)",
                2, p, err),
            err);
        if (out || err->msg[0])
            return out;
    }
    cz_err_set(err, "the tenant's webhook secret could not be read");
    return NULL;
}

char *cz_db_webhook_secret_rotate(PGconn *c, const char *tenant, const char *secret, int window_s,
                                  cz_err *err) {
    char window[12];
    snprintf(window, sizeof window, "%d", window_s);
    const char *p[] = {tenant, secret, window};
    return first_value(
        cz_db_query(c,
                    "INSERT INTO webhook_secrets AS w (tenant_id, secret) VALUES ($1, $2)"
                    " ON CONFLICT (tenant_id) DO UPDATE"
                    "   SET previous_secret = w.secret,"
                    "       previous_secret_until = now() + $3::int * interval '1 second',"
                    "       secret = EXCLUDED.secret, updated_at = now()"
                    " RETURNING " SECRET_JSON("w"),
                    3, p, err),
        err);
}

/* ---- the delivery log --------------------------------------------------------- */

char *cz_db_webhook_deliveries(PGconn *c, const char *tenant, const char *job_id, cz_err *err) {
    const char *p[] = {job_id, tenant};
    return first_value(
        cz_db_query(
            c,
            "SELECT json_build_object('object', 'list', 'data', COALESCE(("
            "         SELECT json_agg(cz_webhook_delivery_json(d)"
            "                         ORDER BY d.sequence, d.created_at, d.id)"
            "           FROM webhook_deliveries d WHERE d.job_id = j.id), '[]'::json))::text"
            "  FROM jobs j WHERE j.id = $1 AND j.tenant_id = $2",
            2, p, err),
        err);
}

int cz_db_webhook_redeliver(PGconn *c, const char *tenant, const char *id, char **json,
                            cz_err *err) {
    const char *p[] = {id, tenant};
    *json = first_value(
        cz_db_query(
            c,
            "WITH u AS ("
            "  UPDATE webhook_deliveries d SET state = 'pending', round_start = d.attempts,"
            "         next_attempt_at = now(), updated_at = now()"
            "   WHERE d.id = $1 AND d.tenant_id = $2"
            "     AND NOT EXISTS (SELECT 1 FROM webhook_endpoints e"
            "                      WHERE e.id = d.endpoint_id AND e.disabled_at IS NOT NULL)"
            "  RETURNING d.*"
            ")"
            "SELECT cz_webhook_delivery_json(ROW(u.*)::webhook_deliveries)::text,"
            "       pg_notify('cadenza_webhooks', '')"
            "  FROM u",
            2, p, err),
        err);
    if (*json)
        return CZ_REDELIVER_QUEUED;
    if (err->msg[0])
        return -1;
    PGresult *r = cz_db_query(
        c, "SELECT 1 FROM webhook_deliveries WHERE id = $1 AND tenant_id = $2", 2, p, err);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    PQclear(r);
    return found ? CZ_REDELIVER_DISABLED : CZ_REDELIVER_NOT_FOUND;
}

/* ---- the dispatcher ------------------------------------------------------------ */

/* The dispatcher's statements run many times a second on its own two
 * sessions, so they are prepared there once (cz_db_webhook_prepare). */
static const char due_sql[] = "SELECT d.id, d.origin FROM webhook_deliveries d"
                              " WHERE d.state = 'pending' AND d.next_attempt_at <= now()"
                              "   AND d.id <> ALL ($2::uuid[]) AND d.origin <> ALL ($3::text[])"
                              " ORDER BY d.next_attempt_at LIMIT $1::int";

static const char load_sql[] =
    "SELECT d.id, d.url, d.origin, d.payload, d.attempts, d.round_start,"
    "       CASE WHEN d.endpoint_id IS NULL THEN s.secret ELSE e.secret END,"
    "       CASE WHEN d.endpoint_id IS NULL"
    "            THEN CASE WHEN s.previous_secret_until > now() THEN s.previous_secret END"
    "            ELSE CASE WHEN e.previous_secret_until > now() THEN e.previous_secret END"
    "       END,"
    "       d.job_id"
    "  FROM webhook_deliveries d"
    "  LEFT JOIN webhook_endpoints e ON e.id = d.endpoint_id"
    "  LEFT JOIN webhook_secrets s ON d.endpoint_id IS NULL AND s.tenant_id = d.tenant_id"
    " WHERE d.id = ANY ($1::uuid[]) AND d.state = 'pending'"
    "   AND (d.endpoint_id IS NULL OR e.disabled_at IS NULL)"
    " ORDER BY d.next_attempt_at";

static const char record_sql[] =
    "WITH r AS ("
    "  SELECT * FROM jsonb_to_recordset($1::jsonb)"
    "    AS r(id uuid, attempt int, started_at timestamptz, status int, latency_ms int,"
    "         error text, excerpt text, state text, delay_ms bigint, gone bool)"
    "), d AS ("
    "  UPDATE webhook_deliveries d"
    "     SET state = r.state, attempts = GREATEST(d.attempts, r.attempt),"
    "         next_attempt_at = CASE WHEN r.state = 'pending'"
    "                           THEN now() + r.delay_ms * interval '1 millisecond' END,"
    "         last_status = r.status, last_error = r.error, updated_at = now(),"
    "         delivered_at = CASE WHEN r.state = 'succeeded' THEN now()"
    "                        ELSE d.delivered_at END"
    "    FROM r WHERE d.id = r.id AND d.state = 'pending'"
    "  RETURNING d.id, d.job_id, d.endpoint_id, d.next_attempt_at, r.gone"
    "), a AS ("
    "  INSERT INTO webhook_attempts (delivery_id, attempt, started_at, status, latency_ms,"
    "                                error, response_excerpt, next_attempt_at)"
    "  SELECT r.id, r.attempt, r.started_at, r.status, r.latency_ms, r.error, r.excerpt,"
    "         d.next_attempt_at"
    "    FROM r LEFT JOIN d ON d.id = r.id"
    "  ON CONFLICT (delivery_id, attempt) DO NOTHING"
    "), g AS ("
    "  UPDATE webhook_endpoints e SET disabled_at = now(), updated_at = now(),"
    "         disabled_reason = 'the receiver answered 410 Gone'"
    "   WHERE e.id IN (SELECT endpoint_id FROM d WHERE gone) AND e.disabled_at IS NULL"
    "  RETURNING e.id"
    /* Driven from the (nearly always empty) gone sets, so a large
     * backlog of pending rows is never scanned. */
    "), x AS ("
    "  UPDATE webhook_deliveries o SET state = 'failed', next_attempt_at = NULL,"
    "         last_error = 'not attempted: the receiver answered 410 Gone earlier',"
    "         updated_at = now()"
    "    FROM g WHERE o.endpoint_id = g.id AND o.state = 'pending'"
    "     AND o.id NOT IN (SELECT id FROM r)"
    "), y AS ("
    "  UPDATE webhook_deliveries o SET state = 'failed', next_attempt_at = NULL,"
    "         last_error = 'not attempted: the receiver answered 410 Gone earlier',"
    "         updated_at = now()"
    "    FROM (SELECT DISTINCT job_id FROM d WHERE gone AND endpoint_id IS NULL) k"
    "   WHERE o.job_id = k.job_id AND o.endpoint_id IS NULL AND o.state = 'pending'"
    "     AND o.id NOT IN (SELECT id FROM r)"
    ")"
    "SELECT count(*) FROM d";

static const struct {
    const char *name, *sql;
    int n;
} statements[] = {
    {"cz_webhook_due", due_sql, 3},
    {"cz_webhook_load", load_sql, 1},
    {"cz_webhook_record", record_sql, 1},
};

int cz_db_webhook_prepare(PGconn *c, cz_err *err) {
    for (size_t i = 0; i < sizeof statements / sizeof *statements; i++) {
        PGresult *r = PQprepare(c, statements[i].name, statements[i].sql, statements[i].n, NULL);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        if (!ok)
            cz_err_set(err, "database: preparing %s: %s", statements[i].name,
                       PQresultErrorMessage(r));
        PQclear(r);
        if (!ok)
            return -1;
    }
    return 0;
}

static PGresult *exec_prepared(PGconn *c, const char *name, int n, const char *const *p,
                               cz_err *err) {
    PGresult *r = PQexecPrepared(c, name, n, p, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_TUPLES_OK || PQresultStatus(r) == PGRES_COMMAND_OK)
        return r;
    cz_err_set(err, "database: %s", r ? PQresultErrorMessage(r) : PQerrorMessage(c));
    PQclear(r);
    return NULL;
}

PGresult *cz_db_webhook_due(PGconn *c, int limit, const char *exclude_ids,
                            const char *exclude_origins, cz_err *err) {
    char lim[12];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {lim, exclude_ids, exclude_origins};
    return exec_prepared(c, "cz_webhook_due", 3, p, err);
}

PGresult *cz_db_webhook_load(PGconn *c, const char *ids, cz_err *err) {
    const char *p[] = {ids};
    return exec_prepared(c, "cz_webhook_load", 1, p, err);
}

int cz_db_webhook_record_send(PGconn *c, const char *attempts_json, cz_err *err) {
    const char *p[] = {attempts_json};
    if (!PQsendQueryPrepared(c, "cz_webhook_record", 1, p, NULL, NULL, 0))
        return cz_err_set(err, "database: %s", PQerrorMessage(c));
    return 0;
}

int cz_db_webhook_record_result(PGconn *c, bool block, cz_err *err) {
    if (!block && (!PQconsumeInput(c) || PQisBusy(c))) {
        if (PQstatus(c) != CONNECTION_OK)
            return cz_err_set(err, "database: %s", PQerrorMessage(c));
        return 0;
    }
    int rc = 1;
    PGresult *r;
    while ((r = PQgetResult(c))) {
        if (PQresultStatus(r) != PGRES_TUPLES_OK && rc == 1)
            rc = cz_err_set(err, "database: %s", PQresultErrorMessage(r));
        PQclear(r);
    }
    return rc;
}
