/* SQL for jobs: see db_jobs.h.
 *
 * Guarded transitions. Every change of state is one
 *   UPDATE jobs SET state = <to> WHERE id = $1 AND attempt = $2 AND state = ANY(<from>)
 * with <from> taken from the state machine (job_state.c). Zero rows updated
 * means the event is a duplicate, arrived after a later stage's, or belongs
 * to an earlier attempt: the event is dropped and nothing else is written,
 * because the rest of the transaction runs only after the guard passed. */
#include "common/db/jobs.h"

#include "common/buf.h"
#include "common/db/db.h"
#include "common/db/outbox.h"
#include "common/db/review.h"
#include "common/db/webhooks.h"
#include "common/failure.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/webhook.h"

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Price per generated audio minute, in millionths of the billing currency. */
#define CZ_PRICE_PER_MINUTE_MICROS "20000"

/* The states in which a job can still take identical requests aboard. */
#define CZ_IN_FLIGHT                                                                               \
    "('queued', 'dispatched', 'generating', 'generated', 'postprocessing', 'in_review')"

char *cz_db_job_get(PGconn *c, const char *tenant, const char *id, cz_err *err) {
    const char *p[] = {id, tenant};
    cz_err_clear(err);
    PGresult *r = cz_db_query(
        c, "SELECT cz_job_json(j)::text FROM jobs j WHERE j.id = $1 AND j.tenant_id = $2", 2, p,
        err);
    if (!r)
        return NULL;
    char *out = PQntuples(r) ? cz_strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return out;
}

int cz_db_job_exists(PGconn *c, const char *tenant, const char *id, cz_err *err) {
    const char *p[] = {id, tenant};
    PGresult *q = cz_db_query(c, "SELECT 1 FROM jobs WHERE id = $1 AND tenant_id = $2", 2, p, err);
    if (!q)
        return -1;
    int found = PQntuples(q) == 1;
    PQclear(q);
    return found;
}

/* The job's row is joined even when no event follows, so a reader learns
 * that it exists, its state and when it was submitted. */
PGresult *cz_db_job_history(PGconn *c, const char *id, long long after, int limit, cz_err *err) {
    char from[24], lim[12];
    snprintf(from, sizeof from, "%lld", after);
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {id, from, lim};
    return cz_db_query(
        c,
        "SELECT e.id, e.event, e.state, cz_ts(e.created_at),"
        "       e.detail ->> 'stage', e.detail -> 'percent', j.state, cz_ts(j.created_at)"
        "  FROM jobs j LEFT JOIN LATERAL ("
        "    SELECT * FROM job_events e WHERE e.job_id = j.id AND e.id > $2::bigint"
        "     ORDER BY e.id LIMIT $3::int) e ON true"
        " WHERE j.id = $1",
        3, p, err);
}

char *cz_db_job_list(PGconn *c, const char *tenant, const char *before, const char *state,
                     int limit, cz_err *err) {
    char lim[12];
    snprintf(lim, sizeof lim, "%d", limit + 1); /* one extra row tells has_more */
    const char *p[] = {tenant, before, state, lim};
    PGresult *r = cz_db_query(c,
                              "SELECT j.id, cz_job_json(j)::text FROM jobs j"
                              " WHERE j.tenant_id = $1 AND ($2::uuid IS NULL OR j.id < $2::uuid)"
                              "   AND ($3::text IS NULL OR j.state = $3)"
                              " ORDER BY j.id DESC LIMIT $4",
                              4, p, err);
    if (!r)
        return NULL;
    int rows = PQntuples(r);
    int shown = rows > limit ? limit : rows;
    size_t cap = 128;
    for (int i = 0; i < shown; i++)
        cap += (size_t)PQgetlength(r, i, 1) + 1;
    char *out = cz_malloc(cap);
    size_t len = (size_t)sprintf(out, "{\"object\":\"list\",\"data\":[");
    for (int i = 0; i < shown; i++) {
        if (i)
            out[len++] = ',';
        size_t n = (size_t)PQgetlength(r, i, 1);
        memcpy(out + len, PQgetvalue(r, i, 1), n);
        len += n;
    }
    if (rows > limit)
        sprintf(out + len, "],\"has_more\":true,\"next_cursor\":\"%.36s\"}",
                PQgetvalue(r, shown - 1, 0));
    else
        sprintf(out + len, "],\"has_more\":false,\"next_cursor\":null}");
    PQclear(r);
    return out;
}

int cz_db_job_artifact(PGconn *c, const char *tenant, const char *id, const char *kind,
                       const char *name, const char *format, char *uri, size_t n, cz_err *err) {
    const char *p[] = {id, tenant, kind, format, name};
    PGresult *r = cz_db_query(c,
                              "SELECT a.uri FROM jobs j"
                              "  JOIN jobs s ON s.id = COALESCE(j.cached_from, j.id)"
                              "  JOIN artifacts a ON a.job_id = s.id AND a.attempt = s.attempt"
                              " WHERE j.id = $1 AND j.tenant_id = $2 AND a.kind = $3"
                              "   AND a.format = $4 AND ($5::text IS NULL OR a.name = $5)"
                              " ORDER BY a.id DESC LIMIT 1",
                              5, p, err);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    if (found)
        snprintf(uri, n, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    return found;
}

/* ---- the scheduler's side: events -------------------------------------- */

/* Progress renews the lease and is kept in the history, so a client that
 * follows the job live (GET /v1/jobs/{id}/events) can resume from it. */
static int apply_progress(PGconn *c, const cz_event *ev, const char *attempt, const char *lease,
                          cz_err *err) {
    char from[CZ_STATE_LIST_LEN], percent[32];
    cz_job_event_from_states(CZ_EV_PROGRESS, from);
    snprintf(percent, sizeof percent, "%.2f", ev->percent);
    char *detail = cz_json_print(ev->root);
    const char *p[] = {ev->job_id, attempt, ev->stage, percent, lease, from, detail};
    long n = cz_db_exec(c,
                        "WITH j AS ("
                        "  UPDATE jobs SET stage = COALESCE($3, stage), progress = $4::real,"
                        "    lease_expires_at = now() + $5::int * interval '1 second',"
                        "    updated_at = now()"
                        "   WHERE id = $1 AND attempt = $2::int AND state = ANY($6::text[])"
                        "  RETURNING id, attempt, state"
                        ")"
                        "INSERT INTO job_events (job_id, attempt, event, state, detail)"
                        " SELECT id, attempt, 'progress', state, $7::jsonb FROM j",
                        7, p, err);
    free(detail);
    if (n > 0 && cz_db_webhook_enqueue_tx(c, ev->job_id, "job.progress", err) < 0)
        return -1;
    return n < 0 ? -1 : n > 0;
}

static int record_artifacts(PGconn *c, const cz_event *ev, const char *attempt, cz_err *err) {
    if (!ev->artifacts || !cJSON_GetArraySize(ev->artifacts))
        return 0;
    char *json = cz_json_print(ev->artifacts);
    const char *p[] = {ev->job_id, attempt, json};
    long n = cz_db_exec(
        c,
        "INSERT INTO artifacts (job_id, attempt, kind, name, format, uri, sha256, bytes,"
        "                       duration_s)"
        " SELECT $1, $2::int, a.kind, a.name, a.format, a.uri, a.sha256, a.bytes, a.duration_s"
        "   FROM jsonb_to_recordset($3::jsonb) AS a(kind text, name text, format text, uri text,"
        "                                          sha256 text, bytes bigint,"
        "                                          duration_s double precision)"
        " ON CONFLICT (job_id, attempt, kind, name, format) DO NOTHING",
        3, p, err);
    free(json);
    return n < 0 ? -1 : 0;
}

static int record_qa(PGconn *c, const cz_event *ev, const char *attempt, cz_err *err) {
    if (!ev->qa)
        return 0;
    char *json = cz_json_print(ev->qa);
    const char *p[] = {ev->job_id, attempt, json};
    long n = cz_db_exec(c,
                        "INSERT INTO qa_reports (job_id, attempt, report) VALUES ($1, $2, $3)"
                        " ON CONFLICT (job_id) DO UPDATE"
                        "   SET attempt = EXCLUDED.attempt, report = EXCLUDED.report,"
                        "       created_at = now()",
                        3, p, err);
    free(json);
    return n < 0 ? -1 : 0;
}

/* Bills the job once: the ledger's primary key is the job id. Only a
 * succeeded job is charged for its audio; every terminal job gets its row. */
static int record_usage(PGconn *c, const char *job_id, cz_err *err) {
    const char *p[] = {job_id};
    long n = cz_db_exec(
        c,
        "INSERT INTO usage_ledger (job_id, tenant_id, outcome, audio_seconds, compute_ms,"
        "                          cost_micros)"
        " SELECT j.id, j.tenant_id, j.state, s.audio, j.compute_ms,"
        "        round(s.audio / 60.0 * " CZ_PRICE_PER_MINUTE_MICROS ")::bigint"
        "   FROM jobs j, LATERAL (SELECT CASE WHEN j.state = 'succeeded' THEN COALESCE(("
        "          SELECT a.duration_s FROM artifacts a WHERE a.job_id = j.id"
        "             AND a.attempt = j.attempt AND a.kind = 'master' LIMIT 1), 0)"
        "          ELSE 0 END AS audio) s"
        "  WHERE j.id = $1"
        " ON CONFLICT (job_id) DO NOTHING",
        1, p, err);
    return n < 0 ? -1 : 0;
}

/* After a guard refused an event: a canceled job's late result has files
 * to remove; anything else is simply a duplicate or stale event. */
static int refused(PGconn *c, const cz_event *ev, cz_err *err) {
    if (!ev->artifacts || !cJSON_GetArraySize(ev->artifacts))
        return CZ_APPLY_NOOP;
    const char *p[] = {ev->job_id};
    PGresult *r = cz_db_query(c, "SELECT state = 'canceled' FROM jobs WHERE id = $1", 1, p, err);
    if (!r)
        return -1;
    bool canceled = PQntuples(r) && !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return canceled ? CZ_APPLY_CANCELED : CZ_APPLY_NOOP;
}

static int record_history(PGconn *c, const cz_event *ev, const char *attempt, const char *event,
                          const char *state, cz_err *err) {
    char *detail = cz_json_print(ev->root);
    const char *p[] = {ev->job_id, attempt, event, state, detail};
    long n = cz_db_exec(c,
                        "INSERT INTO job_events (job_id, attempt, event, state, detail)"
                        " VALUES ($1, $2::int, $3, $4, $5::jsonb)",
                        5, p, err);
    free(detail);
    return n < 0 ? -1 : 0;
}

/* The inference worker produces its generated event and the post message
 * independently, so the post worker's events can reach the scheduler first
 * and move the job past "generated"; the late generated event's transition
 * is then refused. The files it names (raw mix, MIDI score, stems) still
 * belong to the job, so they are recorded when the job is in a later state
 * of the same attempt; the history keeps only transitions, and the post
 * worker's manifest keeps the provenance either way. A canceled, failed or
 * rejected job's late result stays discarded.
 * @returns 1 recorded, 0 nothing to do, -1 on error. */
static int record_late_generated(PGconn *c, const cz_event *ev, const char *attempt, cz_err *err) {
    if (!ev->artifacts || !cJSON_GetArraySize(ev->artifacts))
        return 0;
    const char *p[] = {ev->job_id, attempt};
    PGresult *r = cz_db_query(c,
                              "SELECT 1 FROM jobs WHERE id = $1 AND attempt = $2::int"
                              "   AND state IN ('postprocessing', 'in_review', 'succeeded')",
                              2, p, err);
    if (!r)
        return -1;
    int later = PQntuples(r) > 0;
    PQclear(r);
    if (!later)
        return 0;
    return record_artifacts(c, ev, attempt, err) ? -1 : 1;
}

/* A job that ended takes the identical requests that waited for it along:
 * succeeded, they reference its files (billed nothing: nothing more was
 * generated); failed or rejected, they end the same way. A canceled job
 * hands them on instead (cz_db_job_cancel). */
static int complete_followers(PGconn *c, const char *job_id, cz_err *err) {
    const char *p[] = {job_id};
    PGresult *r = cz_db_query(
        c,
        "WITH l AS ("
        "  SELECT * FROM jobs WHERE id = $1 AND state IN ('succeeded', 'failed', 'rejected')"
        "), f AS ("
        "  UPDATE jobs f SET state = l.state, updated_at = now(), finished_at = now(),"
        "         started_at = COALESCE(f.started_at, now()),"
        "         cached_from = CASE WHEN l.state = 'succeeded' THEN l.id END,"
        "         stage = CASE WHEN l.state = 'succeeded' THEN 'cached' ELSE l.stage END,"
        "         progress = CASE WHEN l.state = 'succeeded' THEN 100 ELSE f.progress END,"
        "         failure_class = l.failure_class, failure_detail = l.failure_detail"
        "    FROM l WHERE f.coalesced_into = l.id AND f.state = 'queued'"
        "  RETURNING f.id, f.tenant_id, f.attempt, f.state"
        "), e AS ("
        "  INSERT INTO job_events (job_id, attempt, event, state, detail)"
        "  SELECT f.id, f.attempt, 'leader_done', f.state, jsonb_build_object('leader', $1::uuid)"
        "    FROM f"
        "), u AS ("
        "  INSERT INTO usage_ledger (job_id, tenant_id, outcome, audio_seconds, compute_ms,"
        "                            cost_micros, cached)"
        "  SELECT f.id, f.tenant_id, f.state, CASE WHEN f.state = 'succeeded' THEN COALESCE(("
        "           SELECT a.duration_s FROM artifacts a, l WHERE a.job_id = l.id"
        "              AND a.attempt = l.attempt AND a.kind = 'master' LIMIT 1), 0) ELSE 0 END,"
        "         0, 0, true"
        "    FROM f ON CONFLICT (job_id) DO NOTHING"
        ")"
        "SELECT f.id, f.state FROM f",
        1, p, err);
    int rc = r ? 0 : -1;
    /* Each follower's own webhooks, as for any change of state. */
    for (int i = 0; r && !rc && i < PQntuples(r); i++) {
        int state = cz_job_state_parse(PQgetvalue(r, i, 1));
        const char *event = state < 0 ? NULL : cz_webhook_event_for_state((cz_job_state)state);
        if (event && cz_db_webhook_enqueue_tx(c, PQgetvalue(r, i, 0), event, err) < 0)
            rc = -1;
    }
    PQclear(r);
    return rc;
}

int cz_db_job_complete_followers(PGconn *c, const char *leader_id, cz_err *err) {
    return complete_followers(c, leader_id, err);
}

PGresult *cz_db_job_ended(PGconn *c, const char *ids, cz_err *err) {
    const char *p[] = {ids};
    return cz_db_query(
        c,
        "SELECT j.id, j.state = 'succeeded' AND j.cache_key IS NOT NULL AND j.cached_from IS NULL,"
        "       j.cache_key, j.model, COALESCE(j.model_version, ''),"
        "       array_to_string(ARRAY(SELECT f.id FROM jobs f WHERE f.coalesced_into = j.id"
        "                             AND f.state <> 'queued'), ' ')"
        "  FROM jobs j"
        " WHERE j.id IN (SELECT jsonb_array_elements_text($1::jsonb)::uuid)"
        "   AND j.state IN ('succeeded', 'failed', 'rejected')",
        1, p, err);
}

static int apply_transition(PGconn *c, const cz_event *ev, const char *attempt, const char *lease,
                            cz_err *err) {
    int to = cz_job_event_target(ev->type);
    if (to < 0)
        return CZ_APPLY_NOOP;
    char from[CZ_STATE_LIST_LEN], compute[24];
    cz_job_event_from_states(ev->type, from);
    snprintf(compute, sizeof compute, "%lld", ev->compute_ms);
    bool terminal = cz_job_state_terminal((cz_job_state)to);
    const cJSON *chosen = cJSON_GetObjectItemCaseSensitive(ev->root, "chosen");
    const char *version = cz_json_str(chosen, "model_version");
    const char *p[] = {ev->job_id,
                       attempt,
                       cz_job_state_name((cz_job_state)to),
                       from,
                       lease,
                       compute,
                       terminal ? "true" : "false",
                       ev->stage,
                       ev->failure_class,
                       ev->failure_detail,
                       version};
    long n = cz_db_exec(c,
                        "UPDATE jobs SET state = $3, updated_at = now(),"
                        "  stage = COALESCE($8, stage),"
                        "  progress = CASE WHEN $3 = 'succeeded' THEN 100 ELSE progress END,"
                        "  compute_ms = compute_ms + $6::bigint,"
                        "  started_at = COALESCE(started_at, now()),"
                        "  finished_at = CASE WHEN $7::bool THEN now() END,"
                        "  next_attempt_at = NULL,"
                        "  lease_expires_at = CASE WHEN $3 IN ('generating', 'postprocessing')"
                        "                     THEN now() + $5::int * interval '1 second' END,"
                        "  failure_class = COALESCE($9, failure_class),"
                        "  failure_detail = COALESCE($10, failure_detail),"
                        "  model_version = COALESCE($11, model_version)"
                        " WHERE id = $1 AND attempt = $2::int AND state = ANY($4::text[])",
                        11, p, err);
    if (n < 0)
        return -1;
    if (n == 0 && ev->type == CZ_EV_GENERATED) {
        int late = record_late_generated(c, ev, attempt, err);
        if (late != 0)
            return late < 0 ? -1 : CZ_APPLY_NOOP; /* recorded; the job did not move */
    }
    if (n == 0)
        return refused(c, ev, err);
    if (record_history(c, ev, attempt, cz_job_event_name(ev->type),
                       cz_job_state_name((cz_job_state)to), err) ||
        record_artifacts(c, ev, attempt, err) || record_qa(c, ev, attempt, err))
        return -1;
    /* A flagged job waits for a curator: its review task opens with it. */
    if (to == CZ_JOB_IN_REVIEW && cz_db_review_open_tx(c, ev, err))
        return -1;
    if (terminal && (record_usage(c, ev->job_id, err) || complete_followers(c, ev->job_id, err)))
        return -1;
    /* Deliveries commit with the change they announce, or not at all. */
    const char *announce = cz_webhook_event_for_state((cz_job_state)to);
    if (announce && cz_db_webhook_enqueue_tx(c, ev->job_id, announce, err) < 0)
        return -1;
    return CZ_APPLY_DONE;
}

/* ---- failures: retry or give up ------------------------------------------ */

/* The next attempt: back to queued with attempt + 1 and a fresh generate
 * message in the outbox that the relay publishes once the backoff ends. */
static int schedule_retry(PGconn *c, const cz_event *ev, const char *attempt, int64_t delay_ms,
                          cz_err *err) {
    char from[CZ_STATE_LIST_LEN], delay[24], compute[24];
    cz_job_event_from_states(CZ_EV_RETRY, from);
    snprintf(delay, sizeof delay, "%lld", (long long)delay_ms);
    snprintf(compute, sizeof compute, "%lld", ev->compute_ms);
    const char *cls = cz_failure_class_valid(ev->failure_class) ? ev->failure_class : "internal";
    const char *p[] = {ev->job_id, attempt, from, delay, cls, ev->failure_detail, compute};
    long n = cz_db_exec(
        c,
        "WITH j AS ("
        "  UPDATE jobs SET state = 'queued', attempt = attempt + 1, updated_at = now(),"
        "    next_attempt_at = now() + $4::bigint * interval '1 millisecond',"
        "    lease_expires_at = NULL, stage = NULL, progress = 0,"
        "    failure_class = $5, failure_detail = $6, compute_ms = compute_ms + $7::bigint"
        "   WHERE id = $1 AND attempt = $2::int AND state = ANY($3::text[])"
        "  RETURNING *"
        ")"
        "INSERT INTO outbox (topic, key, payload, headers, available_at)"
        " SELECT 'cadenza.jobs.generate', j.id::text, cz_generate_message(ROW(j.*)::jobs),"
        "        cz_message_headers(ROW(j.*)::jobs, '00-' || j.trace_id || '-'"
        "                           || substr(md5(random()::text), 1, 16) || '-01'),"
        "        j.next_attempt_at"
        "   FROM j",
        7, p, err);
    if (n <= 0)
        return n < 0 ? -1 : CZ_APPLY_NOOP;
    return record_history(c, ev, attempt, "retry", "queued", err) ? -1 : CZ_APPLY_DONE;
}

/* A copy of what failed goes to the dead-letter topic, via the outbox. */
static int dead_letter(PGconn *c, const cz_event *ev, cz_err *err) {
    char *event = cz_json_print(ev->root);
    const char *p[] = {ev->job_id, event};
    long n = cz_db_exec(
        c,
        "INSERT INTO outbox (topic, key, payload, headers)"
        " SELECT 'cadenza.jobs.dlq', j.id::text,"
        "        jsonb_build_object('schema', 1, 'job_id', j.id, 'attempt', j.attempt,"
        "                           'failure', jsonb_build_object('class', j.failure_class,"
        "                                                         'detail', j.failure_detail),"
        "                           'event', $2::jsonb, 'message', cz_generate_message(j)),"
        "        cz_message_headers(j, NULL)"
        "   FROM jobs j WHERE j.id = $1",
        2, p, err);
    free(event);
    return n < 0 ? -1 : 0;
}

static int apply_failure(PGconn *c, const cz_event *ev, const char *attempt, const char *lease,
                         const cz_apply_policy *policy, cz_err *err) {
    const char *p[] = {ev->job_id};
    PGresult *r = cz_db_query(c,
                              "SELECT attempt, max_attempts, state, lease_expires_at < now()"
                              "  FROM jobs WHERE id = $1 FOR UPDATE",
                              1, p, err);
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return CZ_APPLY_NOOP;
    }
    int cur = atoi(PQgetvalue(r, 0, 0)), max = atoi(PQgetvalue(r, 0, 1));
    int state = cz_job_state_parse(PQgetvalue(r, 0, 2));
    bool expired = !strcmp(PQgetvalue(r, 0, 3), "t");
    PQclear(r);
    if (cur != ev->attempt || state < 0 || cz_job_transition((cz_job_state)state, CZ_EV_FAILED) < 0)
        return refused(c, ev, err);
    /* The sweeper saw an old lease; a progress event may have renewed it since. */
    if (ev->worker && !strcmp(ev->worker, CZ_LEASE_SWEEPER) && !expired)
        return CZ_APPLY_NOOP;

    if (cz_failure_retryable(ev->failure_class) && cur < max) {
        uint64_t dice;
        cz_random_bytes(&dice, sizeof dice);
        int64_t delay =
            cz_failure_backoff_ms(cur, policy->retry_base_ms, policy->retry_cap_ms, dice);
        return schedule_retry(c, ev, attempt, delay, err);
    }
    int rc = apply_transition(c, ev, attempt, lease, err);
    if (rc == CZ_APPLY_DONE && dead_letter(c, ev, err))
        return -1;
    return rc;
}

int cz_db_job_apply_tx(PGconn *c, const cz_event *ev, const cz_apply_policy *policy, cz_err *err) {
    char attempt[12], lease[12];
    snprintf(attempt, sizeof attempt, "%d", ev->attempt);
    snprintf(lease, sizeof lease, "%d", policy->lease_s);
    switch (ev->type) {
    case CZ_EV_PROGRESS:
        return apply_progress(c, ev, attempt, lease, err);
    case CZ_EV_FAILED:
        return apply_failure(c, ev, attempt, lease, policy, err);
    default:
        return apply_transition(c, ev, attempt, lease, err);
    }
}

int cz_db_job_apply(PGconn *c, const cz_event *ev, const cz_apply_policy *policy, cz_err *err) {
    if (cz_db_begin(c, err))
        return -1;
    int rc = cz_db_job_apply_tx(c, ev, policy, err);
    if (rc < 0 || cz_db_commit(c, err)) {
        cz_db_rollback(c);
        return -1;
    }
    return rc;
}

/* ---- the API's side: cancel, idempotent create --------------------------- */

/* A canceled job that identical requests were waiting for hands them on:
 * the oldest becomes the one that generates (its generate message goes out)
 * and the others wait for it instead. */
static int promote_follower(PGconn *c, const char *id, cz_err *err) {
    const char *p[] = {id};
    long n = cz_db_exec(
        c,
        "WITH n AS ("
        "  UPDATE jobs SET coalesced_into = NULL, updated_at = now()"
        "   WHERE id = (SELECT id FROM jobs WHERE coalesced_into = $1 AND state = 'queued'"
        "                ORDER BY id LIMIT 1)"
        "  RETURNING *"
        "), r AS ("
        "  UPDATE jobs f SET coalesced_into = n.id FROM n"
        "   WHERE f.coalesced_into = $1 AND f.state = 'queued' AND f.id <> n.id"
        "), e AS ("
        "  INSERT INTO job_events (job_id, attempt, event, state, detail)"
        "  SELECT id, attempt, 'promoted', 'queued', jsonb_build_object('replaces', $1::uuid)"
        "    FROM n"
        ")"
        "INSERT INTO outbox (topic, key, payload, headers)"
        " SELECT 'cadenza.jobs.generate', n.id::text, cz_generate_message(n),"
        "        cz_message_headers(n, NULL)"
        "   FROM n",
        1, p, err);
    return n < 0 ? -1 : 0;
}

long cz_db_job_insert_regenerated_tx(PGconn *c, const char *const p[10], cz_err *err) {
    return cz_db_exec(c,
                      "WITH j AS ("
                      "  INSERT INTO jobs (id, tenant_id, request, request_hash, model, seed,"
                      "                    trace_id, max_attempts, regenerated_from)"
                      "  VALUES ($1, $2, $3::jsonb, $4, $5, $6::bigint, $7, $8::int, $9)"
                      "  RETURNING *"
                      ")"
                      "INSERT INTO outbox (topic, key, payload, headers)"
                      " SELECT 'cadenza.jobs.generate', j.id::text,"
                      "        cz_generate_message(ROW(j.*)::jobs),"
                      "        cz_message_headers(ROW(j.*)::jobs, $10)"
                      "   FROM j",
                      10, p, err);
}

int cz_db_job_cancel(PGconn *c, const char *tenant, const char *id, char **json, cz_err *err) {
    char from[CZ_STATE_LIST_LEN];
    cz_job_event_from_states(CZ_EV_CANCEL, from);
    const char *p[] = {id, tenant, from};
    *json = NULL;
    if (cz_db_begin(c, err))
        return -1;
    /* The relay locks an outbox row, then its job (mark published, move to
     * dispatched); taking the job's unpublished generate message first keeps
     * the same order here, so a cancel racing the relay waits instead of
     * deadlocking. A row the relay has just published is skipped. */
    long locked = cz_db_outbox_lock_generate(c, id, err);
    if (locked < 0) {
        cz_db_rollback(c);
        return -1;
    }
    /* One statement: the state change, its history, its ledger row, and the
     * generate message if it has not left yet; then, in the same
     * transaction, the job.canceled webhooks and the hand-over to the
     * identical requests that waited for this job. */
    PGresult *r = cz_db_query(
        c,
        "WITH j AS ("
        "  UPDATE jobs SET state = 'canceled', updated_at = now(), finished_at = now(),"
        "         lease_expires_at = NULL, next_attempt_at = NULL"
        "   WHERE id = $1 AND tenant_id = $2 AND state = ANY($3::text[])"
        "  RETURNING *"
        "), e AS ("
        "  INSERT INTO job_events (job_id, attempt, event, state)"
        "  SELECT id, attempt, 'cancel', 'canceled' FROM j"
        "), l AS ("
        "  INSERT INTO usage_ledger (job_id, tenant_id, outcome, audio_seconds, compute_ms,"
        "                            cost_micros)"
        "  SELECT id, tenant_id, 'canceled', 0, compute_ms, 0 FROM j"
        "  ON CONFLICT (job_id) DO NOTHING"
        "), o AS ("
        "  DELETE FROM outbox WHERE key = $1::text AND published_at IS NULL"
        "     AND topic = 'cadenza.jobs.generate' AND EXISTS (SELECT 1 FROM j)"
        ")"
        "SELECT cz_job_json(ROW(j.*)::jobs)::text FROM j",
        3, p, err);
    if (r && PQntuples(r)) {
        *json = cz_strdup(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (cz_db_webhook_enqueue_tx(c, id, "job.canceled", err) < 0 ||
            promote_follower(c, id, err) || cz_db_commit(c, err)) {
            cz_db_rollback(c);
            free(*json);
            *json = NULL;
            return -1;
        }
        return 1;
    }
    PQclear(r);
    cz_db_rollback(c); /* nothing was written */
    if (!r)
        return -1;
    *json = cz_db_job_get(c, tenant, id, err);
    if (!*json)
        return err && err->msg[0] ? -1 : 0;
    return 2;
}

/* ---- submission: group commit ------------------------------------------ */

/* insert_one's answer when an identical job is in flight (see insert_keyed). */
#define CZ_INSERT_IN_FLIGHT 2

/* The generate message and its headers, for the job row j and its
 * traceparent: one definition for the single and the batched insert. As in
 * cz_generate_message() (0014_models.sql), the message's request names the
 * version that runs (the job's model), which a bare model name was routed to. */
#define CZ_OUTBOX_OF_JOB(traceparent)                                                              \
    "  INSERT INTO outbox (topic, key, payload, headers)"                                          \
    "  SELECT 'cadenza.jobs.generate', j.id::text,"                                                \
    "         jsonb_build_object('schema', 1, 'job_id', j.id, 'attempt', j.attempt,"               \
    "                            'tenant', j.tenant_id, 'model', j.model, 'seed', j.seed,"         \
    "                            'trace_id', j.trace_id,"                                          \
    "                            'request', jsonb_set(j.request, '{model}', to_jsonb(j.model))),"  \
    "         jsonb_build_object('traceparent', " traceparent ", 'job_id', j.id::text,"            \
    "                            'attempt', j.attempt::text, 'tenant', j.tenant_id)"

/* Inserts one job and its outbox row; with a quota (quota_s >= 0), only if
 * the tenant's usage this month, plus what its open jobs asked for, plus
 * this job, stays within it. @returns 1 stored (*json set), 0 over quota,
 * -1 with @p err. */
static int insert_one(PGconn *c, const cz_job_submit *s, char **json, cz_err *err) {
    static const char sql[] =
        "WITH q AS ("
        "  SELECT $10::float8 < 0 OR u.used_s + u.reserved_s + $11::float8 <= $10::float8 AS ok"
        "    FROM cz_tenant_usage($2) u"
        "), j AS ("
        "  INSERT INTO jobs (id, tenant_id, request, request_hash, model, seed, trace_id,"
        "                    max_attempts, cache_key)"
        "  SELECT $1, $2, $3::jsonb, $4, $5, $6, $7, $8, $12 WHERE (SELECT ok FROM q)"
        "  ON CONFLICT (cache_key) WHERE cache_key IS NOT NULL AND coalesced_into IS NULL"
        "     AND cached_from IS NULL AND state IN " CZ_IN_FLIGHT " DO NOTHING"
        "  RETURNING *"
        "), o AS (" CZ_OUTBOX_OF_JOB(
            "$9::text") "  FROM j"
                        ")"
                        "SELECT q.ok, (SELECT cz_job_json(ROW(j.*)::jobs)::text FROM j)"
                        "  FROM q";
    const cz_job_new *j = &s->job;
    char seed[24], max_attempts[12], quota[32], duration[32];
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)j->seed);
    snprintf(max_attempts, sizeof max_attempts, "%d", j->max_attempts);
    snprintf(quota, sizeof quota, "%.17g", s->quota_s);
    snprintf(duration, sizeof duration, "%.17g", s->duration_s);
    if (s->quota_s >= 0) {
        const char *l[] = {j->tenant};
        if (cz_db_exec(c, "SELECT pg_advisory_xact_lock(hashtext('cadenza:quota:' || $1))", 1, l,
                       err) < 0)
            return -1;
    }
    const char *p[] = {j->id,          j->tenant, j->request,  j->request_hash,
                       j->model,       seed,      j->trace_id, max_attempts,
                       j->traceparent, quota,     duration,    j->cache_key};
    PGresult *r = cz_db_query(c, sql, 12, p, err);
    if (!r)
        return -1;
    int stored = PQntuples(r) != 1                  ? cz_err_set(err, "no usage for the tenant")
                 : strcmp(PQgetvalue(r, 0, 0), "t") ? 0
                 : PQgetisnull(r, 0, 1)             ? CZ_INSERT_IN_FLIGHT
                                                    : (*json = cz_strdup(PQgetvalue(r, 0, 1)), 1);
    PQclear(r);
    return stored;
}

/* The job as a follower of the identical job in flight: no generate message;
 * it takes the leader's seed (an unseeded request that opted in gets the
 * leader's track) and completes when the leader does. */
static const char follow_sql[] =
    "WITH l AS ("
    "  SELECT id, seed FROM jobs WHERE cache_key = $8 AND coalesced_into IS NULL"
    "     AND cached_from IS NULL AND state IN " CZ_IN_FLIGHT "), j AS ("
    "  INSERT INTO jobs (id, tenant_id, request, request_hash, model, seed, trace_id,"
    "                    max_attempts, cache_key, coalesced_into)"
    "  SELECT $1, $2, jsonb_set($3::jsonb, '{seed}', to_jsonb(l.seed)), $4, $5, l.seed, $6,"
    "         $7, $8, l.id"
    "    FROM l"
    "  RETURNING *"
    "), e AS ("
    "  INSERT INTO job_events (job_id, attempt, event, state, detail)"
    "  SELECT id, attempt, 'coalesced', 'queued', jsonb_build_object('leader', coalesced_into)"
    "    FROM j"
    ")"
    "SELECT cz_job_json(ROW(j.*)::jobs)::text FROM j";

/* The job answered from the cache: succeeded at once, with the source's
 * seed and files, billed nothing, if the source is still a succeeded job
 * of the tenant with its master on disk. */
static const char cached_sql[] =
    "WITH s AS ("
    "  SELECT j.id, j.seed, a.duration_s AS audio FROM jobs j"
    "    JOIN artifacts a ON a.job_id = j.id AND a.attempt = j.attempt AND a.kind = 'master'"
    "   WHERE j.id = $9::uuid AND j.tenant_id = $2 AND j.state = 'succeeded'"
    "     AND j.cached_from IS NULL AND a.deleted_at IS NULL LIMIT 1"
    "), j AS ("
    "  INSERT INTO jobs (id, tenant_id, request, request_hash, model, seed, trace_id,"
    "                    max_attempts, cache_key, cached_from, state, stage, progress,"
    "                    started_at, finished_at)"
    "  SELECT $1, $2, jsonb_set($3::jsonb, '{seed}', to_jsonb(s.seed)), $4, $5, s.seed, $6,"
    "         $7, $8, s.id, 'succeeded', 'cached', 100, now(), now()"
    "    FROM s"
    "  RETURNING *"
    "), e AS ("
    "  INSERT INTO job_events (job_id, attempt, event, state, detail)"
    "  SELECT id, attempt, 'cache_hit', 'succeeded', jsonb_build_object('cached_from', cached_from)"
    "    FROM j"
    "), u AS ("
    "  INSERT INTO usage_ledger (job_id, tenant_id, outcome, audio_seconds, compute_ms,"
    "                            cost_micros, cached)"
    "  SELECT j.id, j.tenant_id, 'succeeded', s.audio, 0, 0, true FROM j, s"
    ")"
    "SELECT cz_job_json(ROW(j.*)::jobs)::text FROM j";

/* A submission with a cache key (a request that may reuse an earlier one):
 * answered at once when the prompt cache offered a source that is still
 * good; else generated, unless an identical job is in flight, which it then
 * follows. Cached and following jobs generate nothing, so the quota is not
 * asked. @returns 1 stored (s->kind says how), 0 over quota, -1 with @p err. */
static int insert_keyed(PGconn *c, cz_job_submit *s, char **json, cz_err *err) {
    const cz_job_new *j = &s->job;
    char max_attempts[12];
    snprintf(max_attempts, sizeof max_attempts, "%d", j->max_attempts);
    const char *q[] = {j->id,       j->tenant,    j->request,   j->request_hash, j->model,
                       j->trace_id, max_attempts, j->cache_key, j->cached_from};
    if (j->cached_from) {
        PGresult *r = cz_db_query(c, cached_sql, 9, q, err);
        if (!r)
            return -1;
        if ((*json = cz_db_take_text(r))) {
            s->kind = CZ_JOB_CACHED;
            return cz_db_webhook_enqueue_tx(c, j->id, "job.succeeded", err) < 0 ? -1 : 1;
        } // the source is gone: generate after all
    }
    /* If the job in flight ended between the two statements, try again. */
    for (int round = 0; round < 3; round++) {
        int stored = insert_one(c, s, json, err);
        if (stored != CZ_INSERT_IN_FLIGHT) {
            s->kind = CZ_JOB_GENERATES;
            return stored;
        }
        PGresult *r = cz_db_query(c, follow_sql, 8, q, err);
        if (!r)
            return -1;
        if ((*json = cz_db_take_text(r))) {
            s->kind = CZ_JOB_COALESCED;
            return 1;
        }
    }
    return cz_err_set(err, "job insert kept racing with an identical job (cache key %s)",
                      j->cache_key);
}

/* One submission that cannot go with the plain ones. @returns as insert_keyed. */
static int insert_submission(PGconn *c, cz_job_submit *s, char **json, cz_err *err) {
    return s->job.cache_key ? insert_keyed(c, s, json, err) : insert_one(c, s, json, err);
}

/* One submission under an idempotency key, inside the batch's transaction.
 * A second request with the key (in another transaction) waits on the
 * key's row until this one commits. An expired key (over 24 h) is taken
 * over as if it were new. @returns 0 with the outcome set, -1 with @p err. */
static int submit_once(PGconn *c, cz_job_submit *s, cz_err *err) {
    const cz_job_new *j = &s->job;
    const char *p[] = {j->tenant, s->idempotency_key, j->request_hash, j->id};
    long fresh =
        cz_db_exec(c,
                   "INSERT INTO idempotency_keys (tenant_id, key, request_hash, job_id)"
                   " VALUES ($1, $2, $3, $4)"
                   " ON CONFLICT (tenant_id, key) DO UPDATE"
                   "   SET request_hash = EXCLUDED.request_hash, job_id = EXCLUDED.job_id,"
                   "       response_status = NULL, response_body = NULL, created_at = now()"
                   "   WHERE idempotency_keys.created_at < now() - interval '24 hours'",
                   4, p, err);
    if (fresh < 0)
        return -1;
    if (fresh == 1) {
        char *body = NULL;
        int stored = insert_submission(c, s, &body, err);
        if (stored < 0)
            return -1;
        if (stored == 0) {
            /* Over quota: nothing is kept under the key, so a retry next
             * month (or after a quota change) is a new request. */
            const char *d[] = {j->tenant, s->idempotency_key};
            if (cz_db_exec(c, "DELETE FROM idempotency_keys WHERE tenant_id = $1 AND key = $2", 2,
                           d, err) < 0)
                return -1;
            s->outcome = CZ_CREATE_OVER_QUOTA;
            return 0;
        }
        const char *u[] = {j->tenant, s->idempotency_key, body};
        if (cz_db_exec(c,
                       "UPDATE idempotency_keys SET response_status = 202,"
                       "       response_body = $3 WHERE tenant_id = $1 AND key = $2",
                       3, u, err) != 1) {
            free(body);
            return err->msg[0] ? -1 : cz_err_set(err, "idempotency key row vanished");
        }
        s->outcome = CZ_CREATE_NEW;
        s->status = 202;
        s->json = body;
        return 0;
    }
    const char *q[] = {j->tenant, s->idempotency_key};
    PGresult *r = cz_db_query(c,
                              "SELECT request_hash, response_status, response_body"
                              "  FROM idempotency_keys WHERE tenant_id = $1 AND key = $2",
                              2, q, err);
    if (!r)
        return -1;
    int rc = 0;
    if (PQntuples(r) == 1 && !PQgetisnull(r, 0, 2)) {
        bool same = !strcmp(PQgetvalue(r, 0, 0), j->request_hash);
        s->outcome = same ? CZ_CREATE_REPLAY : CZ_CREATE_CONFLICT;
        if (same) {
            s->status = atoi(PQgetvalue(r, 0, 1));
            s->json = cz_strdup(PQgetvalue(r, 0, 2));
        }
    } else {
        rc = cz_err_set(err, "idempotency key without a stored response");
    }
    PQclear(r);
    return rc;
}

/* Appends @p s to the JSON array text in @p b as a JSON string.
 * @returns 0, or -1 when @p s is NULL (a submission without that field). */
static int append_json_string(cz_buf *b, const char *s) {
    if (!s)
        return -1;
    cJSON *str = cJSON_CreateString(s);
    char *t = cz_json_print(str);
    cJSON_Delete(str);
    cz_buf_puts(b, t);
    free(t);
    return 0;
}

/* A submission that goes with the others in one statement: no idempotency
 * key, no quota, and not a request that may reuse an earlier one. */
static bool plain_submission(const cz_job_submit *s) {
    return !s->idempotency_key && s->quota_s < 0 && !s->job.cache_key;
}

/* The plain submissions in one statement:
 * their rows travel as one JSON array. @returns 0, or -1 with @p err. */
static int insert_plain(PGconn *c, cz_job_submit *const *items, int n, cz_err *err) {
    static const char sql[] =
        "WITH v AS ("
        "  SELECT * FROM jsonb_to_recordset($1::jsonb) AS v(id uuid, tenant_id text,"
        "    request jsonb, request_hash text, model text, seed bigint, trace_id text,"
        "    max_attempts int, traceparent text)"
        "), j AS ("
        "  INSERT INTO jobs (id, tenant_id, request, request_hash, model, seed, trace_id,"
        "                    max_attempts)"
        "  SELECT id, tenant_id, request, request_hash, model, seed, trace_id, max_attempts"
        "    FROM v RETURNING *"
        "), o AS (" CZ_OUTBOX_OF_JOB(
            "v.traceparent") "  FROM j JOIN v ON v.id = j.id"
                             ")"
                             "SELECT j.id::text, cz_job_json(ROW(j.*)::jobs)::text FROM j";
    cz_buf b = {0};
    cz_buf_putc(&b, '[');
    int rc = 0, plain = 0;
    for (int i = 0; i < n && !rc; i++) {
        const cz_job_submit *s = items[i];
        if (!plain_submission(s))
            continue;
        char head[160];
        snprintf(head, sizeof head,
                 "%s{\"id\":\"%s\",\"seed\":%llu,\"max_attempts\":%d,\"tenant_id\":",
                 plain ? "," : "", s->job.id, (unsigned long long)s->job.seed, s->job.max_attempts);
        plain++;
        cz_buf_puts(&b, head);
        rc = append_json_string(&b, s->job.tenant);
        cz_buf_puts(&b, ",\"request\":");
        cz_buf_puts(&b, s->job.request);
        cz_buf_puts(&b, ",\"request_hash\":");
        rc |= append_json_string(&b, s->job.request_hash);
        cz_buf_puts(&b, ",\"model\":");
        rc |= append_json_string(&b, s->job.model);
        cz_buf_puts(&b, ",\"trace_id\":");
        rc |= append_json_string(&b, s->job.trace_id);
        cz_buf_puts(&b, ",\"traceparent\":");
        rc |= append_json_string(&b, s->job.traceparent);
        cz_buf_putc(&b, '}');
    }
    cz_buf_putc(&b, ']');
    if (rc) {
        cz_buf_free(&b);
        return cz_err_set(err, "a job to insert lacks its tenant, request hash, model or trace");
    }
    if (!plain) {
        cz_buf_free(&b);
        return 0;
    }
    const char *p[] = {b.data};
    PGresult *r = cz_db_query(c, sql, 1, p, err);
    cz_buf_free(&b);
    if (!r)
        return -1;
    int rows = PQntuples(r);
    for (int i = 0; i < n; i++) {
        cz_job_submit *s = items[i];
        if (!plain_submission(s))
            continue;
        for (int k = 0; k < rows && !s->json; k++) {
            if (!strcmp(PQgetvalue(r, k, 0), s->job.id)) {
                s->outcome = CZ_CREATE_NEW;
                s->status = 202;
                s->json = cz_strdup(PQgetvalue(r, k, 1));
            }
        }
        if (!s->json)
            rc = cz_err_set(err, "job %s: the insert returned no row", s->job.id);
    }
    PQclear(r);
    return rc;
}

int cz_db_job_submit_batch(PGconn *c, cz_job_submit *const *items, int n, cz_err *err) {
    for (int i = 0; i < n; i++) {
        items[i]->json = NULL;
        items[i]->outcome = -1;
        items[i]->kind = CZ_JOB_GENERATES;
    }
    cz_err_clear(err);
    if (cz_db_begin(c, err))
        return -1;
    int rc = insert_plain(c, items, n, err);
    for (int i = 0; i < n && !rc; i++) {
        cz_job_submit *s = items[i];
        if (s->idempotency_key) {
            rc = submit_once(c, s, err);
        } else if (!plain_submission(s)) {
            int stored = insert_submission(c, s, &s->json, err);
            rc = stored < 0 ? -1 : 0;
            s->outcome = stored == 1 ? CZ_CREATE_NEW : CZ_CREATE_OVER_QUOTA;
            s->status = 202;
        }
    }
    if (rc || cz_db_commit(c, err)) {
        cz_db_rollback(c);
        for (int i = 0; i < n; i++) {
            free(items[i]->json);
            items[i]->json = NULL;
            items[i]->outcome = -1;
        }
        return -1;
    }
    /* A follower whose job ended while this transaction ran was not seen by
     * that job's transition: complete it now (cz_db_job_complete_followers). */
    for (int i = 0; i < n; i++) {
        if (items[i]->outcome != CZ_CREATE_NEW || items[i]->kind != CZ_JOB_COALESCED)
            continue;
        cJSON *job = cJSON_Parse(items[i]->json);
        const char *leader = cz_json_str(job, "coalesced_into");
        cz_err late;
        if (leader)
            cz_db_job_complete_followers(c, leader, &late); // best effort: the scheduler retries
        cJSON_Delete(job);
    }
    return 0;
}

char *cz_db_job_usage(PGconn *c, const char *tenant, cz_err *err) {
    const char *p[] = {tenant};
    PGresult *r =
        cz_db_query(c,
                    "SELECT json_build_object("
                    "  'object', 'usage', 'tenant', t.id,"
                    "  'month', to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM'),"
                    "  'audio_minutes_used', round((u.used_s / 60)::numeric, 3),"
                    "  'audio_minutes_reserved', round((u.reserved_s / 60)::numeric, 3),"
                    "  'quota_minutes', t.monthly_audio_minutes,"
                    "  'resets_at', cz_ts((date_trunc('month', now() AT TIME ZONE 'UTC')"
                    "                      + interval '1 month') AT TIME ZONE 'UTC'))::text"
                    "  FROM tenants t, cz_tenant_usage(t.id) u WHERE t.id = $1",
                    1, p, err);
    if (!r)
        return NULL;
    char *out = PQntuples(r) == 1 ? cz_strdup(PQgetvalue(r, 0, 0)) : NULL;
    if (!out)
        cz_err_set(err, "no usage for tenant %s", tenant);
    PQclear(r);
    return out;
}

/* ---- the sweeper -------------------------------------------------------- */

PGresult *cz_db_job_leases_expired(PGconn *c, int limit, cz_err *err) {
    char lim[12];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {lim};
    return cz_db_query(c,
                       "SELECT id, attempt FROM jobs"
                       " WHERE state IN ('generating', 'postprocessing')"
                       "   AND lease_expires_at < now()"
                       " ORDER BY lease_expires_at LIMIT $1",
                       1, p, err);
}

PGresult *cz_db_job_canceled_artifacts(PGconn *c, cz_err *err) {
    return cz_db_query(c,
                       "SELECT a.id, a.uri FROM artifacts a JOIN jobs j ON j.id = a.job_id"
                       " WHERE j.state = 'canceled'"
                       "   AND j.finished_at > now() - interval '1 hour'"
                       "   AND a.deleted_at IS NULL LIMIT 100",
                       0, NULL, err);
}

int cz_db_job_artifact_deleted(PGconn *c, const char *artifact_id, cz_err *err) {
    const char *p[] = {artifact_id};
    return cz_db_exec(c, "UPDATE artifacts SET deleted_at = now() WHERE id = $1", 1, p, err) < 0
               ? -1
               : 0;
}

int cz_db_job_idempotency_purge(PGconn *c, cz_err *err) {
    return cz_db_exec(c,
                      "DELETE FROM idempotency_keys WHERE created_at < now() - interval '24 hours'",
                      0, NULL, err) < 0
               ? -1
               : 0;
}

/* ---- metrics ------------------------------------------------------------ */

long long cz_db_job_events_newest(PGconn *c, cz_err *err) {
    PGresult *r = cz_db_query(c, "SELECT coalesce(max(id), 0) FROM job_events", 0, NULL, err);
    long long id = r ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return id;
}

/* The state before an event is the latest earlier non-progress event's,
 * and the time spent in it runs from that event (or the submission). */
PGresult *cz_db_job_events_after(PGconn *c, long long after, int limit, cz_err *err) {
    char from[24], lim[16];
    snprintf(from, sizeof from, "%lld", after);
    snprintf(lim, sizeof lim, "%d", limit);
    return cz_db_query(
        c,
        "SELECT e.id, e.event, e.state, coalesce(p.state, 'submitted'),"
        "       extract(epoch FROM e.created_at - coalesce(p.created_at, j.created_at)),"
        "       extract(epoch FROM e.created_at - j.created_at),"
        "       coalesce(e.detail->'failure'->>'class', j.failure_class, ''),"
        "       coalesce(u.audio_seconds, -1), coalesce(u.compute_ms, 0)"
        "  FROM job_events e JOIN jobs j ON j.id = e.job_id"
        "  LEFT JOIN LATERAL (SELECT q.state, q.created_at FROM job_events q"
        "       WHERE q.job_id = e.job_id AND q.id < e.id AND q.event <> 'progress'"
        "       ORDER BY q.id DESC LIMIT 1) p ON true"
        "  LEFT JOIN usage_ledger u ON u.job_id = e.job_id"
        "       AND e.state IN ('succeeded', 'failed', 'canceled', 'rejected')"
        " WHERE e.id > $1::bigint ORDER BY e.id LIMIT $2::int",
        2, (const char *[]){from, lim}, err);
}

PGresult *cz_db_job_count_by_state(PGconn *c, const char *states, cz_err *err) {
    return cz_db_query(c,
                       "SELECT s.state, count(j.id) FROM unnest($1::text[]) s(state)"
                       "  LEFT JOIN jobs j ON j.state = s.state GROUP BY s.state",
                       1, (const char *[]){states}, err);
}
