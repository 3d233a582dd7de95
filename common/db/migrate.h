/* Schema migrations: the numbered SQL files of migrations/, applied by
 * `cadenza-api migrate` and tracked in schema_migrations. */
#ifndef CZ_DB_MIGRATE_H
#define CZ_DB_MIGRATE_H

#include <libpq-fe.h>

#include "common/err.h"

/**
 * @brief Applies every migrations/NNNN_*.sql in @p dir not yet recorded in
 * schema_migrations, each in its own transaction, in name order. Running it
 * again applies nothing. Concurrent runners serialise on an advisory lock.
 * @returns the number applied (>= 0), or -1 with @p err filled.
 */
int cz_db_migrate(PGconn *c, const char *dir, cz_err *err);

#endif
