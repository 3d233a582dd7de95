/* The API's in-process snapshot of the model registry.
 *
 * Every submission is routed and checked against the registry
 * (api/routing.h); asking Postgres each time would add a query to the
 * durable-submission path. So each API process keeps the rows it last
 * read, and reads them again when they are older than
 * CADENZA_API_MODELS_CACHE_MS (default 1000 ms; 0: every submission reads
 * them), like the key cache (keycache.h), and at once after a change made
 * through this process. The price: a change made through another API
 * process, or by hand in Postgres, takes effect here within that period.
 *
 * One request thread at a time reads the rows again; the others go on with
 * the snapshot they have meanwhile, so no submission waits for it. If
 * Postgres does not answer, the last snapshot stays in use and is tried
 * again a period later; only a process that never read the registry has
 * none (and answers 503). Snapshots are reference-counted, so one in use
 * outlives its replacement. */
#ifndef CZ_REGISTRY_H
#define CZ_REGISTRY_H

#include "common/db/db.h"
#include "common/db/models.h"

typedef struct cz_registry cz_registry;

/** A snapshot: every model version, by name then version. Read-only. */
typedef struct cz_models_snap {
    int n;
    const cz_model *rows;
} cz_models_snap;

/** @brief A registry read through @p db, kept @p ttl_ms. Free with cz_registry_free. */
cz_registry *cz_registry_new(cz_db_pool *db, int ttl_ms);

/**
 * @brief A snapshot no older than the period, read again first when it is
 * older (by this thread, unless another one is at it).
 * @returns the snapshot (give it back with cz_registry_release), or NULL
 * with @p err when there is none and Postgres does not answer.
 */
const cz_models_snap *cz_registry_get(cz_registry *rg, cz_err *err);

/** @brief Gives back a snapshot from cz_registry_get. */
void cz_registry_release(cz_registry *rg, const cz_models_snap *s);

/**
 * @brief Reads the registry again now over @p c (a connection the caller
 * holds), after a change made through this process.
 * @returns 0, or -1 with @p err (the old snapshot stays).
 */
int cz_registry_reload(cz_registry *rg, PGconn *c, cz_err *err);

/** @brief Frees @p rg and its snapshot; NULL-safe. No snapshot may be in use. */
void cz_registry_free(cz_registry *rg);

#endif
