/* Postgres access over libpq: connecting, running parameterised statements
 * with one error path, transactions, a fixed-size connection pool for the
 * API's request threads. This file knows no table; the migration runner
 * (migrate.c, schema_migrations) and leader election (leader.c, advisory
 * locks) sit beside it.
 *
 * All SQL of the product is in common/db/, one file per table group, and
 * every statement that touches a table is in its group's file:
 *   jobs.c      jobs, job_events, artifacts, qa_reports, usage_ledger,
 *               idempotency_keys
 *   outbox.c    outbox
 *   keys.c      tenants, api_keys
 *   webhooks.c  webhook_endpoints, webhook_secrets, webhook_deliveries,
 *               webhook_attempts
 *   review.c    review_tasks, review_audit
 *   pools.c     pools, pool_decisions
 *   models.c    models, model_decisions
 *   catalog.c   catalog_tracks
 *   playlists.c tracks, user_signals, playlists
 *   migrate.c   schema_migrations
 * decision.c holds no SQL of its own: a curator's decision is one
 * transaction over review.c's and jobs.c's statements.
 * A statement that spans groups lives with the table it writes, the first
 * when it writes several: a job's history, ledger row and outbox message
 * are written with the job (jobs.c), publishing marks outbox rows and then
 * moves their jobs (outbox.c). One that only reads lives with the table it
 * is mainly about: a tenant's usage is the ledger's (jobs.c), the metrics'
 * backlogs start with the outbox's (outbox.c). Everywhere else code calls
 * cz_db_<group>_<verb> functions: tools/check_sql.sh (make check-sql) fails
 * on SQL outside common/db/. */
#ifndef CZ_DB_H
#define CZ_DB_H

#include <libpq-fe.h>

#include "common/err.h"

/**
 * @brief Connects to @p url and checks the connection.
 * @returns the connection (close with PQfinish), or NULL with @p err filled.
 */
PGconn *cz_db_connect(const char *url, cz_err *err);

/**
 * @brief Runs @p sql with @p n text parameters (NULL entries are SQL NULL).
 * @returns the result (PQclear it) when the statement succeeded, or NULL with
 * @p err filled and the result already cleared.
 */
PGresult *cz_db_query(PGconn *c, const char *sql, int n, const char *const *params, cz_err *err);

/**
 * @brief Runs a statement that returns no rows we need.
 * @returns the number of rows affected (>= 0), or -1 with @p err filled.
 */
long cz_db_exec(PGconn *c, const char *sql, int n, const char *const *params, cz_err *err);

/** @brief BEGIN / COMMIT / ROLLBACK. @returns 0, or -1 with @p err filled. */
int cz_db_begin(PGconn *c, cz_err *err);
int cz_db_commit(PGconn *c, cz_err *err);
void cz_db_rollback(PGconn *c);

/**
 * @brief SAVEPOINT / RELEASE SAVEPOINT / ROLLBACK TO SAVEPOINT @p name, inside
 * a transaction. @p name is an SQL identifier written in the code, never
 * input (an identifier cannot be a parameter).
 * @returns 0, or -1 with @p err filled.
 */
int cz_db_savepoint(PGconn *c, const char *name, cz_err *err);
int cz_db_savepoint_release(PGconn *c, const char *name, cz_err *err);
int cz_db_savepoint_rollback(PGconn *c, const char *name, cz_err *err);

/**
 * @brief Asks the server for a trivial answer (SELECT 1): whether Postgres
 * answers on @p c now. @returns 0 when it did, or -1 with @p err filled.
 */
int cz_db_ping(PGconn *c, cz_err *err);

/**
 * @brief The first column of @p r's only row, copied (caller frees); NULL
 * when @p r is NULL or has no single row. Clears @p r.
 */
char *cz_db_take_text(PGresult *r);

/** @brief Reconnects @p c if the server closed it. @returns 0 when usable. */
int cz_db_ensure(PGconn *c);

/**
 * @brief Like cz_db_ensure(), and also reconnects @p c if the server hung up
 * while it sat idle (a restart): libpq would only notice on the next query,
 * which would fail. For connections that never LISTEN, since anything to
 * read on an idle one is taken as the server's goodbye.
 * @returns 0 when usable.
 */
int cz_db_ensure_idle(PGconn *c);

/**
 * @brief Runs @p sql, which may hold several statements (the simple
 * protocol), as one call.
 * @returns 0, or -1 with @p err filled with the server's message.
 */
int cz_db_exec_script(PGconn *c, const char *sql, cz_err *err);

typedef struct cz_db_pool cz_db_pool;

/** @brief Opens @p size connections to @p url. @returns the pool, or NULL with @p err. */
cz_db_pool *cz_db_pool_new(const char *url, int size, cz_err *err);

/** @brief Takes a connection, waiting while all are in use; reconnects a broken one. */
PGconn *cz_db_pool_get(cz_db_pool *p);

/** @brief Returns a connection taken with cz_db_pool_get(). */
void cz_db_pool_put(cz_db_pool *p, PGconn *c);

/** @brief Closes every connection and frees the pool; NULL-safe. */
void cz_db_pool_free(cz_db_pool *p);

#endif
