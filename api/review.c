/* The curators' endpoints and page: see review.h.
 *
 * A decision runs in one transaction on one pooled connection:
 * cz_db_review_decide_tx() (the task's lock, the job's event through the
 * scheduler's own guarded transition, the new job of a regeneration, the
 * audit row); for an approval, the prompt cache learns the job before the
 * commit, as the scheduler does for jobs that succeed on their own; after
 * the commit every changed job is announced. */
#include "api/review.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "api/assets.h"
#include "api/jobs.h"
#include "api/request.h"
#include "common/artifact.h"
#include "common/cache.h"
#include "common/db/catalog.h"
#include "common/db/decision.h"
#include "common/db/review.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/redis.h"

#define CZ_REVIEW_LEASE_MAX_S 3600
#define CZ_REVIEW_REASON_MAX 1000        /* characters */
#define CZ_REVIEW_MANIFEST_MAX (1 << 20) /* bytes of provenance a claim carries */

/* The answer when Postgres does not answer (cz_http_unavailable). */
#define STORE_DOWN "the review store is unavailable; nothing was changed, retry later"

/* 204: done, nothing to say. */
static enum MHD_Result no_content(cz_http_req *r) {
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    enum MHD_Result res = cz_http_queue(r, 204, resp);
    MHD_destroy_response(resp);
    return res;
}

/* ---- the queue ------------------------------------------------------------ */

enum MHD_Result cz_api_review_queue_get(cz_api *api, cz_http_req *r, const char *id) {
    (void)id;
    const char *lim = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
    int limit = 50;
    if (lim) {
        char *end;
        long n = strtol(lim, &end, 10);
        if (!*lim || *end || n < 1 || n > 100)
            return cz_http_problem(r, 422, "invalid-field", "limit must be 1 to 100", "limit");
        limit = (int)n;
    }
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    char *json = cz_db_review_queue(c, r->key.tenant, limit, &err);
    cz_db_pool_put(api->db, c);
    if (!json)
        return cz_http_unavailable(r, "review queue", &err, STORE_DOWN);
    enum MHD_Result res = cz_http_json(r, 200, json);
    free(json);
    return res;
}

/* ---- claims --------------------------------------------------------------- */

/* The manifest (provenance) the post pool wrote beside the master, parsed;
 * null when it cannot be read (the claim goes on without it). */
static cJSON *read_manifest(const char *uri, const char *job_id) {
    const char *path = cz_artifact_uri_path(uri);
    FILE *f = path ? fopen(path, "rb") : NULL;
    if (!f)
        return cJSON_CreateNull();
    char *text = cz_malloc(CZ_REVIEW_MANIFEST_MAX + 1);
    size_t n = fread(text, 1, CZ_REVIEW_MANIFEST_MAX + 1, f);
    fclose(f);
    cJSON *m = n > 0 && n <= CZ_REVIEW_MANIFEST_MAX ? cJSON_ParseWithLength(text, n) : NULL;
    free(text);
    if (!m)
        cz_log_job(CZ_LOG_WARN, job_id, NULL, "provenance manifest %s unreadable", path);
    return m ? m : cJSON_CreateNull();
}

enum MHD_Result cz_api_review_claim(cz_api *api, cz_http_req *r, const char *id) {
    (void)id;
    static const char *const fields[] = {"lease_s", NULL};
    static const cz_http_body how = {"the body", true, fields};
    enum MHD_Result res;
    cJSON *body = cz_http_read_object(r, &how, &res);
    if (!body)
        return res;
    int lease = api->cfg->review_lease_s;
    const cJSON *l = cJSON_GetObjectItemCaseSensitive(body, "lease_s");
    bool bad = l && (!cJSON_IsNumber(l) || !cz_json_is_integer(l->valuedouble) ||
                     l->valuedouble < 1 || l->valuedouble > CZ_REVIEW_LEASE_MAX_S);
    if (l && !bad)
        lease = (int)l->valuedouble;
    cJSON_Delete(body);
    if (bad)
        return cz_http_problem(r, 422, "invalid-field", "lease_s must be an integer, 1 to 3600",
                               "lease_s");

    cz_err err;
    char *json = NULL;
    PGconn *c = cz_db_pool_get(api->db);
    int claimed = cz_db_review_claim(c, r->key.tenant, r->key.id, lease, &json, &err);
    cz_db_pool_put(api->db, c);
    if (claimed < 0)
        return cz_http_unavailable(r, "review claim", &err, STORE_DOWN);
    if (!claimed)
        return no_content(r);

    cJSON *task = cJSON_Parse(json);
    free(json);
    if (!task) {
        cz_err_set(&err, "the claimed task is not JSON");
        return cz_http_unavailable(r, "review claim", &err, STORE_DOWN);
    }
    const char *job_id = cz_json_str(task, "job_id");
    cJSON_AddItemToObject(task, "provenance",
                          read_manifest(cz_json_str(task, "manifest_uri"), job_id));
    cJSON_DeleteItemFromObjectCaseSensitive(task, "manifest_uri");
    cz_log_job(CZ_LOG_INFO, job_id, NULL, "review task claimed by key %lld for %d s", r->key.id,
               lease);
    char *text = cz_json_print(task);
    cJSON_Delete(task);
    res = text ? cz_http_json(r, 200, text) : MHD_NO;
    free(text);
    return res;
}

/* The answer when a task is not there to release or decide: gone,
 * decided, its job no longer in review, or claimed by another curator. */
static enum MHD_Result task_problem(cz_http_req *r, int status) {
    switch (status) {
    case CZ_REVIEW_NOT_FOUND:
        return cz_http_problem(r, 404, "not-found", "no review task for this job", NULL);
    case CZ_REVIEW_DECIDED:
        return cz_http_problem(r, 409, "review-decided", "the task has been decided already", NULL);
    case CZ_REVIEW_NOT_IN_REVIEW:
        return cz_http_problem(r, 409, "job-not-in-review",
                               "the job is no longer waiting for review (canceled)", NULL);
    default:
        return cz_http_problem(r, 409, "claimed-by-another",
                               "another curator holds a live claim on this task", NULL);
    }
}

enum MHD_Result cz_api_review_release(cz_api *api, cz_http_req *r, const char *id) {
    if (!cz_uuid_valid(id))
        return cz_http_problem(r, 404, "not-found", "no review task for this job", NULL);
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    int rc = cz_db_review_release(c, r->key.tenant, id, r->key.id, &err);
    cz_db_pool_put(api->db, c);
    if (rc == CZ_REVIEW_OK) {
        cz_log_job(CZ_LOG_INFO, id, NULL, "review task released by key %lld", r->key.id);
        return no_content(r);
    }
    if (rc == CZ_REVIEW_NOT_HELD)
        return cz_http_problem(r, 409, "not-claimed",
                               "this key holds no live claim on the task; nothing to release",
                               NULL);
    return rc < 0 ? cz_http_unavailable(r, "review release", &err, STORE_DOWN)
                  : task_problem(r, rc);
}

/* ---- decisions -------------------------------------------------------------- */

/* For an approved job: the prompt cache may answer repeats of its request
 * with it, as for any job that succeeds (scheduler/events.c). Best effort. */
static void remember_in_cache(cz_api *api, const cz_review_outcome *o, const char *job_id) {
    if (!o->cacheable || !o->cache_key[0])
        return;
    cz_err err;
    redisContext *rc = cz_redis_borrow(api->redis, &err);
    if (rc && cz_cache_store(rc, o->model, o->model_version, o->cache_key, job_id,
                             api->cfg->cache_ttl_s, api->cfg->cache_max_entries) < 0)
        cz_log_job(CZ_LOG_WARN, job_id, NULL, "prompt cache not told of the approval");
    cz_redis_give_back(api->redis, rc); // the pool closes a connection that failed
}

static enum MHD_Result decide(cz_api *api, cz_http_req *r, const char *id,
                              cz_review_decision_kind kind) {
    static const char *const fields[] = {"reason", NULL};
    static const cz_http_body how = {"the body", true, fields};
    enum MHD_Result res;
    cJSON *body = cz_http_read_object(r, &how, &res);
    if (!body)
        return res;
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(body, "reason");
    const char *problem = NULL;
    if (why && (!cJSON_IsString(why) || !why->valuestring[0]))
        problem = "reason must be a non-empty string";
    else if (why && (!cz_json_clean_text(why->valuestring) ||
                     strlen(why->valuestring) > CZ_REVIEW_REASON_MAX * 4))
        problem = "reason must be text (UTF-8, no control characters), at most 1000 characters";
    if (problem) {
        cJSON_Delete(body);
        return cz_http_problem(r, 422, "invalid-field", problem, "reason");
    }
    if (!why && kind == CZ_REVIEW_REJECT) {
        cJSON_Delete(body);
        return cz_http_problem(r, 422, "missing-field",
                               "a rejection needs a reason: {\"reason\": \"...\"}", "reason");
    }
    if (!cz_uuid_valid(id)) {
        cJSON_Delete(body);
        return cz_http_problem(r, 404, "not-found", "no review task for this job", NULL);
    }

    char new_id[CZ_UUID_LEN], trace[33], traceparent[56];
    cz_uuid7(new_id);
    cz_trace_id(trace);
    cz_traceparent(trace, traceparent);
    cz_review_decision d = {
        .tenant = r->key.tenant,
        .job_id = id,
        .key_id = r->key.id,
        .kind = kind,
        .reason = why ? why->valuestring : NULL,
        .new_job_id = new_id,
        .new_seed = cz_random_seed(),
        .trace_id = trace,
        .traceparent = traceparent,
    };
    cz_apply_policy policy = {api->cfg->lease_s, api->cfg->retry_base_ms, api->cfg->retry_cap_ms};
    cz_review_outcome o;
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    int rc = cz_db_begin(c, &err);
    if (!rc)
        rc = cz_db_review_decide_tx(c, &d, &policy, &o, &err);
    if (!rc && o.status == CZ_REVIEW_OK && kind == CZ_REVIEW_APPROVE)
        remember_in_cache(api, &o, id);
    if (!rc && o.status == CZ_REVIEW_OK && cz_db_commit(c, &err)) {
        cz_review_outcome_free(&o);
        rc = -1;
    }
    if (rc || o.status != CZ_REVIEW_OK)
        cz_db_rollback(c);
    cz_db_pool_put(api->db, c);
    cJSON_Delete(body);
    if (rc)
        return cz_http_unavailable(r, "review decision", &err, STORE_DOWN);

    if (o.status != CZ_REVIEW_OK)
        return task_problem(r, o.status);
    /* Identical requests that attached while the decision was made. */
    c = cz_db_pool_get(api->db);
    if (cz_db_job_complete_followers(c, id, &err))
        cz_log_job(CZ_LOG_WARN, id, NULL, "completing late followers: %s", err.msg);
    cz_db_pool_put(api->db, c);
    const cJSON *j;
    cJSON_ArrayForEach(j, o.announce) {
        cz_jobs_announce(api, j->valuestring);
    }
    if (kind == CZ_REVIEW_REGENERATE)
        cz_log_job(CZ_LOG_INFO, id, NULL, "review: regenerate by key %lld as job %s", r->key.id,
                   new_id);
    else
        cz_log_job(CZ_LOG_INFO, id, NULL, "review: %s by key %lld", cz_review_decision_name(kind),
                   r->key.id);
    res = cz_http_json(r, 200, o.json);
    cz_review_outcome_free(&o);
    return res;
}

enum MHD_Result cz_api_review_approve(cz_api *api, cz_http_req *r, const char *id) {
    return decide(api, r, id, CZ_REVIEW_APPROVE);
}

enum MHD_Result cz_api_review_reject(cz_api *api, cz_http_req *r, const char *id) {
    return decide(api, r, id, CZ_REVIEW_REJECT);
}

enum MHD_Result cz_api_review_regenerate(cz_api *api, cz_http_req *r, const char *id) {
    return decide(api, r, id, CZ_REVIEW_REGENERATE);
}

/* ---- catalogue audio --------------------------------------------------------- */

static const char *audio_type(const char *path) {
    const char *dot = strrchr(path, '.');
    dot = dot ? dot + 1 : "";
    return !strcasecmp(dot, "flac")                              ? "audio/flac"
           : !strcasecmp(dot, "wav")                             ? "audio/wav"
           : !strcasecmp(dot, "mp3")                             ? "audio/mpeg"
           : !strcasecmp(dot, "ogg") || !strcasecmp(dot, "opus") ? "audio/ogg"
                                                                 : "application/octet-stream";
}

enum MHD_Result cz_api_catalog_audio_get(cz_api *api, cz_http_req *r, const char *id) {
    char *end;
    long long track = strtoll(id, &end, 10);
    if (!*id || *end || track < 1 || strspn(id, "0123456789") != strlen(id))
        return cz_http_problem(r, 404, "not-found", "no such catalogue track", NULL);
    char uri[1100], title[256];
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    int found = cz_db_catalog_source(c, track, uri, sizeof uri, title, sizeof title, &err);
    cz_db_pool_put(api->db, c);
    if (found < 0)
        return cz_http_unavailable(r, "catalogue lookup", &err, STORE_DOWN);
    const char *path = found ? cz_artifact_uri_path(uri) : NULL;
    if (!path)
        return cz_http_problem(r, 404, "not-found",
                               "no such catalogue track, or its file was imported without a "
                               "known place (import it again)",
                               NULL);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        cz_log_warn("catalogue track %lld: %s: %s", track, path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return cz_http_problem(r, 404, "not-found",
                               "the catalogue track's file is gone from where it was imported",
                               NULL);
    }
    char disposition[96];
    snprintf(disposition, sizeof disposition, "inline; filename=\"catalog-%lld%s\"", track,
             strrchr(path, '.') && strlen(strrchr(path, '.')) < 8 ? strrchr(path, '.') : "");
    return cz_http_send_fd(r, fd, st.st_size, audio_type(path), disposition);
}

/* ---- the page ------------------------------------------------------------------ */

enum MHD_Result cz_api_review_page_redirect(cz_api *api, cz_http_req *r, const char *id) {
    (void)api, (void)id;
    struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, "/review/");
    enum MHD_Result res = cz_http_queue(r, 308, resp);
    MHD_destroy_response(resp);
    return res;
}

enum MHD_Result cz_api_review_page_get(cz_api *api, cz_http_req *r, const char *id) {
    (void)api;
    const char *name = id && *id ? id : "index.html";
    const cz_asset *a = NULL;
    for (size_t i = 0; i < cz_review_assets_count && !a; i++)
        if (!strcmp(cz_review_assets[i].name, name))
            a = &cz_review_assets[i];
    if (!a)
        return cz_http_problem(r, 404, "not-found", "no such file of the review page", NULL);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    /* Only this origin: the page loads nothing from elsewhere, and audio
     * plays from blobs the page fetched with the curator's key. */
    MHD_add_response_header(resp, "Content-Security-Policy",
                            "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; "
                            "object-src 'none'; base-uri 'none'; frame-ancestors 'none'");
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    enum MHD_Result res = cz_http_queue(r, 200, resp);
    MHD_destroy_response(resp);
    return res;
}
