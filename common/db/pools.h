/* SQL for worker pools and their decisions (migrations/0010_pools.sql).
 *
 * A pool's settings are changed by operators (the API, cadenzactl) and its
 * desired replica count by the autoscaler; the scheduler's supervisor reads
 * desired and writes back what it observed. Every change of settings or of
 * desired is one row of pool_decisions, in the same transaction. */
#ifndef CZ_DB_POOLS_H
#define CZ_DB_POOLS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "common/err.h"

#define CZ_POOL_NAME_MAX 32
#define CZ_POOLS_MAX 16 /* pools a scheduler handles */

/** A pool's settings as stored. */
typedef struct cz_pool {
    char name[CZ_POOL_NAME_MAX];
    int min, max, desired;
    int target_lag; /* messages of lag one replica is meant to carry */
    int cooldown_s; /* the least time between a change and a scale-down */
    bool autoscale;
    double since_change_s; /* seconds since the last change of the row */
    int running;           /* replicas last observed running, -1: never */
} cz_pool;

/** A requested change: fields with has_* false keep their value. */
typedef struct cz_pool_change {
    bool has_min, has_max, has_desired, has_target_lag, has_cooldown, has_autoscale;
    int min, max, desired, target_lag, cooldown_s;
    bool autoscale;
} cz_pool_change;

/**
 * @brief Reads every pool into @p out (at most @p cap), by name.
 * @returns how many, or -1 with @p err filled.
 */
int cz_db_pools_load(PGconn *c, cz_pool *out, int cap, cz_err *err);

/**
 * @brief The pools as the API shows them: {"object":"list","data":[...]}
 * when @p name is NULL, else that one pool's object.
 * @returns 0 with *@p json set (caller frees), 1 when there is no such pool,
 * or -1 with @p err filled.
 */
int cz_db_pools_json(PGconn *c, const char *name, char **json, cz_err *err);

/**
 * @brief Applies @p ch to pool @p name for @p actor, recording the decision
 * with @p reason. The result must keep min <= desired <= max; a change that
 * gives only new bounds moves desired into them.
 * @returns 0 with *@p json the pool after the change (caller frees), 1 when
 * there is no such pool, 2 when the change breaks a rule (@p err says which,
 * @p field names the field), or -1 with @p err filled.
 */
int cz_db_pool_update(PGconn *c, const char *name, const cz_pool_change *ch, const char *actor,
                      const char *reason, char **json, char field[32], cz_err *err);

/**
 * @brief The autoscaler's decision: desired from @p from to @p to, only if
 * autoscale is still on and desired is still @p from (a concurrent operator
 * change wins). @p lag < 0 and @p throughput < 0 are recorded as unknown.
 * @returns 1 when applied, 0 when the pool had changed meanwhile, -1 on error.
 */
int cz_db_pool_autoscale(PGconn *c, const char *name, int from, int to, long long lag,
                         double throughput, const char *reason, cz_err *err);

/**
 * @brief Records what the scheduler sees of pool @p name: replicas running,
 * consumer-group lag and throughput (negative: unknown, left as it was).
 * @returns 0, or -1 with @p err filled.
 */
int cz_db_pool_observe(PGconn *c, const char *name, int running, long long lag, double throughput,
                       cz_err *err);

/**
 * @brief Records an event of pool @p name that changes no setting (a
 * restart) in pool_decisions. @returns 0, or -1 with @p err filled.
 */
int cz_db_pool_note(PGconn *c, const char *name, const char *actor, const char *action,
                    const char *reason, cz_err *err);

/**
 * @brief Every pool as the metrics show it. Columns: name, desired, running
 * (NULL when never observed), lag (0 when unknown), throughput per replica
 * (0 when unknown).
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_pools_observed(PGconn *c, cz_err *err);

#endif
