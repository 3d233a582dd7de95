/* SQL for the transactional outbox: rows written with a job (same
 * transaction) and published to Kafka by the scheduler's relay. */
#ifndef CZ_DB_OUTBOX_H
#define CZ_DB_OUTBOX_H

#include <libpq-fe.h>

#include "common/err.h"

/**
 * @brief Up to @p limit unpublished rows in id order, skipping the ids in the
 * Postgres bigint[] literal @p exclude (those already on their way to Kafka).
 * Columns: id, topic, key, payload (text), headers (JSON object text).
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_outbox_fetch(PGconn *c, int limit, const char *exclude, cz_err *err);

/**
 * @brief Marks the rows in bigint[] literal @p ids published and, for generate
 * messages, moves their jobs from queued to dispatched (guarded), with
 * history rows: one statement, one transaction.
 * @returns 0, or -1 with @p err filled.
 */
int cz_db_outbox_mark_published(PGconn *c, const char *ids, cz_err *err);

#endif
