/* HTTP server and router: see server.h.
 *
 * libmicrohttpd calls the access handler several times per request: once
 * with the headers, then with pieces of the body, then once more with no
 * data. The body is collected into a cz_http_req (at most 64 KiB; anything
 * beyond is counted but dropped, and the request is answered 413), and the
 * router runs on the last call. */
#include "server.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/redis.h"
#include "jobs.h"
#include "request.h"
#include "webhooks.h"

/* ---- health -------------------------------------------------------------- */

static enum MHD_Result healthz(cz_http_req *r) {
    return cz_http_json(r, 200, "{\"status\":\"ok\"}");
}

/* Ready means every dependency answers now: Postgres, a Kafka broker, Redis. */
static enum MHD_Result readyz(cz_api *api, cz_http_req *r) {
    cz_err err;
    bool pg_ok, kafka_ok, redis_ok;

    PGconn *c = cz_db_pool_get(api->db);
    PGresult *res = cz_db_query(c, "SELECT 1", 0, NULL, &err);
    pg_ok = res != NULL;
    PQclear(res);
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

/* ---- routing ------------------------------------------------------------- */

static enum MHD_Result method_not_allowed(cz_http_req *r, const char *allow) {
    char detail[80];
    snprintf(detail, sizeof detail, "use %s on this path", allow);
    return cz_http_problem(r, 405, "method-not-allowed", detail, NULL);
}

static bool is(const cz_http_req *r, const char *method) {
    return !strcmp(r->method, method);
}

static enum MHD_Result route(cz_api *api, cz_http_req *r) {
    const char *p = r->path;
    if (!strcmp(p, "/healthz"))
        return is(r, "GET") ? healthz(r) : method_not_allowed(r, "GET");
    if (!strcmp(p, "/readyz"))
        return is(r, "GET") ? readyz(api, r) : method_not_allowed(r, "GET");
    if (!strcmp(p, "/v1/jobs")) {
        if (is(r, "POST"))
            return cz_jobs_create(api, r);
        return is(r, "GET") ? cz_jobs_list(api, r) : method_not_allowed(r, "GET, POST");
    }
    if (!strncmp(p, "/v1/jobs/", 9)) {
        char id[64];
        const char *rest = p + 9, *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : strlen(rest);
        if (n == 0 || n >= sizeof id)
            return cz_http_problem(r, 404, "not-found", "no such job", NULL);
        memcpy(id, rest, n);
        id[n] = '\0';
        if (!slash)
            return is(r, "GET") ? cz_jobs_get(api, r, id) : method_not_allowed(r, "GET");
        if (!strcmp(slash, "/audio"))
            return is(r, "GET") ? cz_jobs_audio(api, r, id) : method_not_allowed(r, "GET");
        if (!strcmp(slash, "/cancel"))
            return is(r, "POST") ? cz_jobs_cancel(api, r, id) : method_not_allowed(r, "POST");
        if (!strcmp(slash, "/deliveries"))
            return is(r, "GET") ? cz_webhooks_deliveries(api, r, id) : method_not_allowed(r, "GET");
    }
    static const char endpoints[] = "/v1/webhook-endpoints", secret[] = "/v1/webhook-secret";
    if (!strncmp(p, endpoints, sizeof endpoints - 1) &&
        (!p[sizeof endpoints - 1] || p[sizeof endpoints - 1] == '/'))
        return cz_webhooks_endpoints(api, r, p + sizeof endpoints - 1);
    if (!strncmp(p, secret, sizeof secret - 1) &&
        (!p[sizeof secret - 1] || p[sizeof secret - 1] == '/'))
        return cz_webhooks_secret(api, r, p + sizeof secret - 1);
    if (!strncmp(p, "/v1/deliveries/", 15)) {
        char id[64];
        const char *rest = p + 15, *slash = strchr(rest, '/');
        size_t n = slash ? (size_t)(slash - rest) : 0;
        if (n && n < sizeof id && !strcmp(slash, "/redeliver")) {
            memcpy(id, rest, n);
            id[n] = '\0';
            return is(r, "POST") ? cz_webhooks_redeliver(api, r, id)
                                 : method_not_allowed(r, "POST");
        }
    }
    return cz_http_problem(r, 404, "not-found", "no such endpoint", NULL);
}

/* ---- libmicrohttpd callbacks -------------------------------------------- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    cz_http_req *r = *con_cls;
    if (!r) {
        if (!(r = calloc(1, sizeof *r)))
            return MHD_NO;
        r->conn = conn;
        r->method = method;
        r->path = url;
        *con_cls = r;
        return MHD_YES; /* headers seen; the body (if any) comes next */
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        if (r->body_too_large || r->body_len + n > CZ_REQUEST_MAX_BODY) {
            r->body_too_large = true;
        } else {
            char *b = realloc(r->body, r->body_len + n + 1);
            if (!b)
                return MHD_NO;
            memcpy(b + r->body_len, upload_data, n);
            r->body = b;
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
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
        NULL, on_request, api, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_THREAD_POOL_SIZE, (unsigned)api->cfg->api_threads, MHD_OPTION_NOTIFY_COMPLETED,
        on_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!d)
        cz_err_set(err, "cannot listen on %s (in use?)", api->cfg->api_listen);
    return d;
}
