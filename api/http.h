/* The API's HTTP plumbing over libmicrohttpd: the per-request context that
 * collects the body, JSON and problem+json (RFC 9457) responses, roles,
 * authentication and rate limiting, and the application context every
 * handler receives. */
#ifndef CZ_HTTP_H
#define CZ_HTTP_H

#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "common/config.h"
#include "common/db/db.h"
#include "common/db/keys.h"
#include "common/netguard.h"

struct cz_committer;
struct cz_keycache;
struct cz_registry;
struct cz_ratelimit;

/** What every handler can reach; created in main, read-only afterwards. */
typedef struct cz_api {
    const cz_config *cfg;
    cz_db_pool *db;
    rd_kafka_t *kafka;              /* for readiness checks only: jobs go through the outbox */
    struct cz_committer *committer; /* group commit of submissions (committer.h) */
    struct cz_ratelimit *ratelimit; /* per-key token buckets (ratelimit.h) */
    struct cz_keycache *keys;       /* recently authenticated keys (keycache.h) */
    struct cz_registry *models;     /* the model registry's snapshot (registry.h) */
    struct cz_sse *sse;             /* live event streams (sse.h) */
    struct cz_redis_pool *redis;    /* cache, cancel flags, rate limits, announcements */
    struct cz_playlists *playlists; /* the catalogue in memory (common/playlist/service.h) */
    cz_netguard guard;              /* where webhook URLs may point (CADENZA_WEBHOOK_ALLOW) */
} cz_api;

/* Roles, as bits so that a route names every role it admits. `admin` may do
 * everything the other three may, within its tenant. */
enum {
    CZ_ROLE_SUBMITTER = 1 << 0,
    CZ_ROLE_CURATOR = 1 << 1,
    CZ_ROLE_OPERATOR = 1 << 2,
    CZ_ROLE_ADMIN = 1 << 3,
};

/** @brief The bit of role @p name, 0 for a name that is no role. */
unsigned cz_role_bit(const char *name);

/** One request in flight. */
typedef struct cz_http_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    char *body; /* NUL-terminated */
    size_t body_len;
    bool body_too_large;
    cz_key_info key; /* set by cz_http_authenticate: tenant, role, limits */
    int rate_limit;  /* RateLimit-* headers to send, when rate_limit > 0 */
    int rate_remaining;
    int rate_reset_s;
    int retry_after_s;    /* Retry-After to send, when > 0 */
    long long started_us; /* cz_mono_us() when the request arrived */
} cz_http_req;

/**
 * @brief Queues @p resp with @p status, adding the headers every response of
 * this request carries (RateLimit-*, Retry-After, WWW-Authenticate on 401).
 * Does not destroy @p resp.
 */
enum MHD_Result cz_http_queue(cz_http_req *r, unsigned status, struct MHD_Response *resp);

/** @brief Queues a response with @p body (copied) and @p content_type. */
enum MHD_Result cz_http_send(cz_http_req *r, unsigned status, const char *content_type,
                             const char *body, size_t len);

/** @brief Queues an application/json response. */
enum MHD_Result cz_http_json(cz_http_req *r, unsigned status, const char *json);

/**
 * @brief Queues the open file @p fd of @p size bytes (the response takes
 * @p fd and closes it) with @p content_type, `Accept-Ranges: bytes` and, when
 * not NULL, @p disposition. A single `Range: bytes=a-b`, `bytes=a-` or
 * `bytes=-n` gets 206 with Content-Range; one past the end 416.
 */
enum MHD_Result cz_http_send_fd(cz_http_req *r, int fd, off_t size, const char *content_type,
                                const char *disposition);

/**
 * @brief Queues an application/problem+json response (RFC 9457) with a stable
 * @p type slug (urn:cadenza:problem:<slug>), a @p detail for people and, when
 * not empty, the offending @p field.
 */
enum MHD_Result cz_http_problem(cz_http_req *r, unsigned status, const char *type,
                                const char *detail, const char *field);

/**
 * @brief Logs "@p what: <err>" and answers 503 (problem type "unavailable")
 * with @p detail, which tells the client what was down and whether anything
 * was kept. The one answer for a store (Postgres) that did not answer.
 */
enum MHD_Result cz_http_unavailable(cz_http_req *r, const char *what, const cz_err *err,
                                    const char *detail);

/**
 * @brief Checks the Bearer key and fills r->key.
 * @returns 0 when authenticated; otherwise the response (401, or 503 when the
 * database is unreachable) has been queued and the caller returns @p *result.
 */
int cz_http_authenticate(cz_api *api, cz_http_req *r, enum MHD_Result *result);

/**
 * @brief Takes a token from the key's bucket (ratelimit.h) and records the
 * RateLimit-* figures for the response.
 * @returns 0 to go on; otherwise 429 (or 503 when Redis is down and the
 * limiter fails closed) has been queued and the caller returns @p *result.
 */
int cz_http_rate_limit(cz_api *api, cz_http_req *r, enum MHD_Result *result);

/** How a handler wants its body read (cz_http_read_object). */
typedef struct cz_http_body {
    const char *what;           /* named in the 415 detail: "send <what> as Content-Type: ..." */
    bool empty_is_object;       /* no body reads as {}; otherwise it is not JSON (400) */
    const char *const *allowed; /* the field names admitted, NULL-terminated; NULL: the
                                 * handler checks names itself (its own 422 detail) */
} cz_http_body;

/**
 * @brief The checks of a body before it is parsed, in this order: 413 when
 * it is larger than 64 KiB; an empty body passes when @p how->empty_is_object;
 * 415 unless it is sent as application/json.
 * @returns true to go on; otherwise the problem has been queued in @p res.
 */
bool cz_http_body_acceptable(cz_http_req *r, const cz_http_body *how, enum MHD_Result *res);

/**
 * @brief Reads the JSON body as one object, the way every handler does:
 * cz_http_body_acceptable(), then cz_request_read_object() (400 for what is
 * not JSON, an empty body included unless @p how->empty_is_object; 422 for
 * bad UTF-8, \u0000 or a non-object), then the field names against
 * @p how->allowed (422 unknown-field).
 * @returns the object (caller frees), or NULL with the problem queued in @p res.
 */
struct cJSON *cz_http_read_object(cz_http_req *r, const cz_http_body *how, enum MHD_Result *res);

/** @brief True when @p content_type is application/json (parameters allowed). */
bool cz_http_is_json_type(const char *content_type);

#endif
