/* The /v1/jobs endpoints: see jobs.h.
 *
 * Submission is the path that must never lose a job: the API answers 202
 * only after Postgres has committed the job row together with its outbox
 * row; everything after that (Kafka, workers) is driven from those rows.
 * Kafka being down does not stop submissions. */
#include "api/jobs.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <time.h>

#include "api/committer.h"
#include "api/registry.h"
#include "api/request.h"
#include "api/routing.h"
#include "common/artifact.h"
#include "common/cache.h"
#include "common/db/jobs.h"
#include "common/hash.h"
#include "common/ids.h"
#include "common/job_state.h"
#include "common/json.h"
#include "common/log.h"
#include "common/redis.h"

static const char *header(cz_http_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

static const char *query(cz_http_req *r, const char *name) {
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Seconds from now to the first second of next month (UTC), when monthly
 * quotas start again. */
static long long seconds_to_next_month(void) {
    time_t now = time(NULL);
    struct tm t;
    gmtime_r(&now, &t);
    t.tm_mday = 1;
    t.tm_hour = t.tm_min = t.tm_sec = 0;
    t.tm_mon += 1; /* timegm normalises December + 1 */
    return (long long)(timegm(&t) - now);
}

/* Redis is a cache and a signal bus here: when it is down (no connection
 * from the pool), requests go on without it. */

void cz_jobs_announce(cz_api *api, const char *id) {
    cz_err err;
    redisContext *rc = cz_redis_borrow(api->redis, &err);
    freeReplyObject(rc ? redisCommand(rc, "PUBLISH " CZ_JOB_CHANNEL "%s 1", id) : NULL);
    cz_redis_give_back(api->redis, rc);
}

static void count_coalesced(cz_api *api) {
    cz_err err;
    redisContext *rc = cz_redis_borrow(api->redis, &err);
    if (rc)
        cz_cache_count(rc, "coalesced");
    cz_redis_give_back(api->redis, rc);
}

/* The prompt cache's answer for a cacheable request: the tenant's own
 * earlier job for the same key, if Redis knows one. */
static void cache_lookup(cz_api *api, const cz_request *req, const char *tenant,
                         char key[CZ_SHA256_HEX], char *source, size_t n) {
    char scoped[CZ_SHA256_HEX + 160];
    snprintf(scoped, sizeof scoped, "%s:%s", tenant, req->cache_key);
    cz_sha256_hex(scoped, strlen(scoped), key);
    cz_err err;
    redisContext *rc = cz_redis_borrow(api->redis, &err);
    if (rc && cz_cache_lookup(rc, req->model_run, key, source, n) < 0)
        source[0] = '\0';
    cz_redis_give_back(api->redis, rc);
}

/* The answer when Postgres does not answer (cz_http_unavailable). */
#define STORE_DOWN "the job store is unavailable; nothing was stored, retry later"

/* ---- POST /v1/jobs, step by step -----------------------------------------
 *
 * cz_api_jobs_create reads top-down: the headers (media type, size, the
 * Idempotency-Key), the body parsed and validated into a canonical request,
 * the prompt cache's answer, the job stored with its outbox row in the next
 * group commit, and the answer for what the store did with it. */

/* What a submission adds to its request before it is stored. */
typedef struct new_job {
    char id[CZ_UUID_LEN];
    char trace[33];
    char traceparent[56];
    char cache_key[CZ_SHA256_HEX]; /* tenant-scoped prompt cache key, "" when not cacheable */
    char source[CZ_UUID_LEN];      /* the earlier job the cache offers, "" for none */
} new_job;

/* The Idempotency-Key is checked before the body is parsed, since it
 * decides the seed the body is parsed with. @returns 0 with *@p key (NULL
 * when none was sent), or -1 with the 422 queued in @p res. */
static int idempotency_key(cz_http_req *r, const char **key, enum MHD_Result *res) {
    *key = header(r, "Idempotency-Key");
    if (*key && !cz_request_idempotency_key_valid(*key)) {
        *res = cz_http_problem(r, 422, "invalid-field",
                               "Idempotency-Key must be 1 to 255 printable ASCII characters",
                               "Idempotency-Key");
        return -1;
    }
    return 0;
}

/* A request without a seed gets a random one, which is part of the
 * request hash; under an idempotency key the seed comes from the key
 * instead, so that a retry of the same body is the same request. */
static uint64_t default_seed(const cz_http_req *r, const char *key) {
    uint64_t seed = cz_random_seed();
    if (key) {
        char material[CZ_TENANT_MAX + 260], digest[CZ_SHA256_HEX];
        snprintf(material, sizeof material, "%s\n%s", r->key.tenant, key);
        cz_sha256_hex(material, strlen(material), digest);
        seed = strtoull(digest + 50, NULL, 16) & ((1ull << 53) - 1); /* 14 hex digits: 56 bits */
    }
    return seed;
}

/* Routes the request's model to the version that runs it (api/routing.h),
 * with this process's snapshot of the registry (no query of its own), and
 * checks the request against that version's limits. @returns 0 with
 * req->model_run set, or -1 with the problem queued in @p res (@p req freed). */
static int route_model(cz_api *api, cz_http_req *r, cz_request *req, enum MHD_Result *res) {
    cz_err err;
    const cz_models_snap *snap = cz_registry_get(api->models, &err);
    if (!snap) {
        cz_request_free(req);
        *res = cz_http_unavailable(r, "model registry", &err,
                                   "the model registry is unavailable; nothing was stored, retry "
                                   "later");
        return -1;
    }
    cz_request_error verr;
    const char *user = cz_json_str(req->canonical, "user");
    const cz_model *m =
        cz_routing_resolve(snap->rows, snap->n, r->key.tenant, user ? user : "", req->model, &verr);
    if (m && cz_routing_check_limits(m, req->canonical, &verr) == 0) {
        char id[CZ_REQUEST_MODEL_MAX];
        snprintf(id, sizeof id, "%s@%s", m->name, m->version);
        cz_request_set_model(req, id);
    } else {
        m = NULL;
    }
    cz_registry_release(api->models, snap);
    if (!m) {
        cz_request_free(req);
        *res = cz_http_problem(r, (unsigned)verr.status, verr.type, verr.detail, verr.field);
        return -1;
    }
    return 0;
}

/* Parses and validates the body into @p req, and routes its model. Where
 * the webhook would go is checked now, so the client learns at once; the
 * dispatcher checks the address it connects to again. @returns 0 (free
 * @p req with cz_request_free), or -1 with the problem queued in @p res. */
static int parse_job(cz_api *api, cz_http_req *r, uint64_t seed, cz_request *req,
                     enum MHD_Result *res) {
    cz_request_error verr;
    if (cz_request_parse(r->body ? r->body : "", r->body_len, seed, req, &verr)) {
        *res = cz_http_problem(r, (unsigned)verr.status, verr.type, verr.detail, verr.field);
        return -1;
    }
    if (route_model(api, r, req, res))
        return -1;
    const char *hook = cz_json_str(cJSON_GetObjectItem(req->canonical, "webhook"), "url");
    char why[CZ_NETGUARD_WHY];
    if (hook && cz_netguard_check_url(&api->guard, hook, why, sizeof why)) {
        char detail[CZ_NETGUARD_WHY + 16];
        snprintf(detail, sizeof detail, "webhook.url %s", why);
        cz_request_free(req);
        *res = cz_http_problem(r, 422, "invalid-field", detail, "webhook.url");
        return -1;
    }
    return 0;
}

/* The prompt cache's part: fills j->cache_key and j->source. A job that
 * must be reviewed makes its own track for the curator: it is neither
 * answered from the cache nor attached to a job in flight (coalesced, by
 * the store, on the same key), either of which may never have been
 * reviewed. */
static void consult_cache(cz_api *api, const cz_http_req *r, cz_request *req, new_job *j) {
    const char *review = cz_json_str(req->canonical, "review");
    if ((review && !strcmp(review, "always")) || r->key.review_always)
        req->cache_key[0] = '\0';
    if (req->cache_key[0])
        cache_lookup(api, req, r->key.tenant, j->cache_key, j->source, sizeof j->source);
}

/* Stores the job and its outbox row in the next group commit (committer.h);
 * @p sub says what became of it. @returns 0, or -1 with @p err (nothing was
 * stored). */
static int persist(cz_api *api, const cz_http_req *r, const cz_request *req, const char *key,
                   const new_job *j, cz_job_submit *sub, cz_err *err) {
    *sub = (cz_job_submit){
        .job =
            {
                .id = j->id,
                .tenant = r->key.tenant,
                .request = req->json,
                .request_hash = req->hash,
                .model = req->model_run, /* the version that runs; the request keeps the asked */
                .seed = req->seed,
                .trace_id = j->trace,
                .traceparent = j->traceparent,
                .max_attempts = 4,
                .cache_key = j->cache_key[0] ? j->cache_key : NULL,
                .cached_from = j->source[0] ? j->source : NULL,
            },
        .idempotency_key = key,
        .quota_s = r->key.quota_minutes >= 0 ? r->key.quota_minutes * 60 : -1,
        .duration_s = cz_json_num(req->canonical, "duration_s", 0),
    };
    return cz_committer_submit(api->committer, sub, err);
}

/* Answers for what the store did: 409 for a key reused with another
 * request, 429 past the quota, else the stored response (202 for a new
 * job, the first response again for a replay) with its Location. */
static enum MHD_Result answer(cz_api *api, cz_http_req *r, const new_job *j, cz_job_submit *sub) {
    if (sub->outcome == CZ_CREATE_CONFLICT)
        return cz_http_problem(r, 409, "idempotency-key-reused",
                               "this Idempotency-Key was used with a different request in the "
                               "last 24 hours; use a new key for a new request",
                               NULL);
    if (sub->outcome == CZ_CREATE_OVER_QUOTA) {
        char detail[320];
        snprintf(detail, sizeof detail,
                 "this job's %g s of audio would take tenant %s past its monthly quota of %g "
                 "minutes (counting jobs still running); the quota starts again on the 1st (UTC)",
                 sub->duration_s, r->key.tenant, r->key.quota_minutes);
        long long wait = seconds_to_next_month();
        r->retry_after_s = wait > 0 && wait < 0x7fffffff ? (int)wait : 1;
        return cz_http_problem(r, 429, "quota-exceeded", detail, "duration_s");
    }
    char *json = sub->json;
    if (sub->outcome == CZ_CREATE_NEW) {
        static const char *const how[] = {"job accepted", "job answered from the prompt cache",
                                          "job attached to an identical job in flight"};
        cz_log_job(CZ_LOG_INFO, j->id, j->trace, "%s for tenant %s", how[sub->kind], r->key.tenant);
        if (sub->kind == CZ_JOB_COALESCED)
            count_coalesced(api);
    }

    /* A replay answers with the first response's body; its id is the job's. */
    cJSON *stored = sub->outcome == CZ_CREATE_REPLAY ? cJSON_Parse(json) : NULL;
    const char *job_id = stored ? cz_json_str(stored, "id") : j->id;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(json), json, MHD_RESPMEM_MUST_FREE);
    char location[64];
    snprintf(location, sizeof location, "/v1/jobs/%s", job_id ? job_id : j->id);
    cJSON_Delete(stored);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
    if (sub->outcome == CZ_CREATE_REPLAY)
        MHD_add_response_header(resp, "Idempotent-Replayed", "true");
    enum MHD_Result res = cz_http_queue(r, (unsigned)sub->status, resp);
    MHD_destroy_response(resp);
    return res;
}

enum MHD_Result cz_api_jobs_create(cz_api *api, cz_http_req *r, const char *unused) {
    (void)unused;
    /* The body itself is parsed by cz_request_parse (the same reader,
     * cz_request_read_object, with the job's rules), after the key. */
    static const cz_http_body how = {"the job", false, NULL};
    enum MHD_Result res;
    const char *key;
    if (!cz_http_body_acceptable(r, &how, &res) || idempotency_key(r, &key, &res))
        return res;

    cz_request req;
    if (parse_job(api, r, default_seed(r, key), &req, &res))
        return res;

    new_job j = {0};
    consult_cache(api, r, &req, &j);
    cz_uuid7(j.id);
    cz_trace_id(j.trace);
    cz_traceparent(j.trace, j.traceparent);

    cz_job_submit sub;
    cz_err err;
    int rc = persist(api, r, &req, key, &j, &sub, &err);
    cz_request_free(&req);
    if (rc)
        return cz_http_unavailable(r, "job insert", &err, STORE_DOWN);
    return answer(api, r, &j, &sub);
}

enum MHD_Result cz_api_jobs_get(cz_api *api, cz_http_req *r, const char *id) {
    enum MHD_Result res;
    if (!cz_uuid_valid(id))
        return cz_http_problem(r, 404, "not-found", "no such job", NULL);
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    char *json = cz_db_job_get(c, r->key.tenant, id, &err);
    cz_db_pool_put(api->db, c);
    if (!json)
        return err.msg[0] ? cz_http_unavailable(r, "job read", &err, STORE_DOWN)
                          : cz_http_problem(r, 404, "not-found", "no such job", NULL);
    res = cz_http_json(r, 200, json);
    free(json);
    return res;
}

/* Running workers learn of a cancel from a Redis flag; without Redis they
 * finish and the scheduler discards the late result, so this is best effort. */
static void raise_cancel_flag(cz_api *api, const char *id) {
    cz_err err;
    redisContext *rc = cz_redis_borrow(api->redis, &err);
    redisReply *reply = rc ? redisCommand(rc, "SET cadenza:cancel:%s 1 EX 86400", id) : NULL;
    if (!reply)
        cz_log_job(CZ_LOG_WARN, id, NULL,
                   "cancel flag not set (Redis unavailable); the late result will be discarded");
    freeReplyObject(reply);
    cz_redis_give_back(api->redis, rc);
}

enum MHD_Result cz_api_jobs_cancel(cz_api *api, cz_http_req *r, const char *id) {
    enum MHD_Result res;
    if (!cz_uuid_valid(id))
        return cz_http_problem(r, 404, "not-found", "no such job", NULL);
    cz_err err;
    char *json;
    PGconn *c = cz_db_pool_get(api->db);
    int rc = cz_db_job_cancel(c, r->key.tenant, id, &json, &err);
    cz_db_pool_put(api->db, c);
    if (rc < 0)
        return cz_http_unavailable(r, "job cancel", &err, STORE_DOWN);
    if (rc == 0)
        return cz_http_problem(r, 404, "not-found", "no such job", NULL);
    if (rc == 2) {
        cJSON *job = cJSON_Parse(json);
        char detail[96];
        snprintf(detail, sizeof detail, "the job has already ended: it is %s",
                 cz_json_str(job, "state") ? cz_json_str(job, "state") : "terminal");
        cJSON_Delete(job);
        free(json);
        return cz_http_problem(r, 409, "job-finished", detail, NULL);
    }
    raise_cancel_flag(api, id);
    cz_jobs_announce(api, id);
    cz_log_job(CZ_LOG_INFO, id, NULL, "canceled by tenant %s", r->key.tenant);
    res = cz_http_json(r, 200, json);
    free(json);
    return res;
}

enum MHD_Result cz_api_jobs_list(cz_api *api, cz_http_req *r, const char *unused) {
    (void)unused;
    enum MHD_Result res;
    const char *lim = query(r, "limit"), *cursor = query(r, "cursor"), *state = query(r, "state");
    int limit = 20;
    if (lim) {
        char *end;
        long n = strtol(lim, &end, 10);
        if (*end || n < 1 || n > 100)
            return cz_http_problem(r, 422, "invalid-field", "limit must be 1 to 100", "limit");
        limit = (int)n;
    }
    if (cursor && !cz_uuid_valid(cursor))
        return cz_http_problem(r, 422, "invalid-field",
                               "cursor must be a next_cursor from an earlier page", "cursor");
    if (state && cz_job_state_parse(state) < 0)
        return cz_http_problem(r, 422, "invalid-field", "state is not a job state", "state");
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    char *json = cz_db_job_list(c, r->key.tenant, cursor, state, limit, &err);
    cz_db_pool_put(api->db, c);
    if (!json)
        return cz_http_unavailable(r, "job list", &err, STORE_DOWN);
    res = cz_http_json(r, 200, json);
    free(json);
    return res;
}

/* ---- audio download ------------------------------------------------------ */

/* The formats the workers write, with their media types (RFC 9639 for
 * FLAC, RFC 3003 for MP3, RFC 7845 for Ogg Opus, and the MIDI score). */
static const char *mime_type(const char *format) {
    return !strcmp(format, "flac")   ? "audio/flac"
           : !strcmp(format, "wav")  ? "audio/wav"
           : !strcmp(format, "mp3")  ? "audio/mpeg"
           : !strcmp(format, "opus") ? "audio/ogg; codecs=opus"
           : !strcmp(format, "mid")  ? "audio/midi"
                                     : NULL;
}

/* The composer's own artifacts: the raw mix, the MIDI score and the stems
 * (variant=stem&name=drums). @returns 1 when @p variant is one of them,
 * with @p format defaulted and checked; -1 when it is but the request is
 * wrong (answered); 0 when it is another variant. */
static int composer_variant(cz_http_req *r, const char *variant, const char **format,
                            const char *name, enum MHD_Result *res) {
    static const char *const groups[] = {"harmony", "bass",   "pad", "melody",
                                         "drums",   "reverb", NULL};
    const char *want = !strcmp(variant, "midi")                              ? "mid"
                       : !strcmp(variant, "raw") || !strcmp(variant, "stem") ? "wav"
                                                                             : NULL;
    if (!want)
        return 0;
    *format = *format ? *format : want;
    if (strcmp(*format, want)) {
        char detail[64];
        snprintf(detail, sizeof detail, "format of variant %s must be %s", variant, want);
        *res = cz_http_problem(r, 422, "invalid-field", detail, "format");
        return -1;
    }
    int known = 0;
    for (int i = 0; name && groups[i]; i++)
        known |= !strcmp(name, groups[i]);
    if (name && strcmp(variant, "stem")) {
        *res = cz_http_problem(r, 422, "invalid-field", "name is only for variant=stem", "name");
        return -1;
    }
    if (!strcmp(variant, "stem") && !known) {
        *res = cz_http_problem(r, 422, "invalid-field",
                               "name must be a stem: harmony, bass, pad, melody, drums or reverb",
                               "name");
        return -1;
    }
    return 1;
}

enum MHD_Result cz_api_jobs_audio_get(cz_api *api, cz_http_req *r, const char *id) {
    enum MHD_Result res;
    const char *variant = query(r, "variant"), *format = query(r, "format");
    const char *name = query(r, "name");
    variant = variant ? variant : "master";
    int own = composer_variant(r, variant, &format, name, &res);
    if (own < 0)
        return res;
    format = format ? format : "flac";
    if (!own && name)
        return cz_http_problem(r, 422, "invalid-field", "name is only for variant=stem", "name");
    if (!own && strcmp(variant, "master"))
        return cz_http_problem(r, 422, "invalid-field", "variant must be master, raw, stem or midi",
                               "variant");
    if (!own && (!mime_type(format) || !strcmp(format, "mid")))
        return cz_http_problem(r, 422, "invalid-field", "format must be flac, wav, mp3 or opus",
                               "format");
    if (!cz_uuid_valid(id))
        return cz_http_problem(r, 404, "not-found", "no such job", NULL);

    char uri[1100];
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    int found =
        cz_db_job_artifact(c, r->key.tenant, id, variant, !strcmp(variant, "stem") ? name : NULL,
                           format, uri, sizeof uri, &err);
    cz_db_pool_put(api->db, c);
    if (found < 0)
        return cz_http_unavailable(r, "artifact lookup", &err, STORE_DOWN);
    const char *path = found ? cz_artifact_uri_path(uri) : NULL;
    if (!path)
        return cz_http_problem(r, 404, "not-found",
                               "this job has no such audio (yet); see its state and artifacts",
                               NULL);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st)) {
        cz_log_job(CZ_LOG_ERROR, id, NULL, "artifact %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return cz_http_problem(r, 404, "not-found", "the audio file is missing from the store",
                               NULL);
    }

    char disposition[128];
    snprintf(disposition, sizeof disposition, "attachment; filename=\"%s%s%s.%s\"", id,
             own ? "-" : "", own ? (name && !strcmp(variant, "stem") ? name : variant) : "",
             format);
    return cz_http_send_fd(r, fd, st.st_size, mime_type(format), disposition);
}

/* ---- the prompt cache's counters ------------------------------------------ */

enum MHD_Result cz_api_cache_get(cz_api *api, cz_http_req *r, const char *unused) {
    (void)unused;
    cz_err err;
    redisContext *rc = cz_redis_borrow(api->redis, &err);
    cJSON *stats = rc ? cz_cache_stats(rc) : NULL;
    cz_redis_give_back(api->redis, rc);
    if (!stats)
        return cz_http_problem(r, 503, "unavailable",
                               "Redis, which holds the prompt cache, is unavailable", NULL);
    cJSON_AddStringToObject(stats, "object", "cache_stats");
    char *json = cz_json_print(stats);
    cJSON_Delete(stats);
    enum MHD_Result res = cz_http_json(r, 200, json);
    free(json);
    return res;
}

/* ---- usage ---------------------------------------------------------------- */

enum MHD_Result cz_api_usage_get(cz_api *api, cz_http_req *r, const char *unused) {
    (void)unused;
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    char *json = cz_db_job_usage(c, r->key.tenant, &err);
    cz_db_pool_put(api->db, c);
    if (!json)
        return cz_http_unavailable(r, "usage read", &err, STORE_DOWN);
    enum MHD_Result res = cz_http_json(r, 200, json);
    free(json);
    return res;
}
