/* Routing a submission to a model version: see routing.h. */
#include "api/routing.h"

#include <openssl/sha.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/json.h"

/* The most versions of one name a bare name is routed among. */
#define ROUTED_MAX 64

static int refuse(cz_request_error *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int refuse(cz_request_error *e, const char *field, const char *fmt, ...) {
    e->status = 422;
    e->type = "invalid-field";
    snprintf(e->field, sizeof e->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
    return -1;
}

int cz_routing_bucket(const char *tenant, const char *user, const char *name) {
    cz_buf b = {0};
    cz_buf_append(&b, tenant, strlen(tenant) + 1); /* with its NUL */
    cz_buf_append(&b, user, strlen(user) + 1);
    cz_buf_append(&b, name, strlen(name));
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)b.data, b.len, d);
    cz_buf_free(&b);
    uint64_t x = 0;
    for (int i = 0; i < 8; i++)
        x = x << 8 | d[i];
    return (int)(x % 100);
}

static bool is_active(const cz_model *m) {
    return !strcmp(m->status, "active");
}

/* "composer, composer@1, neural, neural@1, ...": what may be asked for,
 * in the rows' order (by name, then version). */
static void askable(const cz_model *rows, int n, char *out, size_t cap) {
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (!is_active(&rows[i]))
            continue;
        bool first_of_name = true, routed = false;
        for (int k = 0; k < n; k++) {
            if (strcmp(rows[k].name, rows[i].name) || !is_active(&rows[k]))
                continue;
            first_of_name &= k >= i;
            routed |= rows[k].weight > 0;
        }
        size_t at = strlen(out);
        if (first_of_name && routed)
            snprintf(out + at, cap - at, "%s%s", at ? ", " : "", rows[i].name), at = strlen(out);
        snprintf(out + at, cap - at, "%s%s@%s", at ? ", " : "", rows[i].name, rows[i].version);
    }
}

static int by_version(const void *a, const void *b) {
    return strcmp((*(const cz_model *const *)a)->version, (*(const cz_model *const *)b)->version);
}

const cz_model *cz_routing_resolve(const cz_model *rows, int n, const char *tenant,
                                   const char *user, const char *model, cz_request_error *e) {
    memset(e, 0, sizeof *e);
    char name[CZ_MODEL_NAME_MAX] = "", list[200];
    const char *at = strchr(model, '@'), *version = at ? at + 1 : NULL;
    size_t len = at ? (size_t)(at - model) : strlen(model);
    if (len < sizeof name)
        memcpy(name, model, len), name[len] = '\0';

    const cz_model *routed[ROUTED_MAX];
    int n_routed = 0, total = 0;
    bool known_name = false;
    for (int i = 0; i < n; i++) {
        const cz_model *m = &rows[i];
        if (strcmp(m->name, name))
            continue;
        known_name = true;
        if (version && !strcmp(m->version, version)) {
            if (is_active(m))
                return m;
            askable(rows, n, list, sizeof list);
            refuse(e, "model", "model %s is %s: it cannot be asked for; ask for one of: %s", model,
                   !strcmp(m->status, "shadow") ? "a shadow version (measured, never served)"
                                                : "retired",
                   list);
            return NULL;
        }
        if (!version && is_active(m) && m->weight > 0 && n_routed < ROUTED_MAX) {
            routed[n_routed++] = m;
            total += m->weight;
        }
    }
    if (n_routed == 0) {
        askable(rows, n, list, sizeof list);
        if (known_name && !version)
            refuse(e, "model", "model %s has no version taking traffic; ask for one of: %s", model,
                   list);
        else
            refuse(e, "model", "model %s does not exist; ask for one of: %s", model, list);
        return NULL;
    }
    qsort(routed, (size_t)n_routed, sizeof *routed, by_version);
    /* Weights sum to 100 (common/db/models.c keeps it so); should a row
     * written by hand break that, buckets are spread over what there is. */
    int bucket = cz_routing_bucket(tenant, user ? user : "", name) * total / 100;
    for (int i = 0, upto = 0; i < n_routed; i++) {
        upto += routed[i]->weight;
        if (bucket < upto)
            return routed[i];
    }
    return routed[n_routed - 1];
}

int cz_routing_check_limits(const cz_model *m, const cJSON *req, cz_request_error *e) {
    double duration = cz_json_num(req, "duration_s", 0);
    if (duration > m->max_duration_s)
        return refuse(e, "duration_s",
                      "duration_s must be at most %g for %s@%s (its max_duration_s)",
                      m->max_duration_s, m->name, m->version);
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stems")) && !m->stems)
        return refuse(e, "stems",
                      "%s@%s makes no stems: it returns the mix alone; ask without stems, or for "
                      "a model that makes them (GET /v1/models)",
                      m->name, m->version);
    if (cJSON_HasObjectItem(req, "parameters") && !m->takes_parameters)
        return refuse(e, "parameters",
                      "%s@%s takes no parameters; parameters are for models whose server "
                      "declares them, such as http@2 (docs/http2.md)",
                      m->name, m->version);
    return 0;
}
