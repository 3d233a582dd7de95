/* SQL for the model registry (migrations/0014_models.sql, docs/models/registry.md).
 *
 * A model version is a row of `models`: name, version, backend, tier,
 * status (active, shadow, retired), its weight (its share of its name's
 * traffic), pool, price and limits. The API loads every row into a snapshot
 * it routes submissions with (api/registry.h), and shows them as JSON.
 * Operators change a name's versions in one transaction with its decision
 * row (model_decisions: the split before and after), promote a version
 * (all weight to it) and roll back (the split before the last split or
 * promote). Under the rows' lock these keep the rule a CHECK cannot: a
 * name with an active version has active weights that sum to 100. */
#ifndef CZ_DB_MODELS_H
#define CZ_DB_MODELS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "common/err.h"

#define CZ_MODEL_NAME_MAX 32    /* ^[a-z][a-z0-9-]{0,30}$ and its NUL */
#define CZ_MODEL_VERSION_MAX 17 /* ^[0-9a-z][0-9a-z.-]{0,15}$ and its NUL */
#define CZ_MODEL_ID_MAX (CZ_MODEL_NAME_MAX + CZ_MODEL_VERSION_MAX) /* name@version */
#define CZ_MODEL_VERSIONS_MAX 32 /* versions of one name a change may name */

/** One model version as the API routes with it. */
typedef struct cz_model {
    char name[CZ_MODEL_NAME_MAX];
    char version[CZ_MODEL_VERSION_MAX];
    char backend[16]; /* composer | neural | http */
    char tier[8];     /* draft | final */
    char status[8];   /* active | shadow | retired */
    char pool[32];
    int weight; /* 0..100: its share of its name's traffic (active versions only) */
    double price_per_compute_s;
    double max_duration_s;
    bool stems;
    bool takes_parameters; /* a request may carry "parameters" (http@2's servers declare them) */
} cz_model;

/** A change of one version's settings: NULL / 0 keep what is there. */
typedef struct cz_model_setting {
    char version[CZ_MODEL_VERSION_MAX];
    const char *status;      /* "active" or "retired"; NULL: unchanged */
    double max_duration_s;   /* > 0: the new limit; 0: unchanged */
    const char *description; /* NULL: unchanged; "": none */
} cz_model_setting;

/** An operator's change of one name: a new split, version settings, or both. */
typedef struct cz_model_change {
    int n_split; /* 0: the split is unchanged; else these weights, the others 0 */
    struct {
        char version[CZ_MODEL_VERSION_MAX];
        int weight;
    } split[CZ_MODEL_VERSIONS_MAX];
    int n_settings;
    cz_model_setting settings[CZ_MODEL_VERSIONS_MAX];
    const char *settings_json; /* the "versions" object as sent, for the decision row; or NULL */
} cz_model_change;

/**
 * @brief Reads every model version, by name then version (byte order).
 * @returns how many, with *@p out (caller frees; NULL when none), or -1
 * with @p err filled.
 */
int cz_db_models_load(PGconn *c, cz_model **out, cz_err *err);

/**
 * @brief The registry as the API shows it: {"object":"list","data":[model...]}
 * when @p name is NULL, else that name's model object. A model groups its
 * versions with their limits, weights and prices, and its current `split`.
 * Only active versions (and names that have one) unless @p all; who changed
 * a version and when only when @p operator_view.
 * @returns 0 with *@p json set (caller frees), 1 when there is no such model
 * to show, or -1 with @p err filled.
 */
int cz_db_models_json(PGconn *c, const char *name, bool all, bool operator_view, char **json,
                      cz_err *err);

/**
 * @brief Applies @p ch to model @p name for @p actor, with its decision row
 * (action `split` when the change names a split, else `settings`) and
 * @p reason, in one transaction.
 * @returns 0 with *@p json the model after the change (every version;
 * caller frees), 1 when there is no such model, 2 when the change breaks a
 * rule (@p err says which, @p field names the field: "split",
 * "split.neural@3", "versions.2.status", ...), or -1 with @p err filled.
 */
int cz_db_model_update(PGconn *c, const char *name, const cz_model_change *ch, const char *actor,
                       const char *reason, char **json, char field[64], cz_err *err);

/**
 * @brief Gives all of @p name's traffic to its active @p version (decision
 * `promote`). @returns as cz_db_model_update (2: no such version, or not
 * active; @p field is "version").
 */
int cz_db_model_promote(PGconn *c, const char *name, const char *version, const char *actor,
                        const char *reason, char **json, char field[64], cz_err *err);

/**
 * @brief Restores the split @p name had before its last `split` or `promote`
 * decision (decision `rollback`); rolling back twice restores the same split.
 * @returns as cz_db_model_update, and 3 when there is nothing to roll back
 * to (no such decision, or a version of that split is no longer active:
 * @p err says which).
 */
int cz_db_model_rollback(PGconn *c, const char *name, const char *actor, const char *reason,
                         char **json, cz_err *err);

#endif
