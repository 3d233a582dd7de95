/* neural@1: our own music transformer (workers/models/neural/) writes the
 * melody and the harmony, composer@1's arranger orchestrates them in the
 * requested style (workers/composer/material.h), and FluidSynth renders
 * the mix and the stems exactly as composer@1's are rendered.
 *
 * The weights (CADENZA_NEURAL_WEIGHTS, the committed
 * workers/models/neural/weights/neural-1.cztf by default) are loaded and
 * verified once per worker process, which then decodes one short piece to
 * warm up before it takes jobs: a missing or corrupt file stops the worker
 * with a message saying what to do. Jobs can be decoded together
 * (generate_batch): each job's sequences are slots of one batched forward
 * step, sampled from the job's own seeded streams, so a job's notes are the
 * same whichever batch it ran in. */
#ifndef CZ_NEURAL_H
#define CZ_NEURAL_H

#include "workers/models/backend.h"

/** @brief The neural@1 backend. */
extern const cz_backend cz_neural_backend;

#endif
