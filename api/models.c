/* The /v1/models endpoints: see models.h.
 *
 * Reads come from Postgres (common/db/models.c builds the JSON). A change
 * is checked for its shape here, then applied by common/db/models.c under
 * the name's row locks, where the rules that need the stored rows are
 * checked (weights of active versions sum to 100, a version with traffic
 * is not retired). After a change this process's registry snapshot is
 * read again at once, so its next submission routes with it.
 *
 * Only what changes behaviour today is accepted: the split, a version's
 * status (active or retired), its max_duration_s and its description.
 * Pool, price, tier, backend and stems are shown but refused, as is the
 * status shadow (docs/models/registry.md, "Not yet"). */
#include "api/models.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/registry.h"
#include "api/request.h"
#include "common/db/models.h"
#include "common/json.h"
#include "common/log.h"

/* The answer when Postgres does not answer (cz_http_unavailable). */
#define STORE_DOWN "the model registry is unavailable; nothing was changed, retry later"
#define READ_DOWN "the model registry is unavailable; retry later"
#define REASON_MAX 500
#define DESCRIPTION_MAX 500
#define DURATION_MAX 600 /* the request's own limit (api/request.c) */

static bool operator_key(const cz_http_req *r) {
    return (cz_role_bit(r->key.role) & (CZ_ROLE_OPERATOR | CZ_ROLE_ADMIN)) != 0;
}

static size_t chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

/* ---- reading --------------------------------------------------------------- */

/* ?all=true|false; true only for operator and admin keys. @returns 0, or -1
 * with the problem queued in @p res. */
static int all_param(cz_http_req *r, bool *all, enum MHD_Result *res) {
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "all");
    *all = v && !strcmp(v, "true");
    if (v && !*all && strcmp(v, "false")) {
        *res = cz_http_problem(r, 422, "invalid-field", "all must be true or false", "all");
        return -1;
    }
    if (*all && !operator_key(r)) {
        *res = cz_http_problem(r, 403, "forbidden",
                               "only operator and admin keys see shadow and retired versions "
                               "(all=true); leave all out for the models you may ask for",
                               NULL);
        return -1;
    }
    return 0;
}

static enum MHD_Result show(cz_api *api, cz_http_req *r, const char *name) {
    enum MHD_Result res;
    bool all;
    if (all_param(r, &all, &res))
        return res;
    cz_err err;
    char *json = NULL;
    PGconn *c = cz_db_pool_get(api->db);
    int rc = cz_db_models_json(c, name, all, operator_key(r), &json, &err);
    cz_db_pool_put(api->db, c);
    if (rc < 0)
        return cz_http_unavailable(r, "model registry", &err, READ_DOWN);
    if (rc == 1)
        return cz_http_problem(r, 404, "not-found", "no such model", NULL);
    res = cz_http_json(r, 200, json);
    free(json);
    return res;
}

enum MHD_Result cz_api_models_list(cz_api *api, cz_http_req *r, const char *unused) {
    (void)unused;
    return show(api, r, NULL);
}

enum MHD_Result cz_api_models_get(cz_api *api, cz_http_req *r, const char *name) {
    if (!cz_request_model_name_valid(name))
        return cz_http_problem(r, 404, "not-found", "no such model", NULL);
    return show(api, r, name);
}

/* ---- changes --------------------------------------------------------------- */

/* What was wrong with a change: the field and why; unknown for a field the
 * API does not know (422 unknown-field), else invalid-field. */
typedef struct fault {
    char field[64];
    char detail[256];
    bool unknown;
} fault;

static int bad(fault *f, bool unknown, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int bad(fault *f, bool unknown, const char *field, const char *fmt, ...) {
    f->unknown = unknown;
    snprintf(f->field, sizeof f->field, "%.60s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->detail, sizeof f->detail, fmt, ap);
    va_end(ap);
    return -1;
}

/* The optional "reason": at most 500 characters of text. */
static int reason_of(const cJSON *body, const char **reason, fault *f) {
    const cJSON *why = cJSON_GetObjectItemCaseSensitive(body, "reason");
    if (!why)
        return 0;
    if (!cJSON_IsString(why) || !cz_json_clean_text(why->valuestring) ||
        chars(why->valuestring) > REASON_MAX)
        return bad(f, false, "reason", "reason must be text of at most %d characters", REASON_MAX);
    *reason = why->valuestring;
    return 0;
}

/* "split": {"neural@1": 90, "neural@2": 10}: versions of @p name, integer
 * weights 0..100 summing to 100. */
static int parse_split(const cJSON *split, const char *name, cz_model_change *ch, fault *f) {
    int n = cJSON_IsObject(split) ? cJSON_GetArraySize(split) : 0;
    if (n < 1 || n > CZ_MODEL_VERSIONS_MAX)
        return bad(f, false, "split",
                   "split must be an object of 1 to %d versions and their weights, e.g. "
                   "{\"%s@1\": 90, \"%s@2\": 10}",
                   CZ_MODEL_VERSIONS_MAX, name, name);
    size_t prefix = strlen(name);
    int sum = 0;
    for (const cJSON *e = split->child; e; e = e->next) {
        char field[64];
        snprintf(field, sizeof field, "split.%.50s", e->string);
        const char *version = e->string + prefix + 1;
        if (strncmp(e->string, name, prefix) || e->string[prefix] != '@' ||
            !cz_request_model_version_valid(version))
            return bad(f, false, field, "split names versions of %s only, as %s@VERSION", name,
                       name);
        if (!cJSON_IsNumber(e) || !cz_json_is_integer(e->valuedouble) || e->valuedouble < 0 ||
            e->valuedouble > 100)
            return bad(f, false, field, "a weight is a whole number from 0 to 100");
        snprintf(ch->split[ch->n_split].version, sizeof ch->split[0].version, "%s", version);
        ch->split[ch->n_split++].weight = e->valueint;
        sum += e->valueint;
    }
    if (sum != 100)
        return bad(f, false, "split", "split's weights must sum to 100, not %d", sum);
    return 0;
}

/* One version's settings: {"status", "max_duration_s", "description"}. */
static int parse_setting(const cJSON *v, cz_model_setting *s, fault *f) {
    char base[64], field[96];
    snprintf(base, sizeof base, "versions.%.40s", v->string);
    if (!cz_request_model_version_valid(v->string))
        return bad(f, false, base, "%.40s is not a version (^[0-9a-z][0-9a-z.-]{0,15}$)",
                   v->string);
    snprintf(s->version, sizeof s->version, "%s", v->string);
    if (!cJSON_IsObject(v) || !v->child)
        return bad(f, false, base,
                   "a version's change is an object naming any of status, max_duration_s and "
                   "description");
    /* Shown by GET, but what they would change comes in later steps. */
    static const char *const not_yet[] = {"pool", "price_per_compute_s", "tier", "backend", "stems",
                                          NULL};
    for (const cJSON *m = v->child; m; m = m->next) {
        snprintf(field, sizeof field, "%s.%.30s", base, m->string);
        bool later = false;
        for (int i = 0; not_yet[i]; i++)
            later |= !strcmp(m->string, not_yet[i]);
        if (later)
            return bad(f, false, field,
                       "%s is shown but cannot be changed yet (docs/models/registry.md, \"Not "
                       "yet\")",
                       m->string);
        if (!strcmp(m->string, "weight"))
            return bad(f, false, field, "weights are changed with split (or promote)");
        if (!strcmp(m->string, "status")) {
            const char *st = cJSON_IsString(m) ? m->valuestring : "";
            if (!strcmp(st, "shadow"))
                return bad(f, false, field,
                           "status shadow is not accepted yet (docs/models/registry.md, \"Not "
                           "yet\"): a version is active or retired");
            if (strcmp(st, "active") && strcmp(st, "retired"))
                return bad(f, false, field, "status must be active or retired");
            s->status = st;
        } else if (!strcmp(m->string, "max_duration_s")) {
            if (!cJSON_IsNumber(m) || !isfinite(m->valuedouble) || m->valuedouble < 1 ||
                m->valuedouble > DURATION_MAX)
                return bad(f, false, field, "max_duration_s must be a number from 1 to %d",
                           DURATION_MAX);
            s->max_duration_s = m->valuedouble;
        } else if (!strcmp(m->string, "description")) {
            if (!cJSON_IsString(m) || !cz_json_clean_text(m->valuestring) ||
                chars(m->valuestring) > DESCRIPTION_MAX)
                return bad(f, false, field,
                           "description must be text of at most %d characters (\"\" removes it)",
                           DESCRIPTION_MAX);
            s->description = m->valuestring;
        } else {
            return bad(f, true, field, "a version's change has no field \"%.40s\"", m->string);
        }
    }
    return 0;
}

/* Fills @p ch and @p reason from a PUT body. @returns 0, or -1 with @p f. */
static int parse_change(const cJSON *body, const char *name, cz_model_change *ch,
                        const char **reason, fault *f) {
    for (const cJSON *m = body->child; m; m = m->next)
        if (strcmp(m->string, "split") && strcmp(m->string, "versions") &&
            strcmp(m->string, "reason"))
            return bad(f, true, m->string,
                       "a model change has no field \"%.40s\": it names split, versions and a "
                       "reason",
                       m->string);
    const cJSON *split = cJSON_GetObjectItemCaseSensitive(body, "split");
    const cJSON *versions = cJSON_GetObjectItemCaseSensitive(body, "versions");
    if (!split && !versions)
        return bad(f, false, "", "name what changes: split, versions, or both");
    if (split && parse_split(split, name, ch, f))
        return -1;
    if (versions) {
        int n = cJSON_IsObject(versions) ? cJSON_GetArraySize(versions) : 0;
        if (n < 1 || n > CZ_MODEL_VERSIONS_MAX)
            return bad(f, false, "versions",
                       "versions must be an object of 1 to %d versions and their changes, e.g. "
                       "{\"2\": {\"status\": \"retired\"}}",
                       CZ_MODEL_VERSIONS_MAX);
        for (const cJSON *v = versions->child; v; v = v->next)
            if (parse_setting(v, &ch->settings[ch->n_settings++], f))
                return -1;
    }
    return reason_of(body, reason, f);
}

static void actor_of(const cz_http_req *r, char *actor, size_t n) {
    snprintf(actor, n, "key:%lld (%s, %s)", r->key.id, r->key.tenant, r->key.role);
}

/* The answer for what common/db/models.c did with a change. */
static enum MHD_Result answer(cz_api *api, cz_http_req *r, PGconn *c, const char *name,
                              const char *what, int rc, char *json, const char *field,
                              const cz_err *err) {
    enum MHD_Result res;
    if (rc == 0) {
        cz_err rerr;
        if (cz_registry_reload(api->models, c, &rerr))
            cz_log_warn("model %s changed, but the registry was not read again (%s): this "
                        "process routes with it within CADENZA_API_MODELS_CACHE_MS",
                        name, rerr.msg);
    }
    cz_db_pool_put(api->db, c);
    if (rc == 1)
        return cz_http_problem(r, 404, "not-found", "no such model", NULL);
    if (rc == 2)
        return cz_http_problem(r, 422, "invalid-field", err->msg, field);
    if (rc == 3)
        return cz_http_problem(r, 409, "no-rollback", err->msg, NULL);
    if (rc < 0)
        return cz_http_unavailable(r, "model registry", err, STORE_DOWN);
    char actor[160];
    actor_of(r, actor, sizeof actor);
    cz_log_info("model %s: %s by %s: %s", name, what, actor, json);
    res = cz_http_json(r, 200, json);
    free(json);
    return res;
}

enum MHD_Result cz_api_models_update(cz_api *api, cz_http_req *r, const char *name) {
    static const cz_http_body how = {"the change", false, NULL};
    enum MHD_Result res;
    cJSON *body = cz_http_read_object(r, &how, &res);
    if (!body)
        return res;
    cz_model_change ch = {0};
    const char *reason = "changed through the API";
    fault f = {0};
    if (parse_change(body, name, &ch, &reason, &f)) {
        cJSON_Delete(body);
        return cz_http_problem(r, 422, f.unknown ? "unknown-field" : "invalid-field", f.detail,
                               f.field[0] ? f.field : NULL);
    }
    if (!cz_request_model_name_valid(name)) {
        cJSON_Delete(body);
        return cz_http_problem(r, 404, "not-found", "no such model", NULL);
    }
    char *settings =
        ch.n_settings ? cz_json_print(cJSON_GetObjectItemCaseSensitive(body, "versions")) : NULL;
    ch.settings_json = settings;
    char actor[160], field[64];
    actor_of(r, actor, sizeof actor);
    cz_err err;
    char *json = NULL;
    PGconn *c = cz_db_pool_get(api->db);
    int rc = cz_db_model_update(c, name, &ch, actor, reason, &json, field, &err);
    res = answer(api, r, c, name, "changed", rc, json, field, &err);
    free(settings);
    cJSON_Delete(body);
    return res;
}

enum MHD_Result cz_api_models_promote(cz_api *api, cz_http_req *r, const char *name) {
    static const char *const allowed[] = {"version", "reason", NULL};
    static const cz_http_body how = {"the promotion", false, allowed};
    enum MHD_Result res;
    cJSON *body = cz_http_read_object(r, &how, &res);
    if (!body)
        return res;
    const char *version = cz_json_str(body, "version"), *reason = "promoted through the API";
    fault f = {0};
    if (!version || !cz_request_model_version_valid(version))
        bad(&f, false, "version", "version must be the version to promote, e.g. \"2\"");
    else
        reason_of(body, &reason, &f);
    if (f.detail[0] || !cz_request_model_name_valid(name)) {
        cJSON_Delete(body);
        return f.detail[0] ? cz_http_problem(r, 422, "invalid-field", f.detail, f.field)
                           : cz_http_problem(r, 404, "not-found", "no such model", NULL);
    }
    char actor[160], field[64];
    actor_of(r, actor, sizeof actor);
    cz_err err;
    char *json = NULL;
    PGconn *c = cz_db_pool_get(api->db);
    int rc = cz_db_model_promote(c, name, version, actor, reason, &json, field, &err);
    res = answer(api, r, c, name, "promoted", rc, json, field, &err);
    cJSON_Delete(body);
    return res;
}

enum MHD_Result cz_api_models_rollback(cz_api *api, cz_http_req *r, const char *name) {
    static const char *const allowed[] = {"reason", NULL};
    static const cz_http_body how = {"the rollback", true, allowed};
    enum MHD_Result res;
    cJSON *body = cz_http_read_object(r, &how, &res);
    if (!body)
        return res;
    const char *reason = "rolled back through the API";
    fault f = {0};
    reason_of(body, &reason, &f);
    if (f.detail[0] || !cz_request_model_name_valid(name)) {
        cJSON_Delete(body);
        return f.detail[0] ? cz_http_problem(r, 422, "invalid-field", f.detail, f.field)
                           : cz_http_problem(r, 404, "not-found", "no such model", NULL);
    }
    char actor[160];
    actor_of(r, actor, sizeof actor);
    cz_err err;
    char *json = NULL;
    PGconn *c = cz_db_pool_get(api->db);
    int rc = cz_db_model_rollback(c, name, actor, reason, &json, &err);
    res = answer(api, r, c, name, "rolled back", rc, json, NULL, &err);
    cJSON_Delete(body);
    return res;
}
