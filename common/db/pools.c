/* SQL for worker pools: see db_pools.h.
 *
 * An operator's change reads the row FOR UPDATE, merges and checks the new
 * settings here (so a broken rule gets a message naming the field rather
 * than a constraint's name), then writes the row and its decision in one
 * transaction. The autoscaler's change is one conditional statement instead:
 * it applies only while autoscale is on and desired is what the autoscaler
 * read, so an operator's change made in between is never overwritten. */
#include "common/db/pools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db/db.h"

#define POOL_JSON                                                                                  \
    "json_build_object('object', 'pool', 'name', name, 'min', min_replicas, 'max',"                \
    " max_replicas, 'desired', desired, 'running', running, 'target_lag_per_replica',"             \
    " target_lag_per_replica, 'cooldown_s', cooldown_s, 'autoscale', autoscale, 'lag', lag,"       \
    " 'throughput_per_s', throughput_per_s, 'observed_at', observed_at, 'updated_at',"             \
    " updated_at, 'updated_by', updated_by)"

#define POOL_SETTINGS                                                                              \
    "jsonb_build_object('min', min_replicas, 'max', max_replicas, 'desired', desired,"             \
    " 'target_lag_per_replica', target_lag_per_replica, 'cooldown_s', cooldown_s,"                 \
    " 'autoscale', autoscale)"

int cz_db_pools_load(PGconn *c, cz_pool *out, int cap, cz_err *err) {
    PGresult *r = cz_db_query(c,
                              "SELECT name, min_replicas, max_replicas, desired,"
                              " target_lag_per_replica, cooldown_s, autoscale,"
                              " extract(epoch FROM now() - updated_at), coalesce(running, -1)"
                              " FROM pools ORDER BY name",
                              0, NULL, err);
    if (!r)
        return -1;
    int n = PQntuples(r) < cap ? PQntuples(r) : cap;
    for (int i = 0; i < n; i++) {
        cz_pool *p = &out[i];
        snprintf(p->name, sizeof p->name, "%s", PQgetvalue(r, i, 0));
        p->min = atoi(PQgetvalue(r, i, 1));
        p->max = atoi(PQgetvalue(r, i, 2));
        p->desired = atoi(PQgetvalue(r, i, 3));
        p->target_lag = atoi(PQgetvalue(r, i, 4));
        p->cooldown_s = atoi(PQgetvalue(r, i, 5));
        p->autoscale = PQgetvalue(r, i, 6)[0] == 't';
        p->since_change_s = atof(PQgetvalue(r, i, 7));
        p->running = atoi(PQgetvalue(r, i, 8));
    }
    PQclear(r);
    return n;
}

int cz_db_pools_json(PGconn *c, const char *name, char **json, cz_err *err) {
    PGresult *r;
    if (!name)
        r = cz_db_query(c,
                        "SELECT json_build_object('object', 'list', 'data',"
                        " coalesce(json_agg(" POOL_JSON " ORDER BY name), '[]'))::text FROM pools",
                        0, NULL, err);
    else
        r = cz_db_query(c, "SELECT " POOL_JSON "::text FROM pools WHERE name = $1", 1,
                        (const char *[]){name}, err);
    if (!r)
        return -1;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return 1;
    }
    if (!(*json = cz_db_take_text(r)))
        return cz_err_set(err, "out of memory");
    return 0;
}

/* Merges @p ch into @p p and checks the rules; 0 when they hold. */
static int merge(cz_pool *p, const cz_pool_change *ch, char field[32], cz_err *err) {
    if (ch->has_min)
        p->min = ch->min;
    if (ch->has_max)
        p->max = ch->max;
    if (ch->has_target_lag)
        p->target_lag = ch->target_lag;
    if (ch->has_cooldown)
        p->cooldown_s = ch->cooldown_s;
    if (ch->has_autoscale)
        p->autoscale = ch->autoscale;
    if (p->min > p->max) {
        snprintf(field, 32, "%s", ch->has_min ? "min" : "max");
        return cz_err_set(err, "min (%d) may not be above max (%d)", p->min, p->max);
    }
    if (ch->has_desired) {
        if (ch->desired < p->min || ch->desired > p->max) {
            snprintf(field, 32, "desired");
            return cz_err_set(err, "desired must be within min and max (%d..%d), not %d", p->min,
                              p->max, ch->desired);
        }
        p->desired = ch->desired;
    } else if (p->desired < p->min) {
        p->desired = p->min;
    } else if (p->desired > p->max) {
        p->desired = p->max;
    }
    return 0;
}

int cz_db_pool_update(PGconn *c, const char *name, const cz_pool_change *ch, const char *actor,
                      const char *reason, char **json, char field[32], cz_err *err) {
    field[0] = '\0';
    if (cz_db_begin(c, err))
        return -1;
    PGresult *r = cz_db_query(c,
                              "SELECT min_replicas, max_replicas, desired, target_lag_per_replica,"
                              " cooldown_s, autoscale FROM pools WHERE name = $1 FOR UPDATE",
                              1, (const char *[]){name}, err);
    if (!r)
        goto fail;
    if (PQntuples(r) == 0) {
        PQclear(r);
        cz_db_rollback(c);
        return 1;
    }
    cz_pool p = {.min = atoi(PQgetvalue(r, 0, 0)),
                 .max = atoi(PQgetvalue(r, 0, 1)),
                 .desired = atoi(PQgetvalue(r, 0, 2)),
                 .target_lag = atoi(PQgetvalue(r, 0, 3)),
                 .cooldown_s = atoi(PQgetvalue(r, 0, 4)),
                 .autoscale = PQgetvalue(r, 0, 5)[0] == 't'};
    PQclear(r);
    int from = p.desired;
    if (merge(&p, ch, field, err)) {
        cz_db_rollback(c);
        return 2;
    }
    char mn[16], mx[16], d[16], lag[16], cd[16], fr[16];
    snprintf(mn, sizeof mn, "%d", p.min);
    snprintf(mx, sizeof mx, "%d", p.max);
    snprintf(d, sizeof d, "%d", p.desired);
    snprintf(lag, sizeof lag, "%d", p.target_lag);
    snprintf(cd, sizeof cd, "%d", p.cooldown_s);
    snprintf(fr, sizeof fr, "%d", from);
    const char *action = p.desired > from   ? "scale_up"
                         : p.desired < from ? "scale_down"
                                            : "settings";
    const char *params[] = {name,  mn,     mx, d,     lag, cd, p.autoscale ? "true" : "false",
                            actor, action, fr, reason};
    r = cz_db_query(
        c,
        "WITH u AS (UPDATE pools SET min_replicas = $2, max_replicas = $3,"
        " desired = $4, target_lag_per_replica = $5, cooldown_s = $6, autoscale = $7,"
        " updated_at = now(), updated_by = $8 WHERE name = $1 RETURNING *),"
        " d AS (INSERT INTO pool_decisions (pool, actor, action, from_desired,"
        " to_desired, reason, settings) SELECT name, $8, $9, $10::int, desired, $11, " POOL_SETTINGS
        " FROM u)"
        " SELECT " POOL_JSON "::text FROM u",
        11, params, err);
    if (!r)
        goto fail;
    if (!(*json = cz_db_take_text(r))) {
        cz_err_set(err, "out of memory");
        goto fail;
    }
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

int cz_db_pool_autoscale(PGconn *c, const char *name, int from, int to, long long lag,
                         double throughput, const char *reason, cz_err *err) {
    char fr[16], t[16], l[24] = "", tp[32] = "";
    snprintf(fr, sizeof fr, "%d", from);
    snprintf(t, sizeof t, "%d", to);
    if (lag >= 0)
        snprintf(l, sizeof l, "%lld", lag);
    if (throughput >= 0)
        snprintf(tp, sizeof tp, "%.6g", throughput);
    const char *params[] = {
        name, fr, t, *l ? l : NULL, *tp ? tp : NULL, reason, to > from ? "scale_up" : "scale_down"};
    PGresult *r = cz_db_query(
        c,
        "WITH u AS (UPDATE pools SET desired = $3, updated_at = now(), updated_by = 'autoscaler'"
        " WHERE name = $1 AND desired = $2 AND autoscale AND $3 BETWEEN min_replicas AND"
        " max_replicas RETURNING *)"
        " INSERT INTO pool_decisions (pool, actor, action, from_desired, to_desired, lag,"
        " throughput_per_s, reason, settings)"
        " SELECT name, 'autoscaler', $7, $2::int, $3::int, $4::bigint, $5::float8, "
        "$6, " POOL_SETTINGS " FROM u RETURNING id",
        7, params, err);
    if (!r)
        return -1;
    int applied = PQntuples(r) > 0;
    PQclear(r);
    return applied;
}

int cz_db_pool_observe(PGconn *c, const char *name, int running, long long lag, double throughput,
                       cz_err *err) {
    char run[16] = "", l[24] = "", tp[32] = "";
    if (running >= 0)
        snprintf(run, sizeof run, "%d", running);
    if (lag >= 0)
        snprintf(l, sizeof l, "%lld", lag);
    if (throughput >= 0)
        snprintf(tp, sizeof tp, "%.6g", throughput);
    const char *params[] = {name, *run ? run : NULL, *l ? l : NULL, *tp ? tp : NULL};
    return cz_db_exec(c,
                      "UPDATE pools SET running = coalesce($2::int, running),"
                      " lag = coalesce($3::bigint, lag),"
                      " throughput_per_s = coalesce($4::float8, throughput_per_s),"
                      " observed_at = now() WHERE name = $1",
                      4, params, err) < 0
               ? -1
               : 0;
}

int cz_db_pool_note(PGconn *c, const char *name, const char *actor, const char *action,
                    const char *reason, cz_err *err) {
    const char *params[] = {name, actor, action, reason};
    return cz_db_exec(c,
                      "INSERT INTO pool_decisions (pool, actor, action, from_desired, to_desired,"
                      " reason) SELECT name, $2, $3, desired, desired, $4 FROM pools"
                      " WHERE name = $1",
                      4, params, err) < 0
               ? -1
               : 0;
}

PGresult *cz_db_pools_observed(PGconn *c, cz_err *err) {
    return cz_db_query(c,
                       "SELECT name, desired, running, coalesce(lag, 0),"
                       " coalesce(throughput_per_s, 0) FROM pools",
                       0, NULL, err);
}
