/* neural@1's forward pass on an NVIDIA GPU: the computation of
 * transformer.c (docs/models/format.md) with cuBLAS for the matrix
 * products and kernels of our own (cuda.cu) for the rest. It exists only
 * in builds made where nvcc was found (the Makefile then compiles cuda.cu
 * and defines CZ_HAVE_CUDA for transformer.c); nothing else calls it
 * directly: transformer.h's cz_tf_state_new_on(..., CZ_TF_CUDA, ...)
 * makes a state whose steps and prefills come here, so the rest of the
 * code keeps calling cz_tf_step() and cz_tf_prefill().
 *
 * A model's weights are uploaded once (cz_cuda_model_new()); a state holds
 * the KV caches of its slots and its scratch on the GPU, and runs one
 * forward over a set of rows (slot, position, token) as transformer.c's
 * forward() does: every row's K and V go into its slot's cache before any
 * row attends, so one call may hold many positions of one slot (a prefill)
 * or one position of many slots (a batched step). Checking the rows
 * (slots, tokens, positions in range) is the caller's job, done once in
 * transformer.c for both devices.
 *
 * Plain C17 on the caller's side; cuda.cu is compiled as CUDA C++ and
 * gives these functions C linkage. */
#ifndef CZ_NEURAL_CUDA_H
#define CZ_NEURAL_CUDA_H

/* C headers: inside the block, so that cuda.cu (C++) sees C names. */
#ifdef __cplusplus
extern "C" {
#endif

#include "common/err.h"
#include "workers/models/neural/weights.h"

typedef struct cz_cuda_model cz_cuda_model;
typedef struct cz_cuda_state cz_cuda_state;

/**
 * @brief How many CUDA devices this process can use (CUDA_VISIBLE_DEVICES
 * applies). The model and its states use the current device, 0 unless the
 * environment says otherwise.
 * @returns the count (0: no GPU); or -1 with @p err when the CUDA runtime
 * cannot be started (no driver, a driver older than the runtime), saying so.
 */
int cz_cuda_devices(cz_err *err);

/**
 * @brief Uploads the weights @p w (kept by the caller, read only here) to
 * the GPU in one allocation, Wq, Wk and Wv packed into one [3D, D] matrix
 * per layer as on the CPU, and measures the row group of its matrix
 * products (see cuda.cu: the largest of 32, 16, ..., 1 rows for which a
 * row's result does not depend on the other rows).
 * @returns the model, freed with cz_cuda_model_free(); or NULL with @p err
 * (no GPU, not enough GPU memory, a head wider than 1024).
 */
cz_cuda_model *cz_cuda_model_new(const cz_neural_weights *w, cz_err *err);

/** @brief Frees @p g and its GPU memory; NULL-safe. Free its states first. */
void cz_cuda_model_free(cz_cuda_model *g);

/** @brief Rows per matrix product on the GPU (measured at upload). */
int cz_cuda_model_chunk(const cz_cuda_model *g);

/**
 * @brief A state for @p max_batch slots with KV caches for max_seq
 * positions each on the GPU (2 * n_layers * max_seq * d_model floats per
 * slot, all allocated now: 5 MB a slot for neural-1), and scratch for
 * forwards of up to @p max_rows rows. A state is used by one thread at a
 * time; states of one model may run in different threads.
 * @returns the state, freed with cz_cuda_state_free(); or NULL with @p err
 * (not enough GPU memory: it names the size and suggests fewer slots).
 */
cz_cuda_state *cz_cuda_state_new(const cz_cuda_model *g, int max_batch, int max_rows, cz_err *err);

/** @brief Frees @p s and its GPU memory; NULL-safe. */
void cz_cuda_state_free(cz_cuda_state *s);

/**
 * @brief One forward over @p n rows: row r is token @p tokens[r] at
 * position @p pos[r] of slot @p slots[r] (all checked by the caller, n at
 * most max_rows). Writes each row's K and V into its slot's cache and, when
 * @p logits is not NULL, the rows' next-token logits to
 * @p logits[r * vocab ...] in host memory. Returns when they are there.
 * @returns 0; or -1 with @p err when CUDA or cuBLAS fails (the state's
 * caches may then hold garbage past each slot's length, which the caller
 * does not advance, so a retry overwrites it).
 */
int cz_cuda_forward(cz_cuda_state *s, const int *tokens, const int *slots, const int *pos, int n,
                    float *logits, cz_err *err);

#ifdef __cplusplus
}
#endif

#endif
