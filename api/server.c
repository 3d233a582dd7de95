/* HTTP server and router: see server.h.
 *
 * libmicrohttpd calls the access handler several times per request: once
 * with the headers, then with pieces of the body, then once more with no
 * data. The body is collected into a cz_http_req (at most 64 KiB; anything
 * beyond is counted but dropped, and the request is answered 413), and the
 * router runs on the last call. */
#include "api/server.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/jobs.h"
#include "api/models.h"
#include "api/openapi.h"
#include "api/playlists.h"
#include "api/pools.h"
#include "api/request.h"
#include "api/review.h"
#include "api/sse.h"
#include "api/webhooks.h"
#include "common/cache.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/redis.h"

/* ---- health -------------------------------------------------------------- */

static enum MHD_Result cz_api_healthz_get(cz_api *api, cz_http_req *r, const char *unused) {
    (void)api, (void)unused;
    return cz_http_json(r, 200, "{\"status\":\"ok\"}");
}

/* Ready means every dependency answers now: Postgres, a Kafka broker, Redis. */
static enum MHD_Result cz_api_readyz_get(cz_api *api, cz_http_req *r, const char *unused) {
    (void)unused;
    cz_err err;
    bool pg_ok, kafka_ok, redis_ok;

    PGconn *c = cz_db_pool_get(api->db);
    pg_ok = cz_db_ping(c, &err) == 0;
    cz_db_pool_put(api->db, c);

    const struct rd_kafka_metadata *md = NULL;
    kafka_ok = rd_kafka_metadata(api->kafka, 0, NULL, &md, 2000) == RD_KAFKA_RESP_ERR_NO_ERROR;
    if (md)
        rd_kafka_metadata_destroy(md);

    redisContext *rc = cz_redis_connect(api->cfg->redis_url, 500, &err);
    redis_ok = rc && cz_redis_ping(rc, &err) == 0;
    redisFree(rc);

    bool ok = pg_ok && kafka_ok && redis_ok;
    char body[160];
    snprintf(
        body, sizeof body,
        "{\"status\":\"%s\",\"checks\":{\"postgres\":\"%s\",\"kafka\":\"%s\",\"redis\":\"%s\"}}",
        ok ? "ready" : "unavailable", pg_ok ? "ok" : "down", kafka_ok ? "ok" : "down",
        redis_ok ? "ok" : "down");
    return cz_http_json(r, ok ? 200 : 503, body);
}

/* ---- routing -------------------------------------------------------------
 *
 * One table: method, path pattern, the roles admitted, the handler. The
 * router authenticates the key, applies its rate limit and checks its role
 * before any handler runs, so a handler never sees a request it may not
 * serve, and a new endpoint states its roles in the line that adds it.
 * Order for a request with a key: 401 (no or bad key), 429 (rate limit),
 * 403 (role), then the handler's own checks. */

/* Who may do what. admin may do everything the others may, in its tenant. */
#define PUBLIC 0u /* no key needed */
#define SUBMIT (CZ_ROLE_SUBMITTER | CZ_ROLE_ADMIN)
#define READ_JOBS (CZ_ROLE_SUBMITTER | CZ_ROLE_CURATOR | CZ_ROLE_ADMIN)
#define REVIEW (CZ_ROLE_CURATOR | CZ_ROLE_ADMIN)
#define OPERATE (CZ_ROLE_OPERATOR | CZ_ROLE_ADMIN)
#define ANY_KEY (CZ_ROLE_SUBMITTER | CZ_ROLE_CURATOR | CZ_ROLE_OPERATOR | CZ_ROLE_ADMIN)

/* Every handler has this shape and is named cz_api_<resource>_<verb>; @p id
 * is the path's "{id}" (or "{name}") segment, "" for a pattern without one. */
typedef enum MHD_Result (*handler)(cz_api *api, cz_http_req *r, const char *id);

/* The OpenAPI document, converted from api/openapi.yaml at build time. */
static enum MHD_Result cz_api_openapi_get(cz_api *api, cz_http_req *r, const char *unused) {
    (void)api, (void)unused;
    return cz_http_send(r, 200, "application/json", cz_openapi_json, cz_openapi_json_len);
}

/* Prometheus text: this process's series, and the prompt cache's counters,
 * which live in Redis (shared by every API process, so the same here). */
static enum MHD_Result cz_api_metrics_get(cz_api *api, cz_http_req *r, const char *unused) {
    (void)unused;
    cz_err err;
    redisContext *rc = cz_redis_borrow(api->redis, &err);
    cJSON *stats = rc ? cz_cache_stats(rc) : NULL;
    cz_redis_give_back(api->redis, rc);
    static const char *const names[][2] = {
        {"hits", "cadenza_cache_hits_total"},
        {"misses", "cadenza_cache_misses_total"},
        {"coalesced", "cadenza_cache_coalesced_total"},
    };
    for (size_t i = 0; stats && i < sizeof names / sizeof *names; i++)
        cz_metric_set(cz_metric_counter(names[i][1],
                                        "Prompt cache answers (shared by every API process).", ""),
                      cJSON_GetObjectItem(stats, names[i][0])->valuedouble);
    if (stats)
        cz_metric_set(cz_metric_gauge("cadenza_cache_entries", "Entries in the prompt cache.", ""),
                      cJSON_GetObjectItem(stats, "entries")->valuedouble);
    cJSON_Delete(stats);
    char *text = cz_metrics_render();
    enum MHD_Result res =
        cz_http_send(r, 200, "text/plain; version=0.0.4; charset=utf-8", text, strlen(text));
    free(text);
    return res;
}

static const struct route {
    const char *method;
    const char *pattern; /* "{id}", "{name}" match one path segment */
    unsigned roles;      /* the roles admitted; PUBLIC: no key needed */
    handler fn;
} routes[] = {
    {"GET", "/healthz", PUBLIC, cz_api_healthz_get},
    {"GET", "/readyz", PUBLIC, cz_api_readyz_get},
    {"GET", "/openapi.json", PUBLIC, cz_api_openapi_get},
    {"GET", "/metrics", PUBLIC, cz_api_metrics_get},
    {"POST", "/v1/jobs", SUBMIT, cz_api_jobs_create},
    {"GET", "/v1/jobs", READ_JOBS, cz_api_jobs_list},
    {"GET", "/v1/jobs/{id}", READ_JOBS, cz_api_jobs_get},
    {"POST", "/v1/jobs/{id}/cancel", SUBMIT, cz_api_jobs_cancel},
    {"GET", "/v1/jobs/{id}/audio", READ_JOBS, cz_api_jobs_audio_get},
    {"GET", "/v1/jobs/{id}/events", READ_JOBS, cz_api_jobs_events_get},
    {"GET", "/v1/jobs/{id}/deliveries", SUBMIT, cz_api_webhooks_deliveries_list},
    {"POST", "/v1/deliveries/{id}/redeliver", SUBMIT, cz_api_webhooks_redeliver},
    {"POST", "/v1/webhook-endpoints", SUBMIT, cz_api_webhooks_endpoint_create},
    {"GET", "/v1/webhook-endpoints", SUBMIT, cz_api_webhooks_endpoint_list},
    {"GET", "/v1/webhook-endpoints/{id}", SUBMIT, cz_api_webhooks_endpoint_get},
    {"POST", "/v1/webhook-endpoints/{id}/rotate", SUBMIT, cz_api_webhooks_endpoint_rotate},
    {"POST", "/v1/webhook-endpoints/{id}/disable", SUBMIT, cz_api_webhooks_endpoint_disable},
    {"POST", "/v1/webhook-endpoints/{id}/enable", SUBMIT, cz_api_webhooks_endpoint_enable},
    {"GET", "/v1/webhook-secret", SUBMIT, cz_api_webhooks_secret_get},
    {"POST", "/v1/webhook-secret/rotate", SUBMIT, cz_api_webhooks_secret_rotate},
    {"GET", "/v1/cache", OPERATE, cz_api_cache_get},
    {"GET", "/v1/usage", SUBMIT, cz_api_usage_get},
    {"GET", "/v1/review/queue", REVIEW, cz_api_review_queue_get},
    {"POST", "/v1/review/claim", REVIEW, cz_api_review_claim},
    {"POST", "/v1/review/{id}/approve", REVIEW, cz_api_review_approve},
    {"POST", "/v1/review/{id}/reject", REVIEW, cz_api_review_reject},
    {"POST", "/v1/review/{id}/regenerate", REVIEW, cz_api_review_regenerate},
    {"POST", "/v1/review/{id}/release", REVIEW, cz_api_review_release},
    {"GET", "/v1/catalog/{id}/audio", REVIEW, cz_api_catalog_audio_get},
    {"GET", "/review", PUBLIC, cz_api_review_page_redirect},
    {"GET", "/review/", PUBLIC, cz_api_review_page_get},
    {"GET", "/review/{id}", PUBLIC, cz_api_review_page_get},
    {"POST", "/v1/users/{id}/signals", SUBMIT, cz_api_signals_create},
    {"POST", "/v1/playlists", SUBMIT, cz_api_playlists_create},
    {"GET", "/v1/playlists/{id}", READ_JOBS, cz_api_playlists_get},
    {"GET", "/v1/pools", OPERATE, cz_api_pools_list},
    {"PUT", "/v1/pools/{name}", OPERATE, cz_api_pools_update},
    {"GET", "/v1/models", ANY_KEY, cz_api_models_list},
    {"GET", "/v1/models/{name}", ANY_KEY, cz_api_models_get},
    {"PUT", "/v1/models/{name}", OPERATE, cz_api_models_update},
    {"POST", "/v1/models/{name}/promote", OPERATE, cz_api_models_promote},
    {"POST", "/v1/models/{name}/rollback", OPERATE, cz_api_models_rollback},
};

/* True when @p path fits @p pattern; the segment at "{id}" (or any "{name}")
 * goes to @p id. */
static bool matches(const char *pattern, const char *path, char *id, size_t idlen) {
    while (*pattern && *path) {
        if (*pattern == '{') {
            size_t n = strcspn(path, "/");
            if (n == 0 || n >= idlen)
                return false;
            memcpy(id, path, n);
            id[n] = '\0';
            pattern += strcspn(pattern, "}") + 1;
            path += n;
        } else if (*pattern++ != *path++) {
            return false;
        }
    }
    return !*pattern && !*path;
}

static void role_names(unsigned roles, char *out, size_t n) {
    static const char *const names[] = {"submitter", "curator", "operator", "admin"};
    out[0] = '\0';
    for (unsigned i = 0; i < 4; i++)
        if (roles & (1u << i))
            snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? ", " : "", names[i]);
}

static enum MHD_Result route(cz_api *api, cz_http_req *r) {
    char id[64] = "", allow[64] = "";
    const struct route *found = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof *routes && !found; i++) {
        if (!matches(routes[i].pattern, r->path, id, sizeof id))
            continue;
        if (!strcmp(r->method, routes[i].method))
            found = &routes[i];
        else if (!strstr(allow, routes[i].method))
            snprintf(allow + strlen(allow), sizeof allow - strlen(allow), "%s%s",
                     allow[0] ? ", " : "", routes[i].method);
    }
    if (!found && allow[0]) {
        char detail[96];
        snprintf(detail, sizeof detail, "use %s on this path", allow);
        return cz_http_problem(r, 405, "method-not-allowed", detail, NULL);
    }
    if (!found)
        return cz_http_problem(r, 404, "not-found", "no such endpoint", NULL);
    if (found->roles != PUBLIC) {
        enum MHD_Result res;
        if (cz_http_authenticate(api, r, &res) || cz_http_rate_limit(api, r, &res))
            return res;
        if (!(found->roles & cz_role_bit(r->key.role))) {
            char need[64], detail[200];
            role_names(found->roles, need, sizeof need);
            snprintf(detail, sizeof detail, "a %s key may not %s %s; this needs the role %s",
                     r->key.role, r->method, found->pattern, need);
            return cz_http_problem(r, 403, "forbidden", detail, NULL);
        }
    }
    return found->fn(api, r, id);
}

/* ---- libmicrohttpd callbacks -------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    cz_http_req *r = *con_cls;
    if (!r) {
        r = cz_calloc(1, sizeof *r);
        r->conn = conn;
        r->method = method;
        r->path = url;
        r->started_us = cz_mono_us();
        *con_cls = r;
        return MHD_YES; /* headers seen; the body (if any) comes next */
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (r->body_too_large || r->body_len + n > CZ_REQUEST_MAX_BODY) {
            r->body_too_large = true;
        } else {
            r->body = cz_realloc(r->body, r->body_len + n + 1);
            memcpy(r->body + r->body_len, upload_data, n);
            r->body_len += n;
            r->body[r->body_len] = '\0';
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    return route(cls, r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)conn, (void)toe;
    cz_http_req *r = *con_cls;
    if (r) {
        free(r->body);
        free(r);
        *con_cls = NULL;
    }
}

struct MHD_Daemon *cz_server_start(cz_api *api, cz_err *err) {
    char host[128];
    int port;
    if (sscanf(api->cfg->api_listen, "%127[^:]:%d", host, &port) != 2 || port <= 0 ||
        port > 65535) {
        cz_err_set(err, "CADENZA_API_LISTEN must be host:port, not %s", api->cfg->api_listen);
        return NULL;
    }
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1) {
        cz_err_set(err, "CADENZA_API_LISTEN host must be an IPv4 address, not %s", host);
        return NULL;
    }
    /* A thread per connection: handlers block (on Postgres, on their
     * batch's commit), and with a pool of threads each serving several
     * connections, one connection's wait would be every other's on that
     * thread. Database work is still bounded by the connection pool
     * (api_threads); connections by CADENZA_API_MAX_CONNECTIONS. */
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
            MHD_USE_ERROR_LOG,
        (uint16_t)port, NULL, NULL, on_request, api, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)api->cfg->api_max_connections,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned)30, MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!d)
        cz_err_set(err, "cannot listen on %s (in use?)", api->cfg->api_listen);
    return d;
}
