/* The API's HTTP plumbing over libmicrohttpd: the per-request context that
 * collects the body, JSON and problem+json (RFC 9457) responses, and the
 * application context every handler receives. */
#ifndef CZ_HTTP_H
#define CZ_HTTP_H

#include <librdkafka/rdkafka.h>
#include <microhttpd.h>
#include <stdbool.h>
#include <stddef.h>

#include "../common/config.h"
#include "../common/db.h"
#include "../common/db_keys.h"
#include "../common/netguard.h"

/** What every handler can reach; created in main, read-only afterwards. */
typedef struct cz_api {
    const cz_config *cfg;
    cz_db_pool *db;
    rd_kafka_t *kafka; /* for readiness checks only: jobs go through the outbox */
    cz_netguard guard; /* where webhook URLs may point (CADENZA_WEBHOOK_ALLOW) */
} cz_api;

/** One request in flight. */
typedef struct cz_http_req {
    struct MHD_Connection *conn;
    const char *method;
    const char *path;
    char *body; /* NUL-terminated */
    size_t body_len;
    bool body_too_large;
    char tenant[CZ_TENANT_MAX]; /* set by cz_http_authenticate */
    char role[CZ_ROLE_MAX];
} cz_http_req;

/** @brief Queues a response with @p body (copied) and @p content_type. */
enum MHD_Result cz_http_send(cz_http_req *r, unsigned status, const char *content_type,
                             const char *body, size_t len);

/** @brief Queues an application/json response. */
enum MHD_Result cz_http_json(cz_http_req *r, unsigned status, const char *json);

/**
 * @brief Queues an application/problem+json response (RFC 9457) with a stable
 * @p type slug (urn:cadenza:problem:<slug>), a @p detail for people and, when
 * not empty, the offending @p field.
 */
enum MHD_Result cz_http_problem(cz_http_req *r, unsigned status, const char *type,
                                const char *detail, const char *field);

/**
 * @brief Checks the Bearer key and fills r->tenant and r->role.
 * @returns 0 when authenticated; otherwise the response (401, or 503 when the
 * database is unreachable) has been queued and the caller returns @p *result.
 */
int cz_http_authenticate(cz_api *api, cz_http_req *r, enum MHD_Result *result);

/** @brief True when the request's role is one of the NULL-terminated @p roles. */
bool cz_http_role_in(const cz_http_req *r, const char *const *roles);

#endif
