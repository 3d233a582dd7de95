/* Group commit of job submissions.
 *
 * Accepting a job durably costs one Postgres commit, and a commit costs one
 * WAL flush (fsync). With one transaction per job, the API can accept at
 * most what the disk flushes per second times what Postgres happens to
 * group on its own. Here request threads do not commit: each validated
 * submission is queued, and committer threads (each with its own
 * connection) take everything that is waiting, store it in ONE transaction
 * (cz_db_job_submit_batch) and wake the requests, which answer only then.
 * No batching delay is added: while one batch commits, the next one
 * gathers, so batches grow with load and stay at one job when idle.
 *
 * Durability is unchanged: synchronous_commit stays on, and a request
 * hears 202 only after the COMMIT of its batch returned. Errors stay per
 * request: when a batch fails as a whole (a bad row, a deadlock between
 * idempotency keys, a lost connection), its submissions are retried one
 * transaction each, so one bad row fails only its own request. */
#ifndef CZ_COMMITTER_H
#define CZ_COMMITTER_H

#include "common/db/jobs.h"
#include "common/err.h"

typedef struct cz_committer cz_committer;

/**
 * @brief Starts @p threads committer threads, each with a connection to
 * @p url, taking at most @p batch_max submissions per transaction.
 * @returns the committer (stop with cz_committer_stop), or NULL with @p err.
 */
cz_committer *cz_committer_start(const char *url, int threads, int batch_max, cz_err *err);

/**
 * @brief Queues @p s and waits until its batch has committed or failed.
 * @returns 0 with s->outcome, s->status and s->json (caller frees) set, or
 * -1 with @p err when it could not be stored (nothing was).
 */
int cz_committer_submit(cz_committer *cm, cz_job_submit *s, cz_err *err);

/** @brief Finishes what is queued, stops the threads, frees @p cm; NULL-safe. */
void cz_committer_stop(cz_committer *cm);

#endif
