/* HTTP responses, authentication and rate limiting: see http.h. */
#include "api/http.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/keycache.h"
#include "api/ratelimit.h"
#include "api/request.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/metrics.h"

unsigned cz_role_bit(const char *name) {
    static const char *const names[] = {"submitter", "curator", "operator", "admin"};
    for (unsigned i = 0; i < sizeof names / sizeof *names; i++)
        if (!strcmp(name, names[i]))
            return 1u << i;
    return 0;
}

enum MHD_Result cz_http_queue(cz_http_req *r, unsigned status, struct MHD_Response *resp) {
    char v[24];
    if (r->rate_limit > 0) {
        /* Field names of draft-ietf-httpapi-ratelimit-headers: the bucket's
         * size, the requests left now, seconds until it is full again. */
        snprintf(v, sizeof v, "%d", r->rate_limit);
        MHD_add_response_header(resp, "RateLimit-Limit", v);
        snprintf(v, sizeof v, "%d", r->rate_remaining);
        MHD_add_response_header(resp, "RateLimit-Remaining", v);
        snprintf(v, sizeof v, "%d", r->rate_reset_s);
        MHD_add_response_header(resp, "RateLimit-Reset", v);
    }
    if (r->retry_after_s > 0) {
        snprintf(v, sizeof v, "%d", r->retry_after_s);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, v);
    }
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"cadenza\"");
    char l[64];
    snprintf(l, sizeof l, "code=\"%u\"", status);
    cz_metric_add(cz_metric_counter("cadenza_http_requests_total",
                                    "API requests answered, by status code.", l),
                  1);
    if (r->started_us > 0)
        cz_metric_observe(cz_metric_histogram("cadenza_http_request_duration_seconds",
                                              "Time from a request's arrival to its answer.", "",
                                              cz_metrics_latency_buckets,
                                              cz_metrics_latency_nbuckets),
                          (double)(cz_mono_us() - r->started_us) / 1e6);
    return MHD_queue_response(r->conn, status, resp);
}

enum MHD_Result cz_http_send(cz_http_req *r, unsigned status, const char *content_type,
                             const char *body, size_t len) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = cz_http_queue(r, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Parses a single "bytes=a-b" range (RFC 9110 14.1.2) against a file of
 * @p size bytes. @returns 1 with [*from, *to] set, 0 for no usable Range
 * header (serve it all), -1 when unsatisfiable. */
static int parse_range(const char *h, off_t size, off_t *from, off_t *to) {
    if (!h || strncmp(h, "bytes=", 6) || strchr(h, ','))
        return 0; /* absent, another unit, or multiple ranges: send the whole file */
    const char *s = h + 6;
    char *end;
    if (*s == '-') { /* suffix: the last n bytes */
        long long n = strtoll(s + 1, &end, 10);
        if (*end || n <= 0)
            return 0;
        if (size == 0)
            return -1;
        *from = n >= size ? 0 : size - n;
        *to = size - 1;
        return 1;
    }
    long long a = strtoll(s, &end, 10);
    if (end == s || *end != '-' || a < 0)
        return 0;
    s = end + 1;
    long long b = size - 1;
    if (*s) {
        b = strtoll(s, &end, 10);
        if (*end || b < a)
            return 0;
    }
    if (a >= size)
        return -1;
    *from = a;
    *to = b >= size ? size - 1 : b;
    return 1;
}

enum MHD_Result cz_http_send_fd(cz_http_req *r, int fd, off_t size, const char *content_type,
                                const char *disposition) {
    enum MHD_Result res;
    off_t from = 0, to = size - 1;
    int ranged =
        parse_range(MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE),
                    size, &from, &to);
    if (ranged < 0) {
        close(fd);
        char cr[48];
        snprintf(cr, sizeof cr, "bytes */%lld", (long long)size);
        struct MHD_Response *resp = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
        res = cz_http_queue(r, 416, resp);
        MHD_destroy_response(resp);
        return res;
    }
    /* The response owns fd from here and closes it. */
    struct MHD_Response *resp =
        MHD_create_response_from_fd_at_offset64((uint64_t)(to - from + 1), fd, (uint64_t)from);
    if (!resp) {
        close(fd);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
    if (disposition)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_DISPOSITION, disposition);
    if (ranged) {
        char cr[80];
        snprintf(cr, sizeof cr, "bytes %lld-%lld/%lld", (long long)from, (long long)to,
                 (long long)size);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
    }
    res = cz_http_queue(r, ranged ? MHD_HTTP_PARTIAL_CONTENT : MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return res;
}

enum MHD_Result cz_http_json(cz_http_req *r, unsigned status, const char *json) {
    return cz_http_send(r, status, "application/json", json, strlen(json));
}

static const char *status_title(unsigned status) {
    switch (status) {
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 416:
        return "Range Not Satisfiable";
    case 422:
        return "Unprocessable Content";
    case 429:
        return "Too Many Requests";
    case 503:
        return "Service Unavailable";
    default:
        return status >= 500 ? "Internal Server Error" : "Error";
    }
}

enum MHD_Result cz_http_problem(cz_http_req *r, unsigned status, const char *type,
                                const char *detail, const char *field) {
    char urn[96];
    snprintf(urn, sizeof urn, "urn:cadenza:problem:%s", type);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "type", urn);
    cJSON_AddStringToObject(o, "title", status_title(status));
    cJSON_AddNumberToObject(o, "status", status);
    cJSON_AddStringToObject(o, "detail", detail);
    cJSON_AddStringToObject(o, "instance", r->path);
    if (field && *field)
        cJSON_AddStringToObject(o, "field", field);
    char *body = cz_json_print(o);
    cJSON_Delete(o);
    enum MHD_Result rc =
        body ? cz_http_send(r, status, "application/problem+json", body, strlen(body)) : MHD_NO;
    free(body);
    return rc;
}

enum MHD_Result cz_http_unavailable(cz_http_req *r, const char *what, const cz_err *err,
                                    const char *detail) {
    cz_log_error("%s: %s", what, err->msg);
    return cz_http_problem(r, 503, "unavailable", detail, NULL);
}

int cz_http_authenticate(cz_api *api, cz_http_req *r, enum MHD_Result *result) {
    const char *auth =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!auth || strncasecmp(auth, "Bearer ", 7) || !auth[7]) {
        *result = cz_http_problem(r, 401, "unauthorized",
                                  "send an API key as 'Authorization: Bearer <key>'", NULL);
        return -1;
    }
    const char *key = auth + 7;
    if (strlen(key) != CZ_KEY_LEN - 1) {
        *result = cz_http_problem(r, 401, "unauthorized", "the API key is not valid", NULL);
        return -1;
    }
    if (cz_keycache_get(api->keys, key, &r->key))
        return 0;
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    int found = cz_db_key_lookup(c, key, &r->key, &err);
    cz_db_pool_put(api->db, c);
    if (found == 1)
        cz_keycache_put(api->keys, key, &r->key);
    if (found < 0) {
        *result =
            cz_http_unavailable(r, "authentication", &err, "the key store is unavailable; retry");
        return -1;
    }
    if (!found) {
        *result = cz_http_problem(r, 401, "unauthorized",
                                  "the API key is not valid (unknown or revoked)", NULL);
        return -1;
    }
    return 0;
}

int cz_http_rate_limit(cz_api *api, cz_http_req *r, enum MHD_Result *result) {
    const cz_config *cfg = api->cfg;
    double rate = r->key.rate_per_s > 0 ? r->key.rate_per_s : cfg->rate_limit_per_s;
    int burst = r->key.rate_burst > 0 ? r->key.rate_burst : cfg->rate_limit_burst;
    cz_rate_verdict v;
    cz_err err;
    if (cz_ratelimit_take(api->ratelimit, r->key.id, rate, burst, &v, &err)) {
        if (cfg->rate_limit_fail_open) {
            cz_log_debug("rate limit not applied (failing open): %s", err.msg);
            return 0;
        }
        cz_log_warn("rate limit unavailable, refusing (failing closed): %s", err.msg);
        r->retry_after_s = 1;
        *result = cz_http_problem(r, 503, "rate-limiter-unavailable",
                                  "the rate limiter is unavailable and this service refuses "
                                  "requests it cannot count; retry shortly",
                                  NULL);
        return -1;
    }
    r->rate_limit = v.limit;
    r->rate_remaining = v.remaining;
    r->rate_reset_s = v.reset_s;
    if (v.allowed)
        return 0;
    r->retry_after_s = v.retry_after_s;
    char detail[160];
    snprintf(detail, sizeof detail,
             "this key may make %d requests at once and %g per second after that; retry in %d s",
             burst, rate, v.retry_after_s);
    *result = cz_http_problem(r, 429, "rate-limited", detail, NULL);
    return -1;
}

bool cz_http_is_json_type(const char *content_type) {
    size_t n = strlen("application/json");
    return content_type && !strncasecmp(content_type, "application/json", n) &&
           (content_type[n] == '\0' || content_type[n] == ';');
}

bool cz_http_body_acceptable(cz_http_req *r, const cz_http_body *how, enum MHD_Result *res) {
    if (r->body_too_large) {
        *res = cz_http_problem(r, 413, "body-too-large", "the body is larger than 64 KiB", NULL);
        return false;
    }
    if (!r->body_len && how->empty_is_object)
        return true;
    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!cz_http_is_json_type(ct)) {
        char detail[96];
        snprintf(detail, sizeof detail, "send %s as Content-Type: application/json", how->what);
        *res = cz_http_problem(r, 415, "unsupported-media-type", detail, NULL);
        return false;
    }
    return true;
}

cJSON *cz_http_read_object(cz_http_req *r, const cz_http_body *how, enum MHD_Result *res) {
    if (!cz_http_body_acceptable(r, how, res))
        return NULL;
    if (!r->body_len && how->empty_is_object)
        return cJSON_CreateObject();
    cJSON *o;
    cz_request_error e;
    if (cz_request_read_object(r->body ? r->body : "", r->body_len, &o, &e)) {
        *res = cz_http_problem(r, (unsigned)e.status, e.type, e.detail, e.field);
        return NULL;
    }
    for (const cJSON *m = how->allowed ? o->child : NULL; m; m = m->next) {
        bool known = false;
        for (int i = 0; how->allowed[i]; i++)
            known |= !strcmp(m->string, how->allowed[i]);
        if (!known) {
            char detail[120];
            snprintf(detail, sizeof detail, "unknown field \"%.60s\"", m->string);
            *res = cz_http_problem(r, 422, "unknown-field", detail, m->string);
            cJSON_Delete(o);
            return NULL;
        }
    }
    return o;
}
