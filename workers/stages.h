/* The pools' stages: inference (request -> raw audio) and post
 * (raw audio -> mastered deliverables with a QA report). */
#ifndef CZ_STAGES_H
#define CZ_STAGES_H

#include "workers/models/backend.h"
#include "workers/pool.h"

/**
 * @brief Prepares the inference pool's state (models loaded once per process).
 * @returns the state (free with cz_inference_close), or NULL with @p err filled.
 */
void *cz_inference_open(const cz_config *cfg, cz_err *err);
void cz_inference_close(void *state);

/** @brief Inference stage: request -> raw audio, then hand on to post. */
int cz_inference_stage(cz_worker *w, const cz_job_msg *job);

/**
 * @brief The inference pool's batch stage (pool.h): jobs of one batching
 * model (neural@1) decoded together, each handed on as soon as it is done.
 */
void cz_inference_batch(cz_worker *w, const cz_job_msg *jobs, int n, int *rcs);

/** @brief The batch a job may join: its model, when that model batches; else NULL. */
const char *cz_inference_batch_key(void *state, const cz_job_msg *job);

/**
 * @brief Runs the model of canonical request @p req (with the state from
 * cz_inference_open) into @p dir: the inference stage without Kafka, also
 * used by `cadenza-worker render`. The caller commits the files with
 * cz_gen_result_commit() and frees @p res with cz_gen_result_free().
 * @returns 0; 1 canceled; -1 with @p err and res->failure_class.
 */
int cz_inference_run(void *state, const cJSON *req, const char *job_id, int attempt,
                     const char *traceparent, const char *dir, const cz_gen_hooks *hooks,
                     cz_gen_result *res, cz_err *err);

/**
 * @brief Prepares the post pool's state.
 * @returns the state (free with cz_post_close), or NULL with @p err filled.
 */
void *cz_post_open(const cz_config *cfg, cz_err *err);
void cz_post_close(void *state);

/** @brief Post-processing stage: raw audio -> master, encodings, QA report. */
int cz_post_stage(cz_worker *w, const cz_job_msg *job);

/**
 * @brief `cadenza-worker master IN OUT [--preset P] [--target L] [--ceiling C]`:
 * the post chain (resample, master, verify, QA) on one file, written to OUT
 * in the format its extension names (.wav, .flac, .mp3, .opus); prints the
 * QA report as JSON on stdout.
 * @returns the process exit status: 0 when the master met its target, 1
 * when it did not or the chain failed, 2 for a usage error.
 */
int cz_post_master_cli(int argc, char **argv);

#endif
