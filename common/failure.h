/* Failure classes and the retry policy.
 *
 * A worker that cannot finish an attempt names why with a class. Only
 * invalid_input is never retried: the same input would fail the same way.
 * Everything else (a model error, a timeout, running out of memory, a
 * backend that is down, a worker that vanished, a bug of ours) may pass on
 * another try, so the job goes back to queued with attempt + 1 until it has
 * used max_attempts.
 *
 * oom has one more rule, applied before a failure reaches the scheduler: a
 * backend that runs jobs in batches (http@2) retries a batch that ran out
 * of memory at once as two halves, down to one job, so only a job that
 * does not fit alone is reported oom; the scheduler then retries it like
 * the others (docs/http2.md).
 *
 * Backoff is exponential with full jitter (the delay is uniform in
 * [0, min(cap, base * 2^(attempt-1))]): retries of many jobs that failed
 * together spread out instead of arriving together. */
#ifndef CZ_FAILURE_H
#define CZ_FAILURE_H

#include <stdbool.h>
#include <stdint.h>

/** @brief True for the seven classes in DESIGN.md. */
bool cz_failure_class_valid(const char *failure_class);

/** @brief True when a failure of this class may succeed on another attempt. */
bool cz_failure_retryable(const char *failure_class);

/**
 * @brief The delay before retrying after failed attempt @p attempt (1-based):
 * uniform in [0, min(@p cap_ms, @p base_ms * 2^(attempt-1))], using @p random
 * (any 64 random bits) for the draw.
 * @returns milliseconds.
 */
int64_t cz_failure_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint64_t random);

#endif
