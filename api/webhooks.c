/* The API's webhook endpoints: see webhooks.h.
 *
 * Secrets are shown twice only: when an endpoint is created and when its
 * secret is rotated (the tenant's default secret, which signs deliveries
 * to jobs' own webhook URLs, is read with GET /v1/webhook-secret). A URL is
 * checked by the address guard when it is registered, and again by the
 * dispatcher whenever it connects. */
#include "api/webhooks.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db/webhooks.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/webhook.h"

#define URL_MAX 2048
#define DESCRIPTION_MAX 256

/* The answer when Postgres does not answer (cz_http_unavailable). */
#define STORE_DOWN "the webhook store is unavailable; nothing was changed, retry later"

static enum MHD_Result not_found(cz_http_req *r, const char *what) {
    char detail[64];
    snprintf(detail, sizeof detail, "no such %s", what);
    return cz_http_problem(r, 404, "not-found", detail, NULL);
}

/* Answers with @p json (freed here), or 404 / 503 when it is NULL. */
static enum MHD_Result answer(cz_http_req *r, unsigned status, char *json, const cz_err *err,
                              const char *what) {
    if (!json)
        return err->msg[0] ? cz_http_unavailable(r, what, err, STORE_DOWN) : not_found(r, what);
    enum MHD_Result res = cz_http_json(r, status, json);
    free(json);
    return res;
}

/* ---- creating an endpoint ---------------------------------------------------------- */

typedef struct endpoint_body {
    const char *url;
    const char *description;
    char events[160]; /* text[] literal */
} endpoint_body;

/* @returns 0 with @p b filled (pointing into @p root), or -1 with the
 * answer queued in @p res. */
static int read_endpoint(cz_api *api, cz_http_req *r, const cJSON *root, endpoint_body *b,
                         enum MHD_Result *res) {
    char detail[CZ_NETGUARD_WHY + 64];
    b->url = NULL;
    b->description = "";
    snprintf(b->events, sizeof b->events, "%s", CZ_WEBHOOK_DEFAULT_EVENTS);
    for (const cJSON *m = root->child; m; m = m->next) {
        if (!strcmp(m->string, "url")) {
            if (!cJSON_IsString(m) || strlen(m->valuestring) > URL_MAX ||
                !cz_json_clean_text(m->valuestring) || strpbrk(m->valuestring, " \t\r\n")) {
                snprintf(detail, sizeof detail, "url must be an http(s) URL of at most %d bytes",
                         URL_MAX);
                *res = cz_http_problem(r, 422, "invalid-field", detail, "url");
                return -1;
            }
            b->url = m->valuestring;
        } else if (!strcmp(m->string, "description")) {
            if (!cJSON_IsString(m) || strlen(m->valuestring) > DESCRIPTION_MAX ||
                !cz_json_clean_text(m->valuestring)) {
                snprintf(detail, sizeof detail, "description must be text of at most %d bytes",
                         DESCRIPTION_MAX);
                *res = cz_http_problem(r, 422, "invalid-field", detail, "description");
                return -1;
            }
            b->description = m->valuestring;
        } else if (!strcmp(m->string, "events")) {
            /* Canonical order (the list's), each at most once. */
            const char *const *all = cz_webhook_events();
            bool want[16] = {false};
            int n = 0;
            const cJSON *e;
            bool ok = cJSON_IsArray(m) && cJSON_GetArraySize(m) > 0;
            cJSON_ArrayForEach(e, m) {
                int k = 0;
                while (ok && all[k] && !(cJSON_IsString(e) && !strcmp(e->valuestring, all[k])))
                    k++;
                ok = ok && all[k];
                if (ok)
                    want[k] = true;
            }
            if (!ok) {
                *res = cz_http_problem(r, 422, "invalid-field",
                                       "events must be a non-empty array of job.succeeded, "
                                       "job.failed, job.canceled, job.in_review, job.rejected, "
                                       "job.started, job.progress",
                                       "events");
                return -1;
            }
            size_t len = (size_t)snprintf(b->events, sizeof b->events, "{");
            for (int k = 0; all[k]; k++)
                if (want[k])
                    len += (size_t)snprintf(b->events + len, sizeof b->events - len, "%s%s",
                                            n++ ? "," : "", all[k]);
            snprintf(b->events + len, sizeof b->events - len, "}");
        } else {
            snprintf(detail, sizeof detail, "unknown field %.40s", m->string);
            *res = cz_http_problem(r, 422, "unknown-field", detail, m->string);
            return -1;
        }
    }
    if (!b->url) {
        *res = cz_http_problem(r, 422, "missing-field", "url is required", "url");
        return -1;
    }
    char why[CZ_NETGUARD_WHY];
    if (cz_netguard_check_url(&api->guard, b->url, why, sizeof why)) {
        snprintf(detail, sizeof detail, "url %s", why);
        *res = cz_http_problem(r, 422, "invalid-field", detail, "url");
        return -1;
    }
    return 0;
}

enum MHD_Result cz_api_webhooks_endpoint_create(cz_api *api, cz_http_req *r,
                                                const char *id_unused) {
    (void)id_unused;
    /* A body is required; read_endpoint names the unknown fields itself. */
    static const cz_http_body how = {"the endpoint", false, NULL};
    enum MHD_Result res;
    cJSON *root = cz_http_read_object(r, &how, &res);
    if (!root)
        return res;
    endpoint_body b;
    if (read_endpoint(api, r, root, &b, &res) == 0) {
        char id[CZ_UUID_LEN], secret[CZ_WEBHOOK_SECRET_MAX];
        cz_uuid7(id);
        cz_webhook_secret_new(secret);
        cz_webhook_endpoint_new e = {id, r->key.tenant, b.url, b.description, b.events, secret};
        cz_err err;
        PGconn *c = cz_db_pool_get(api->db);
        char *json = cz_db_webhook_endpoint_create(c, &e, &err);
        cz_db_pool_put(api->db, c);
        if (!json && !err.msg[0]) {
            char detail[96];
            snprintf(detail, sizeof detail,
                     "a tenant may have %d enabled endpoints; disable one first",
                     CZ_WEBHOOK_ENDPOINTS_MAX);
            res = cz_http_problem(r, 409, "endpoint-limit", detail, NULL);
        } else {
            if (json)
                cz_log_info("webhook endpoint %s created for tenant %s", id, r->key.tenant);
            res = answer(r, 201, json, &err, "endpoint");
        }
    }
    cJSON_Delete(root);
    return res;
}

/* ---- the routes (api/server.c admits the key and its role first) ----------------- */

enum MHD_Result cz_api_webhooks_endpoint_list(cz_api *api, cz_http_req *r, const char *unused) {
    (void)unused;
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    char *json = cz_db_webhook_endpoint_list(c, r->key.tenant, &err);
    cz_db_pool_put(api->db, c);
    return answer(r, 200, json, &err, "endpoint");
}

enum MHD_Result cz_api_webhooks_endpoint_get(cz_api *api, cz_http_req *r, const char *id) {
    if (!cz_uuid_valid(id))
        return not_found(r, "endpoint");
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    char *json = cz_db_webhook_endpoint_get(c, r->key.tenant, id, &err);
    cz_db_pool_put(api->db, c);
    return answer(r, 200, json, &err, "endpoint");
}

enum MHD_Result cz_api_webhooks_endpoint_rotate(cz_api *api, cz_http_req *r, const char *id) {
    if (!cz_uuid_valid(id))
        return not_found(r, "endpoint");
    char secret[CZ_WEBHOOK_SECRET_MAX];
    cz_webhook_secret_new(secret);
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    char *json = cz_db_webhook_endpoint_rotate(c, r->key.tenant, id, secret,
                                               api->cfg->webhook_rotation_s, &err);
    cz_db_pool_put(api->db, c);
    if (json)
        cz_log_info("webhook endpoint %s: secret rotated by tenant %s", id, r->key.tenant);
    return answer(r, 200, json, &err, "endpoint");
}

static enum MHD_Result endpoint_enable(cz_api *api, cz_http_req *r, const char *id, bool on) {
    if (!cz_uuid_valid(id))
        return not_found(r, "endpoint");
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    char *json = cz_db_webhook_endpoint_enable(c, r->key.tenant, id, on, &err);
    cz_db_pool_put(api->db, c);
    if (json)
        cz_log_info("webhook endpoint %s: %s by tenant %s", id, on ? "enabled" : "disabled",
                    r->key.tenant);
    return answer(r, 200, json, &err, "endpoint");
}

enum MHD_Result cz_api_webhooks_endpoint_enable(cz_api *api, cz_http_req *r, const char *id) {
    return endpoint_enable(api, r, id, true);
}

enum MHD_Result cz_api_webhooks_endpoint_disable(cz_api *api, cz_http_req *r, const char *id) {
    return endpoint_enable(api, r, id, false);
}

static enum MHD_Result secret(cz_api *api, cz_http_req *r, bool rotate) {
    char secret[CZ_WEBHOOK_SECRET_MAX];
    cz_webhook_secret_new(secret);
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    char *json = rotate ? cz_db_webhook_secret_rotate(c, r->key.tenant, secret,
                                                      api->cfg->webhook_rotation_s, &err)
                        : cz_db_webhook_secret_get(c, r->key.tenant, secret, &err);
    cz_db_pool_put(api->db, c);
    if (!json && !err.msg[0])
        cz_err_set(&err, "the secret statement returned no row");
    if (json && rotate)
        cz_log_info("default webhook secret rotated by tenant %s", r->key.tenant);
    return answer(r, 200, json, &err, "secret");
}

enum MHD_Result cz_api_webhooks_secret_get(cz_api *api, cz_http_req *r, const char *unused) {
    (void)unused;
    return secret(api, r, false);
}

enum MHD_Result cz_api_webhooks_secret_rotate(cz_api *api, cz_http_req *r, const char *unused) {
    (void)unused;
    return secret(api, r, true);
}

enum MHD_Result cz_api_webhooks_deliveries_list(cz_api *api, cz_http_req *r, const char *job_id) {
    if (!cz_uuid_valid(job_id))
        return not_found(r, "job");
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    char *json = cz_db_webhook_deliveries(c, r->key.tenant, job_id, &err);
    cz_db_pool_put(api->db, c);
    return answer(r, 200, json, &err, "job");
}

enum MHD_Result cz_api_webhooks_redeliver(cz_api *api, cz_http_req *r, const char *id) {
    if (!cz_uuid_valid(id))
        return not_found(r, "delivery");
    cz_err err;
    char *json = NULL;
    PGconn *c = cz_db_pool_get(api->db);
    int rc = cz_db_webhook_redeliver(c, r->key.tenant, id, &json, &err);
    cz_db_pool_put(api->db, c);
    if (rc < 0)
        return cz_http_unavailable(r, "redeliver", &err, STORE_DOWN);
    if (rc == CZ_REDELIVER_NOT_FOUND)
        return not_found(r, "delivery");
    if (rc == CZ_REDELIVER_DISABLED)
        return cz_http_problem(r, 409, "endpoint-disabled",
                               "the delivery's endpoint is disabled; enable it, then redeliver",
                               NULL);
    cz_log_info("webhook %s redelivered by tenant %s", id, r->key.tenant);
    cz_err_clear(&err);
    return answer(r, 202, json, &err, "delivery");
}
