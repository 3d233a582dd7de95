/* SQL for the model registry: see models.h.
 *
 * Every change of a name (an operator's settings or split, a promote, a
 * rollback) takes the same path: read the name's versions FOR UPDATE, work
 * out the new statuses and weights here (so a broken rule gets a message
 * naming the field rather than a constraint's name), check the rules, then
 * write the rows that changed and the decision row, with the split before
 * and after, in the same transaction. Splits are JSON objects of the
 * active versions that take traffic, {"neural@1": 90, "neural@2": 10}. */
#include "common/db/models.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/db/db.h"
#include "common/mem.h"

/* One version as the API shows it; $3 says whether to show who changed it. */
#define VERSION_JSON                                                                               \
    "(jsonb_build_object('object', 'model_version', 'id', name || '@' || version, 'version',"      \
    " version, 'backend', backend, 'tier', tier, 'status', status, 'weight', weight, 'pool', "     \
    "pool,"                                                                                        \
    " 'price_per_compute_s', price_per_compute_s, 'limits', jsonb_build_object('max_duration_s',"  \
    " max_duration_s, 'stems', stems, 'parameters', takes_parameters), 'description', "            \
    "description)"                                                                                 \
    " || CASE WHEN $3::bool THEN jsonb_build_object('updated_at', cz_ts(updated_at),"              \
    " 'updated_by', updated_by) ELSE '{}'::jsonb END)"

int cz_db_models_load(PGconn *c, cz_model **out, cz_err *err) {
    *out = NULL;
    PGresult *r = cz_db_query(
        c,
        "SELECT name, version, backend, tier, status, pool, weight,"
        " price_per_compute_s::float8, max_duration_s, stems, takes_parameters FROM models"
        " ORDER BY name COLLATE \"C\", version COLLATE \"C\"",
        0, NULL, err);
    if (!r)
        return -1;
    int n = PQntuples(r);
    cz_model *m = n ? cz_calloc((size_t)n, sizeof *m) : NULL;
    for (int i = 0; i < n; i++) {
        snprintf(m[i].name, sizeof m[i].name, "%s", PQgetvalue(r, i, 0));
        snprintf(m[i].version, sizeof m[i].version, "%s", PQgetvalue(r, i, 1));
        snprintf(m[i].backend, sizeof m[i].backend, "%s", PQgetvalue(r, i, 2));
        snprintf(m[i].tier, sizeof m[i].tier, "%s", PQgetvalue(r, i, 3));
        snprintf(m[i].status, sizeof m[i].status, "%s", PQgetvalue(r, i, 4));
        snprintf(m[i].pool, sizeof m[i].pool, "%s", PQgetvalue(r, i, 5));
        m[i].weight = atoi(PQgetvalue(r, i, 6));
        m[i].price_per_compute_s = atof(PQgetvalue(r, i, 7));
        m[i].max_duration_s = atof(PQgetvalue(r, i, 8));
        m[i].stems = PQgetvalue(r, i, 9)[0] == 't';
        m[i].takes_parameters = PQgetvalue(r, i, 10)[0] == 't';
    }
    PQclear(r);
    *out = m;
    return n;
}

int cz_db_models_json(PGconn *c, const char *name, bool all, bool operator_view, char **json,
                      cz_err *err) {
    const char *p[] = {name, all ? "true" : "false", operator_view ? "true" : "false"};
    PGresult *r = cz_db_query(
        c,
        "WITH m AS ("
        "  SELECT name, jsonb_build_object('object', 'model', 'name', name, 'split',"
        "    coalesce(jsonb_object_agg(name || '@' || version, weight)"
        "      FILTER (WHERE status = 'active' AND weight > 0), '{}'::jsonb),"
        "    'versions', jsonb_agg(" VERSION_JSON " ORDER BY version COLLATE \"C\")) AS o"
        "  FROM models WHERE ($1::text IS NULL OR name = $1) AND ($2::bool OR status = 'active')"
        "  GROUP BY name"
        ")"
        "SELECT CASE WHEN $1::text IS NULL THEN jsonb_build_object('object', 'list', 'data',"
        "  coalesce((SELECT jsonb_agg(o ORDER BY name COLLATE \"C\") FROM m), '[]'::jsonb))::text"
        "  ELSE (SELECT o::text FROM m) END",
        3, p, err);
    if (!r)
        return -1;
    if (PQntuples(r) != 1 || PQgetisnull(r, 0, 0)) {
        PQclear(r);
        return 1;
    }
    *json = cz_db_take_text(r);
    return 0;
}

/* ---- changes ---------------------------------------------------------------- */

/* A version of the name being changed, as read and as it will be. */
typedef struct ver {
    char version[CZ_MODEL_VERSION_MAX];
    char status[8], old_status[8];
    int weight, old_weight;
    double max_duration_s;   /* > 0: set it */
    const char *description; /* set it when not NULL ("" clears) */
} ver;

typedef struct name_state {
    const char *name;
    int n;
    ver *v;
} name_state;

/* BEGINs and reads @p name's versions FOR UPDATE into @p st. @returns 0
 * (in a transaction), 1 when the name has no version (rolled back), -1. */
static int lock_name(PGconn *c, const char *name, name_state *st, cz_err *err) {
    memset(st, 0, sizeof *st);
    st->name = name;
    if (cz_db_begin(c, err))
        return -1;
    PGresult *r = cz_db_query(c,
                              "SELECT version, status, weight FROM models WHERE name = $1"
                              " ORDER BY version COLLATE \"C\" FOR UPDATE",
                              1, (const char *[]){name}, err);
    if (!r) {
        cz_db_rollback(c);
        return -1;
    }
    st->n = PQntuples(r);
    if (st->n == 0) {
        PQclear(r);
        cz_db_rollback(c);
        return 1;
    }
    st->v = cz_calloc((size_t)st->n, sizeof *st->v);
    for (int i = 0; i < st->n; i++) {
        ver *v = &st->v[i];
        snprintf(v->version, sizeof v->version, "%s", PQgetvalue(r, i, 0));
        snprintf(v->status, sizeof v->status, "%s", PQgetvalue(r, i, 1));
        memcpy(v->old_status, v->status, sizeof v->status);
        v->weight = v->old_weight = atoi(PQgetvalue(r, i, 2));
    }
    PQclear(r);
    return 0;
}

static ver *find(name_state *st, const char *version) {
    for (int i = 0; i < st->n; i++)
        if (!strcmp(st->v[i].version, version))
            return &st->v[i];
    return NULL;
}

static bool active(const ver *v) {
    return !strcmp(v->status, "active");
}

/* "1, 2, 3": the name's versions, for messages. */
static void version_list(const name_state *st, char *out, size_t n) {
    out[0] = '\0';
    for (int i = 0; i < st->n; i++)
        snprintf(out + strlen(out), n - strlen(out), "%s%s", i ? ", " : "", st->v[i].version);
}

/* The split (old or new) as a JSON object's text; caller frees. */
static char *split_json(const name_state *st, bool old) {
    cz_buf b = {0};
    cz_buf_putc(&b, '{');
    bool first = true;
    for (int i = 0; i < st->n; i++) {
        const ver *v = &st->v[i];
        int w = old ? v->old_weight : v->weight;
        if (strcmp(old ? v->old_status : v->status, "active") || w <= 0)
            continue;
        cz_buf_appendf(&b, "%s\"%s@%s\":%d", first ? "" : ",", st->name, v->version, w);
        first = false;
    }
    cz_buf_putc(&b, '}');
    return cz_buf_take(&b);
}

/* The rules for the name as it will be: a version that does not take
 * traffic holds no weight, and the active versions' weights sum to 100.
 * @returns 0, or 2 with @p field and @p err. */
static int check_rules(const name_state *st, char field[64], cz_err *err) {
    int sum = 0, n_active = 0;
    for (int i = 0; i < st->n; i++) {
        const ver *v = &st->v[i];
        if (!active(v) && v->weight > 0) {
            snprintf(field, 64, "versions.%s.status", v->version);
            cz_err_set(err,
                       "%s@%s carries %d%% of %s's traffic and cannot be %s: give its share to "
                       "another version first (split, or promote)",
                       st->name, v->version, v->weight, st->name, v->status);
            return 2;
        }
        if (active(v)) {
            sum += v->weight;
            n_active++;
        }
    }
    if (n_active && sum != 100) {
        snprintf(field, 64, "split");
        cz_err_set(err,
                   "the weights of %s's active versions must sum to 100, not %d: a name with "
                   "active versions must route its traffic",
                   st->name, sum);
        return 2;
    }
    return 0;
}

/* Writes what changed and the decision row, commits, and fills @p json with
 * the model after it. The transaction is ended either way. @returns 0 or -1. */
static int finish(PGconn *c, name_state *st, const char *action, const char *changes,
                  const char *actor, const char *reason, char **json, cz_err *err) {
    for (int i = 0; i < st->n; i++) {
        const ver *v = &st->v[i];
        if (!strcmp(v->status, v->old_status) && v->weight == v->old_weight &&
            v->max_duration_s <= 0 && !v->description)
            continue;
        char weight[16], max[32] = "";
        snprintf(weight, sizeof weight, "%d", v->weight);
        if (v->max_duration_s > 0)
            snprintf(max, sizeof max, "%.17g", v->max_duration_s);
        const char *p[] = {st->name,          v->version,
                           v->status,         weight,
                           *max ? max : NULL, v->description ? "true" : "false",
                           v->description,    actor};
        if (cz_db_exec(c,
                       "UPDATE models SET status = $3, weight = $4::int,"
                       " max_duration_s = coalesce($5::float8, max_duration_s),"
                       " description = CASE WHEN $6::bool THEN nullif($7, '') ELSE description END,"
                       " updated_at = now(), updated_by = $8 WHERE name = $1 AND version = $2",
                       8, p, err) < 0)
            goto fail;
    }
    char *before = split_json(st, true), *after = split_json(st, false);
    const char *p[] = {st->name, actor, action, before, after, changes, reason};
    long n = cz_db_exec(c,
                        "INSERT INTO model_decisions (name, actor, action, split_before,"
                        " split_after, changes, reason)"
                        " VALUES ($1, $2, $3, $4::jsonb, $5::jsonb, $6::jsonb, $7)",
                        7, p, err);
    free(before);
    free(after);
    if (n < 0)
        goto fail;
    int shown = cz_db_models_json(c, st->name, true, true, json, err);
    if (shown == 1)
        cz_err_set(err, "model %s vanished during its change", st->name);
    if (shown)
        goto fail;
    if (cz_db_commit(c, err)) {
        free(*json);
        *json = NULL;
        return -1;
    }
    return 0;
fail:
    cz_db_rollback(c);
    return -1;
}

/* Ends a change refused by a rule: rolls back, frees, returns @p rc. */
static int refuse(PGconn *c, name_state *st, int rc) {
    cz_db_rollback(c);
    free(st->v);
    return rc;
}

int cz_db_model_update(PGconn *c, const char *name, const cz_model_change *ch, const char *actor,
                       const char *reason, char **json, char field[64], cz_err *err) {
    field[0] = '\0';
    *json = NULL;
    name_state st;
    int rc = lock_name(c, name, &st, err);
    if (rc)
        return rc;
    char have[200];
    version_list(&st, have, sizeof have);
    for (int i = 0; i < ch->n_settings; i++) {
        const cz_model_setting *s = &ch->settings[i];
        ver *v = find(&st, s->version);
        if (!v) {
            snprintf(field, 64, "versions.%.40s", s->version);
            cz_err_set(err, "model %s has no version %s (it has %s)", name, s->version, have);
            return refuse(c, &st, 2);
        }
        if (s->status)
            snprintf(v->status, sizeof v->status, "%s", s->status);
        if (s->max_duration_s > 0)
            v->max_duration_s = s->max_duration_s;
        if (s->description)
            v->description = s->description;
    }
    if (ch->n_split) {
        for (int i = 0; i < st.n; i++)
            st.v[i].weight = 0;
        for (int i = 0; i < ch->n_split; i++) {
            ver *v = find(&st, ch->split[i].version);
            snprintf(field, 64, "split.%s@%.16s", name, ch->split[i].version);
            if (!v) {
                cz_err_set(err, "model %s has no version %s (it has %s)", name,
                           ch->split[i].version, have);
                return refuse(c, &st, 2);
            }
            if (!active(v) && ch->split[i].weight > 0) {
                cz_err_set(err,
                           "%s@%s is %s: only active versions take traffic (re-activate it in "
                           "versions first)",
                           name, v->version, v->status);
                return refuse(c, &st, 2);
            }
            v->weight = ch->split[i].weight;
        }
        field[0] = '\0';
    }
    if ((rc = check_rules(&st, field, err)))
        return refuse(c, &st, rc);
    rc = finish(c, &st, ch->n_split ? "split" : "settings", ch->settings_json, actor, reason, json,
                err);
    free(st.v);
    return rc;
}

int cz_db_model_promote(PGconn *c, const char *name, const char *version, const char *actor,
                        const char *reason, char **json, char field[64], cz_err *err) {
    field[0] = '\0';
    *json = NULL;
    name_state st;
    int rc = lock_name(c, name, &st, err);
    if (rc)
        return rc;
    ver *v = find(&st, version);
    if (!v || !active(v)) {
        char have[200];
        version_list(&st, have, sizeof have);
        snprintf(field, 64, "version");
        if (!v)
            cz_err_set(err, "model %s has no version %s (it has %s)", name, version, have);
        else
            cz_err_set(err, "%s@%s is %s: re-activate it first (PUT /v1/models/%s, versions)", name,
                       version, v->status, name);
        return refuse(c, &st, 2);
    }
    for (int i = 0; i < st.n; i++)
        st.v[i].weight = 0;
    v->weight = 100;
    rc = finish(c, &st, "promote", NULL, actor, reason, json, err);
    free(st.v);
    return rc;
}

int cz_db_model_rollback(PGconn *c, const char *name, const char *actor, const char *reason,
                         char **json, cz_err *err) {
    *json = NULL;
    name_state st;
    int rc = lock_name(c, name, &st, err);
    if (rc)
        return rc;
    PGresult *r = cz_db_query(c,
                              "SELECT split_before::text FROM model_decisions WHERE name = $1"
                              " AND action IN ('split', 'promote') ORDER BY id DESC LIMIT 1",
                              1, (const char *[]){name}, err);
    if (!r)
        return refuse(c, &st, -1);
    char *text = cz_db_take_text(r);
    cJSON *split = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!split) {
        cz_err_set(err, "model %s has no split or promote to roll back", name);
        return refuse(c, &st, 3);
    }
    for (int i = 0; i < st.n; i++)
        st.v[i].weight = 0;
    size_t prefix = strlen(name) + 1; /* "neural@" */
    rc = 0;
    for (const cJSON *e = split->child; e && !rc; e = e->next) {
        ver *v = strlen(e->string) > prefix ? find(&st, e->string + prefix) : NULL;
        if (!v || !active(v)) {
            cz_err_set(err, "cannot roll back to the split %s had before: %s %s now", name,
                       e->string,
                       v ? (!strcmp(v->status, "retired") ? "is retired" : "is shadow")
                         : "no longer exists");
            rc = 3;
        } else {
            v->weight = cJSON_IsNumber(e) ? e->valueint : 0;
        }
    }
    cJSON_Delete(split);
    char field[64];
    if (rc || check_rules(&st, field, err))
        return refuse(c, &st, 3);
    rc = finish(c, &st, "rollback", NULL, actor, reason, json, err);
    free(st.v);
    return rc;
}
