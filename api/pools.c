/* The /v1/pools endpoints: see pools.h.
 *
 * A PUT body names only what changes: any of min, max, desired,
 * target_lag_per_replica, cooldown_s, autoscale, and an optional reason.
 * The checks that need the stored row (min <= desired <= max) are made by
 * cz_db_pool_update under the row's lock; the shape of each field is
 * checked here first. */
#include "api/pools.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/db/pools.h"
#include "common/json.h"
#include "common/log.h"

/* The answer when Postgres does not answer (cz_http_unavailable). */
#define STORE_DOWN "the pool store is unavailable; nothing was changed, retry later"

enum MHD_Result cz_api_pools_list(cz_api *api, cz_http_req *r, const char *unused) {
    (void)unused;
    cz_err err;
    char *json = NULL;
    PGconn *c = cz_db_pool_get(api->db);
    int rc = cz_db_pools_json(c, NULL, &json, &err);
    cz_db_pool_put(api->db, c);
    if (rc)
        return cz_http_unavailable(r, "pool store", &err, STORE_DOWN);
    enum MHD_Result res = cz_http_json(r, 200, json);
    free(json);
    return res;
}

/* Reads integer field @p name within [lo, hi] into *@p out when present.
 * @returns 0 (present or not), -1 when present and wrong. */
static int int_field(const cJSON *body, const char *name, int lo, int hi, bool *has, int *out,
                     char *detail, size_t n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(body, name);
    if (!v)
        return 0;
    if (!cJSON_IsNumber(v) || !cz_json_is_integer(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi) {
        snprintf(detail, n, "%s must be an integer from %d to %d", name, lo, hi);
        return -1;
    }
    *has = true;
    *out = (int)v->valuedouble;
    return 0;
}

/* Fills @p ch and @p reason from @p body. @returns NULL, or the field at fault. */
static const char *parse_change(const cJSON *body, cz_pool_change *ch, const char **reason,
                                char *detail, size_t n) {
    static const char *const known[] = {
        "min",        "max",       "desired", "target_lag_per_replica",
        "cooldown_s", "autoscale", "reason",  NULL};
    for (const cJSON *m = body->child; m; m = m->next) {
        bool ok = false;
        for (int i = 0; known[i] && !ok; i++)
            ok = !strcmp(m->string, known[i]);
        if (!ok) {
            snprintf(detail, n, "a pool has no field \"%.40s\"", m->string);
            return m->string;
        }
    }
    if (int_field(body, "min", 0, 64, &ch->has_min, &ch->min, detail, n))
        return "min";
    if (int_field(body, "max", 1, 64, &ch->has_max, &ch->max, detail, n))
        return "max";
    if (int_field(body, "desired", 0, 64, &ch->has_desired, &ch->desired, detail, n))
        return "desired";
    if (int_field(body, "target_lag_per_replica", 1, 1000000, &ch->has_target_lag, &ch->target_lag,
                  detail, n))
        return "target_lag_per_replica";
    if (int_field(body, "cooldown_s", 0, 86400, &ch->has_cooldown, &ch->cooldown_s, detail, n))
        return "cooldown_s";
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(body, "autoscale");
    if (a) {
        if (!cJSON_IsBool(a)) {
            snprintf(detail, n, "autoscale must be true or false");
            return "autoscale";
        }
        ch->has_autoscale = true;
        ch->autoscale = cJSON_IsTrue(a);
    }
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(body, "reason");
    if (why) {
        size_t chars = 0;
        for (const char *s = cJSON_IsString(why) ? why->valuestring : ""; *s; s++)
            chars += ((unsigned char)*s & 0xC0) != 0x80;
        if (!cJSON_IsString(why) || chars > 500) {
            snprintf(detail, n, "reason must be a string of at most 500 characters");
            return "reason";
        }
        *reason = why->valuestring;
    }
    return NULL;
}

enum MHD_Result cz_api_pools_update(cz_api *api, cz_http_req *r, const char *name) {
    /* A body is required; parse_change names the unknown fields itself. */
    static const cz_http_body how = {"the change", false, NULL};
    enum MHD_Result res;
    cJSON *body = cz_http_read_object(r, &how, &res);
    if (!body)
        return res;
    cz_pool_change ch = {0};
    const char *reason = "changed through the API";
    char detail[200], field[64];
    const char *bad = parse_change(body, &ch, &reason, detail, sizeof detail);
    if (bad) {
        snprintf(field, sizeof field, "%.60s", bad);
        bool unknown = strstr(detail, "has no field") != NULL;
        cJSON_Delete(body);
        return cz_http_problem(r, 422, unknown ? "unknown-field" : "invalid-field", detail, field);
    }
    char actor[160];
    snprintf(actor, sizeof actor, "key:%lld (%s, %s)", r->key.id, r->key.tenant, r->key.role);
    cz_err err;
    char *json = NULL, badfield[32];
    PGconn *c = cz_db_pool_get(api->db);
    int rc = cz_db_pool_update(c, name, &ch, actor, reason, &json, badfield, &err);
    cz_db_pool_put(api->db, c);
    cJSON_Delete(body);
    if (rc == 1)
        return cz_http_problem(r, 404, "not-found", "no such pool", NULL);
    if (rc == 2)
        return cz_http_problem(r, 422, "invalid-field", err.msg, badfield);
    if (rc < 0)
        return cz_http_unavailable(r, "pool store", &err, STORE_DOWN);
    cz_log_info("pool %s changed by %s: %s", name, actor, json);
    res = cz_http_json(r, 200, json);
    free(json);
    return res;
}
