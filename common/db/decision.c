/* A curator's decision as one transaction: see decision.h.
 *
 * It holds no SQL of its own. It locks the task (review.c), stores the
 * regenerated job and applies the job's event (jobs.c), then records the
 * decision (review.c). Living above both files keeps them from calling
 * each other: applying a job's event opens review tasks (jobs.c calls
 * review.c), and nothing in review.c calls back into jobs.c. */
#include "common/db/decision.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db/jobs.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/mem.h"

/* Stores the job that replaces @p old_id: its canonical request with the
 * new seed (and so its own request hash), its generate message in the
 * outbox. Not cacheable and not coalesced: it exists to be different.
 * @returns 0, or -1 with @p err. */
static int insert_regenerated(PGconn *c, const cz_review_decision *d, const char *request,
                              const char *model, const char *max_attempts, cz_err *err) {
    cJSON *req = cJSON_Parse(request);
    if (!cJSON_IsObject(req)) {
        cJSON_Delete(req);
        return cz_err_set(err, "job %s has no request object to regenerate", d->job_id);
    }
    cJSON_DeleteItemFromObjectCaseSensitive(req, "seed");
    cJSON_AddNumberToObject(req, "seed", (double)d->new_seed);
    char *json = cz_json_canonical(req);
    cJSON_Delete(req);
    char hash[CZ_SHA256_HEX], seed[24];
    cz_sha256_hex(json, strlen(json), hash);
    snprintf(seed, sizeof seed, "%llu", (unsigned long long)d->new_seed);
    const char *p[] = {d->new_job_id, d->tenant,   json,         hash,      model,
                       seed,          d->trace_id, max_attempts, d->job_id, d->traceparent};
    long n = cz_db_job_insert_regenerated_tx(c, p, err);
    free(json);
    return n == 1 ? 0 : n < 0 ? -1 : cz_err_set(err, "the regenerated job was not stored");
}

/* The curator's event for the job: approved or rejected, with the decision
 * in its "review" field (kept in the job's history). */
static int apply_decision(PGconn *c, const cz_review_decision *d, int attempt, const char *prefix,
                          const cz_apply_policy *policy, cz_err *err) {
    char worker[40];
    snprintf(worker, sizeof worker, "curator:%s", prefix);
    cJSON *e = cz_event_new(d->kind == CZ_REVIEW_APPROVE ? CZ_EV_APPROVED : CZ_EV_REJECTED,
                            d->job_id, attempt, worker);
    cJSON_AddStringToObject(e, "stage", "review");
    cJSON *rv = cJSON_AddObjectToObject(e, "review");
    cJSON_AddStringToObject(rv, "decision", cz_review_decision_name(d->kind));
    cJSON_AddStringToObject(rv, "by", prefix);
    if (d->reason)
        cJSON_AddStringToObject(rv, "reason", d->reason);
    if (d->kind == CZ_REVIEW_REGENERATE)
        cJSON_AddStringToObject(rv, "regenerated_job", d->new_job_id);
    char *text = cz_json_print(e);
    cJSON_Delete(e);
    cz_event ev;
    if (cz_event_parse(text, strlen(text), &ev, err)) {
        free(text);
        return -1;
    }
    free(text);
    int rc = cz_db_job_apply_tx(c, &ev, policy, err);
    cz_event_free(&ev);
    if (rc == CZ_APPLY_DONE)
        return 0;
    return rc < 0 ? -1 : cz_err_set(err, "job %s did not take the decision", d->job_id);
}

int cz_db_review_decide_tx(PGconn *c, const cz_review_decision *d, const cz_apply_policy *policy,
                           cz_review_outcome *out, cz_err *err) {
    memset(out, 0, sizeof *out);
    char key[24];
    snprintf(key, sizeof key, "%lld", d->key_id);
    PGresult *r = cz_db_review_lock(c, d->tenant, d->job_id, key, err);
    if (!r)
        return -1;
    out->status = cz_db_review_task_status(r, false);
    if (out->status != CZ_REVIEW_OK) {
        PQclear(r);
        return 0;
    }
    char prefix[32];
    snprintf(prefix, sizeof prefix, "%s", PQgetvalue(r, 0, 4));
    int attempt = atoi(PQgetvalue(r, 0, 5));
    int rc = 0;
    if (d->kind == CZ_REVIEW_REGENERATE)
        rc = insert_regenerated(c, d, PQgetvalue(r, 0, 6), PQgetvalue(r, 0, 7), PQgetvalue(r, 0, 8),
                                err);
    PQclear(r);
    if (rc || apply_decision(c, d, attempt, prefix, policy, err) ||
        cz_db_review_record_decision(c, d, key, out, err)) {
        cz_review_outcome_free(out);
        return -1;
    }
    return 0;
}
