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

/**
 * @brief Locks job @p job_id's unpublished generate message, if it has one,
 * inside the caller's transaction (FOR UPDATE): the lock the relay takes
 * first, so a cancel racing the relay takes its locks in the same order.
 * @returns the number of rows locked (0 or 1), or -1 with @p err filled.
 */
long cz_db_outbox_lock_generate(PGconn *c, const char *job_id, cz_err *err);

/**
 * @brief The backlogs the metrics show, read at once. One row: outbox rows
 * not yet published, seconds the oldest job has waited in review (0 when
 * none), webhook deliveries pending, and seconds the most overdue pending
 * delivery has been due (0 when none).
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_outbox_backlogs(PGconn *c, cz_err *err);

#endif
