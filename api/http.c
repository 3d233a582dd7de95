/* HTTP responses and authentication: see http.h. */
#include "http.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"

enum MHD_Result cz_http_send(cz_http_req *r, unsigned status, const char *content_type,
                             const char *body, size_t len) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"cadenza\"");
    enum MHD_Result rc = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
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
    char *body = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    enum MHD_Result rc =
        body ? cz_http_send(r, status, "application/problem+json", body, strlen(body)) : MHD_NO;
    free(body);
    return rc;
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
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    int found = cz_db_key_lookup(c, key, r->tenant, r->role, &err);
    cz_db_pool_put(api->db, c);
    if (found < 0) {
        cz_log_error("authentication: %s", err.msg);
        *result =
            cz_http_problem(r, 503, "unavailable", "the key store is unavailable; retry", NULL);
        return -1;
    }
    if (!found) {
        *result = cz_http_problem(r, 401, "unauthorized", "the API key is not valid", NULL);
        return -1;
    }
    return 0;
}

bool cz_http_role_in(const cz_http_req *r, const char *const *roles) {
    for (int i = 0; roles[i]; i++)
        if (!strcmp(r->role, roles[i]))
            return true;
    return false;
}
