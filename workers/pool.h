/* The worker loop shared by both pools.
 *
 * A worker consumes one topic in its pool's consumer group and hands each
 * message to its pool's stage (inference.c, post.c). Whatever the stage
 * produces (status events, the next stage's message) goes through one
 * idempotent producer. The consumed message's offset is stored only after
 * every message the stage produced for it has been acknowledged by Kafka;
 * if that cannot happen (a broker down), the worker seeks back and does the
 * job again later. So a job is never dropped between stages. */
#ifndef CZ_POOL_H
#define CZ_POOL_H

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "common/config.h"
#include "common/job_state.h"
#include "common/kafka.h"

typedef struct cz_worker cz_worker;

/** What a stage gets for each job message. */
typedef struct cz_job_msg {
    const cJSON *msg; /* the whole message */
    const char *job_id;
    int attempt;
    const char *tenant;
    const char *trace_id;
    const cJSON *request; /* the canonical request */
    char traceparent[64];
} cz_job_msg;

/**
 * A pool's stage: does the work for one message and emits its events.
 * @returns 0 when the job is done with (succeeded or failed and reported),
 * -1 to have the message delivered again later.
 */
typedef int (*cz_stage_fn)(cz_worker *w, const cz_job_msg *job);

/**
 * A pool's batch stage: does the work of @p n messages together and writes
 * into @p rcs[i] what cz_stage_fn would have returned for job i.
 */
typedef void (*cz_batch_fn)(cz_worker *w, const cz_job_msg *jobs, int n, int *rcs);

/**
 * Which batch a job may join: a key (its model), or NULL for a job that
 * runs alone. Only jobs with the same key share a batch.
 */
typedef const char *(*cz_batch_key_fn)(void *state, const cz_job_msg *job);

/*
 * Dynamic batching, with Triton's semantics: when the first message of a
 * batch arrives, the worker waits at most max_queue_delay_ms for more with
 * the same key, up to max_batch, then runs them together; each job still
 * finishes (its events, its offset) on its own. A message with another key
 * ends the wait and is read again next.
 */
typedef struct cz_pool_def {
    const char *name;  /* "inference" or "post" */
    const char *topic; /* the topic it consumes */
    cz_stage_fn stage;
    void *state;               /* the stage's own state (renderer, ...) */
    cz_batch_fn batch;         /* NULL: one job at a time */
    cz_batch_key_fn batch_key; /* with batch */
    int max_batch;             /* CADENZA_MAX_BATCH */
    int max_queue_delay_ms;    /* CADENZA_MAX_QUEUE_DELAY_MS */
} cz_pool_def;

/** @brief Runs the pool's loop until @p *stop; finishes the job in hand first. */
int cz_pool_run(const cz_config *cfg, const cz_pool_def *pool, atomic_bool *stop);

/** @brief The configuration, the stage state, and this worker's name (host:pid). */
const cz_config *cz_worker_config(const cz_worker *w);
void *cz_worker_state(const cz_worker *w);
const char *cz_worker_name(const cz_worker *w);

/** @brief A new status event for @p job (see common/event.h); caller owns it. */
cJSON *cz_worker_event(cz_worker *w, const cz_job_msg *job, cz_job_event type);

/**
 * @brief Produces @p msg (not freed) to @p topic with @p job's headers.
 * Delivery is confirmed before the consumed offset is stored.
 * @returns 0, or -1 when it could not even be queued.
 */
int cz_worker_send(cz_worker *w, const cz_job_msg *job, const char *topic, const cJSON *msg);

/** @brief Sends a status event of @p type naming the @p stage the job is in. */
int cz_worker_emit(cz_worker *w, const cz_job_msg *job, cz_job_event type, const char *stage);

/** @brief Sends a `failed` event with a failure class and detail. */
int cz_worker_fail(cz_worker *w, const cz_job_msg *job, const char *failure_class,
                   const char *detail);

/**
 * @brief True when the job's cancel flag (Redis key cadenza:cancel:<job id>)
 * is set. Stages call it between steps and stop early when it is. Redis
 * being down reads as "not canceled": the job finishes and the scheduler
 * discards the late result.
 */
bool cz_worker_canceled(cz_worker *w, const cz_job_msg *job);

/**
 * @brief True once the process was asked to stop (SIGTERM). A stage that
 * cannot finish soon abandons its job and returns -1: the message's offset
 * is not stored, so the job goes to another worker after the rebalance.
 */
bool cz_worker_stopping(cz_worker *w);

/** @brief Serves delivery reports; stages call it while they work. */
void cz_worker_poll(cz_worker *w);

#endif
