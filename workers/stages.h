/* The pools' stages: inference (request -> raw audio) and post
 * (raw audio -> mastered deliverables with a QA report). */
#ifndef CZ_STAGES_H
#define CZ_STAGES_H

#include "pool.h"

/** @brief Inference stage; the pool state is a cz_renderer. */
int cz_inference_stage(cz_worker *w, const cz_job_msg *job);

/** @brief Post-processing stage; no pool state. */
int cz_post_stage(cz_worker *w, const cz_job_msg *job);

#endif
