/* SQL for the review queue: see review.h (a decision as a whole is
 * decision.c).
 *
 * Lock order. A decision locks the task, then its job (one statement, FOR
 * UPDATE OF both); the scheduler locks a job and then inserts its task
 * (a new row nobody else can hold); a claim locks tasks only; a cancel
 * locks only the job. No two of them take the same two locks in opposite
 * orders, so none can deadlock another. */
#include "common/db/review.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db/db.h"
#include "common/job_state.h"
#include "common/json.h"
#include "common/mem.h"

/* ---- the scheduler's side ---------------------------------------------------- */

int cz_db_review_open_tx(PGconn *c, const cz_event *ev, cz_err *err) {
    const cJSON *given = cJSON_GetObjectItemCaseSensitive(ev->root, "reasons");
    cJSON *derived = NULL;
    if (!cJSON_IsArray(given) || !cJSON_GetArraySize(given))
        given = derived = cz_review_reasons(ev->qa, NULL, false, NULL);
    char *reasons = cz_json_print(given);
    cJSON_Delete(derived);
    char attempt[12];
    snprintf(attempt, sizeof attempt, "%d", ev->attempt);
    const char *p[] = {ev->job_id, attempt, reasons};
    long n = cz_db_exec(c,
                        "INSERT INTO review_tasks (job_id, tenant_id, attempt, reasons)"
                        " SELECT id, tenant_id, $2::int, $3::jsonb FROM jobs WHERE id = $1"
                        " ON CONFLICT (job_id) DO NOTHING",
                        3, p, err);
    free(reasons);
    return n < 0 ? -1 : 0;
}

/* ---- the API's side: the queue and claims ---------------------------------- */

/* An open task: undecided, and its job still waiting in in_review. */
#define CZ_OPEN_TASK "r.decision IS NULL AND j.state = 'in_review'"

char *cz_db_review_queue(PGconn *c, const char *tenant, int limit, cz_err *err) {
    char lim[12];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {tenant, lim};
    PGresult *r = cz_db_query(
        c,
        "WITH o AS ("
        "  SELECT r AS task, r.job_id, r.created_at, r.claim_expires_at, j.request"
        "    FROM review_tasks r JOIN jobs j ON j.id = r.job_id"
        "   WHERE r.tenant_id = $1 AND " CZ_OPEN_TASK ")"
        "SELECT json_build_object("
        "  'object', 'review_queue',"
        "  'counts', json_build_object("
        "     'open', (SELECT count(*) FROM o),"
        "     'waiting', (SELECT count(*) FROM o WHERE o.claim_expires_at IS NULL"
        "                                          OR o.claim_expires_at <= now()),"
        "     'claimed', (SELECT count(*) FROM o WHERE o.claim_expires_at > now()),"
        "     'decided_24h', (SELECT count(*) FROM review_tasks d WHERE d.tenant_id = $1"
        "                       AND d.decided_at > now() - interval '24 hours')),"
        "  'oldest_age_s', (SELECT round(extract(epoch FROM now() - min(o.created_at))::numeric, 1)"
        "                     FROM o),"
        "  'data', COALESCE((SELECT json_agg(t.task ORDER BY t.created_at, t.job_id) FROM ("
        "     SELECT o.created_at, o.job_id,"
        "            cz_review_task_json(o.task)::jsonb"
        "            || jsonb_build_object('prompt', o.request -> 'prompt',"
        "                                  'duration_s', o.request -> 'duration_s') AS task"
        "       FROM o ORDER BY o.created_at, o.job_id LIMIT $2::int) t), '[]'))::text",
        2, p, err);
    if (!r)
        return NULL;
    char *out = PQntuples(r) == 1 ? cz_strdup(PQgetvalue(r, 0, 0)) : NULL;
    if (!out)
        cz_err_set(err, "the queue query returned no row");
    PQclear(r);
    return out;
}

/* The claimed task as the claim answers it: the task, its job, the
 * catalogue track its QA matched (with a link to its audio when the file
 * is known) and the manifest's file for the caller to read. Appended to a
 * statement whose CTE c holds the claimed review_tasks row. */
#define CZ_CLAIMED_TASK_JSON                                                                       \
    "SELECT (cz_review_task_json(c.task)::jsonb || jsonb_build_object("                            \
    "  'job', cz_job_json(j),"                                                                     \
    "  'catalog_track', (SELECT json_build_object('id', t.id, 'title', t.title,"                   \
    "       'artist', t.artist, 'duration_s', t.duration_s,"                                       \
    "       'audio_url', CASE WHEN t.source_uri IS NOT NULL"                                       \
    "                         THEN '/v1/catalog/' || t.id || '/audio' END)"                        \
    "     FROM catalog_tracks t, qa_reports q"                                                     \
    "    WHERE q.job_id = COALESCE(j.cached_from, j.id)"                                           \
    "      AND t.id = (q.report #>> '{catalog,best,track_id}')::bigint),"                          \
    "  'manifest_uri', (SELECT a.uri FROM artifacts a WHERE a.job_id = j.id"                       \
    "      AND a.attempt = j.attempt AND a.kind = 'manifest' AND a.deleted_at IS NULL"             \
    "    ORDER BY a.id DESC LIMIT 1)))::text"                                                      \
    "  FROM c JOIN jobs j ON j.id = c.job_id"

/* The audit row of a claim, for the CTE c of claimed rows; $2 the key, $3
 * the lease. */
#define CZ_CLAIM_AUDIT                                                                             \
    "a AS ("                                                                                       \
    "  INSERT INTO review_audit (job_id, tenant_id, action, key_id, key_prefix, detail)"           \
    "  SELECT c.job_id, c.tenant_id, 'claim', k.id, k.prefix,"                                     \
    "         jsonb_build_object('lease_s', $3::int, 'renewed', c.renewed,"                        \
    "                            'expires_at', cz_ts(c.claim_expires_at))"                         \
    "    FROM c, api_keys k WHERE k.id = $2::bigint"                                               \
    ")"

int cz_db_review_claim(PGconn *c, const char *tenant, long long key_id, int lease_s, char **json,
                       cz_err *err) {
    char key[24], lease[12];
    snprintf(key, sizeof key, "%lld", key_id);
    snprintf(lease, sizeof lease, "%d", lease_s);
    const char *p[] = {tenant, key, lease};
    *json = NULL;
    /* The key's own live claim first, renewed: a page reloaded, or a CLI
     * claiming twice, gets its task back rather than a second one. */
    PGresult *r = cz_db_query(
        c,
        "WITH c AS ("
        "  UPDATE review_tasks r SET claim_expires_at = now() + $3::int * interval '1 second'"
        "    FROM jobs j"
        "   WHERE j.id = r.job_id AND r.tenant_id = $1 AND " CZ_OPEN_TASK
        "     AND r.claimed_by = $2::bigint AND r.claim_expires_at > now()"
        "     AND r.job_id = (SELECT r2.job_id FROM review_tasks r2"
        "                      WHERE r2.tenant_id = $1 AND r2.decision IS NULL"
        "                        AND r2.claimed_by = $2::bigint AND r2.claim_expires_at > now()"
        "                      ORDER BY r2.created_at, r2.job_id LIMIT 1)"
        "  RETURNING r AS task, r.job_id, r.tenant_id, r.claim_expires_at, true AS renewed"
        "), " CZ_CLAIM_AUDIT " " CZ_CLAIMED_TASK_JSON,
        3, p, err);
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        /* The oldest task nobody holds. SKIP LOCKED: a task another claim
         * is taking right now is passed over, not waited for, so two
         * curators claiming at once get two tasks, or one gets nothing. */
        r = cz_db_query(
            c,
            "WITH t AS ("
            "  SELECT r.job_id FROM review_tasks r JOIN jobs j ON j.id = r.job_id"
            "   WHERE r.tenant_id = $1 AND " CZ_OPEN_TASK
            "     AND (r.claim_expires_at IS NULL OR r.claim_expires_at <= now())"
            "   ORDER BY r.created_at, r.job_id"
            "   LIMIT 1 FOR UPDATE OF r SKIP LOCKED"
            "), c AS ("
            "  UPDATE review_tasks r SET claimed_by = $2::bigint, claimed_at = now(),"
            "         claim_expires_at = now() + $3::int * interval '1 second',"
            "         claims = r.claims + 1"
            "    FROM t WHERE r.job_id = t.job_id"
            "  RETURNING r AS task, r.job_id, r.tenant_id, r.claim_expires_at, false AS renewed"
            "), " CZ_CLAIM_AUDIT " " CZ_CLAIMED_TASK_JSON,
            3, p, err);
        if (!r)
            return -1;
    }
    int claimed = PQntuples(r) == 1;
    if (claimed)
        *json = cz_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return claimed;
}

/* Why a task cannot be released or decided, from its locked row.
 * @returns CZ_REVIEW_OK when it can. */
int cz_db_review_task_status(PGresult *r, bool need_held) {
    if (PQntuples(r) != 1)
        return CZ_REVIEW_NOT_FOUND;
    if (!PQgetisnull(r, 0, 0))
        return CZ_REVIEW_DECIDED;
    if (strcmp(PQgetvalue(r, 0, 1), "in_review"))
        return CZ_REVIEW_NOT_IN_REVIEW;
    bool live = !strcmp(PQgetvalue(r, 0, 2), "t"), mine = !strcmp(PQgetvalue(r, 0, 3), "t");
    if (need_held && !(live && mine))
        return CZ_REVIEW_NOT_HELD;
    if (live && !mine)
        return CZ_REVIEW_HELD;
    return CZ_REVIEW_OK;
}

/* Locks the task of @p job_id and its job. Columns: decision, job state,
 * claim live, claimed by the key, the key's prefix, job attempt, request,
 * model, max_attempts. */
PGresult *cz_db_review_lock(PGconn *c, const char *tenant, const char *job_id, const char *key,
                            cz_err *err) {
    const char *p[] = {job_id, tenant, key};
    return cz_db_query(c,
                       "SELECT r.decision, j.state,"
                       "       COALESCE(r.claim_expires_at > now(), false),"
                       "       COALESCE(r.claimed_by = $3::bigint, false),"
                       "       (SELECT k.prefix FROM api_keys k WHERE k.id = $3::bigint),"
                       "       j.attempt, j.request::text, j.model, j.max_attempts"
                       "  FROM review_tasks r JOIN jobs j ON j.id = r.job_id"
                       " WHERE r.job_id = $1 AND r.tenant_id = $2"
                       "   FOR UPDATE OF r, j",
                       3, p, err);
}

int cz_db_review_release(PGconn *c, const char *tenant, const char *job_id, long long key_id,
                         cz_err *err) {
    char key[24];
    snprintf(key, sizeof key, "%lld", key_id);
    if (cz_db_begin(c, err))
        return -1;
    PGresult *r = cz_db_review_lock(c, tenant, job_id, key, err);
    int status = r ? cz_db_review_task_status(r, true) : -1;
    PQclear(r);
    const char *p[] = {job_id, key};
    if (status == CZ_REVIEW_OK &&
        cz_db_exec(c,
                   "WITH r AS ("
                   "  UPDATE review_tasks SET claim_expires_at = NULL, claimed_at = NULL,"
                   "         claimed_by = NULL"
                   "   WHERE job_id = $1 RETURNING job_id, tenant_id"
                   ")"
                   "INSERT INTO review_audit (job_id, tenant_id, action, key_id, key_prefix)"
                   " SELECT r.job_id, r.tenant_id, 'release', k.id, k.prefix"
                   "   FROM r, api_keys k WHERE k.id = $2::bigint",
                   2, p, err) != 1)
        status = -1;
    if (status < 0 || cz_db_commit(c, err)) {
        cz_db_rollback(c);
        return -1;
    }
    return status;
}

/* ---- decisions ----------------------------------------------------------- */

void cz_review_outcome_free(cz_review_outcome *out) {
    free(out->json);
    cJSON_Delete(out->announce);
    out->json = NULL;
    out->announce = NULL;
}

/* Records the decision in the task and the audit, and reads back what the
 * caller needs: the answer, the jobs to announce, the cache entry. */
int cz_db_review_record_decision(PGconn *c, const cz_review_decision *d, const char *key,
                                 cz_review_outcome *out, cz_err *err) {
    const char *regenerated = d->kind == CZ_REVIEW_REGENERATE ? d->new_job_id : NULL;
    const char *p[] = {d->job_id, cz_review_decision_name(d->kind), key, d->reason, regenerated};
    long n = cz_db_exec(
        c,
        "WITH r AS ("
        "  UPDATE review_tasks SET decision = $2, decided_by = $3::bigint, decided_at = now(),"
        "         notes = $4, regenerated_job = $5::uuid"
        "   WHERE job_id = $1 RETURNING *"
        ")"
        "INSERT INTO review_audit (job_id, tenant_id, action, key_id, key_prefix, reason, detail)"
        " SELECT r.job_id, r.tenant_id, $2, k.id, k.prefix, $4,"
        "        jsonb_strip_nulls(jsonb_build_object('regenerated_job', $5::uuid,"
        "                                             'reasons', r.reasons))"
        "   FROM r, api_keys k WHERE k.id = $3::bigint",
        5, p, err);
    if (n != 1)
        return n < 0 ? -1 : cz_err_set(err, "the review task of job %s vanished", d->job_id);
    /* A statement of its own, so that the job's JSON shows the decision. */
    const char *q[] = {d->job_id};
    PGresult *r = cz_db_query(
        c,
        "SELECT json_build_object('object', 'review_decision', 'job_id', r.job_id,"
        "         'decision', r.decision, 'reason', r.notes,"
        "         'decided_by', (SELECT k.prefix FROM api_keys k WHERE k.id = r.decided_by),"
        "         'decided_at', cz_ts(r.decided_at),"
        "         'job', cz_job_json(j),"
        "         'regenerated_job', (SELECT cz_job_json(n) FROM jobs n"
        "                              WHERE n.id = r.regenerated_job))::text,"
        "       ARRAY(SELECT f.id::text FROM jobs f WHERE f.coalesced_into = j.id"
        "                AND f.state <> 'queued'),"
        "       j.state = 'succeeded' AND j.cache_key IS NOT NULL AND j.cached_from IS NULL,"
        "       COALESCE(j.cache_key, ''), j.model, COALESCE(j.model_version, '')"
        "  FROM review_tasks r JOIN jobs j ON j.id = r.job_id WHERE r.job_id = $1",
        1, q, err);
    if (!r)
        return -1;
    if (PQntuples(r) != 1) {
        PQclear(r);
        return cz_err_set(err, "the review task of job %s vanished", d->job_id);
    }
    out->json = cz_strdup(PQgetvalue(r, 0, 0));
    out->announce = cJSON_CreateArray();
    cJSON_AddItemToArray(out->announce, cJSON_CreateString(d->job_id));
    if (regenerated)
        cJSON_AddItemToArray(out->announce, cJSON_CreateString(regenerated));
    /* The followers, as a Postgres array literal: {id,id,...} (uuids need no quoting). */
    char *list = cz_strdup(PQgetvalue(r, 0, 1));
    /* strtok_r: the API runs a thread per connection, and strtok's hidden
     * state would be shared between them. */
    char *save = NULL;
    for (char *s = strtok_r(list + 1, ",}", &save); s; s = strtok_r(NULL, ",}", &save))
        cJSON_AddItemToArray(out->announce, cJSON_CreateString(s));
    free(list);
    out->cacheable = !strcmp(PQgetvalue(r, 0, 2), "t");
    snprintf(out->cache_key, sizeof out->cache_key, "%s", PQgetvalue(r, 0, 3));
    snprintf(out->model, sizeof out->model, "%s", PQgetvalue(r, 0, 4));
    snprintf(out->model_version, sizeof out->model_version, "%s", PQgetvalue(r, 0, 5));
    PQclear(r);
    return 0;
}
