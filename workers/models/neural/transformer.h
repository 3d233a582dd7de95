/* neural@1's forward pass: a decoder-only transformer (docs/models/format.md)
 * over the weights of weights.h, with a KV cache per sequence and matrix
 * products through OpenBLAS.
 *
 * A model is loaded once and read-only afterwards, so any number of states
 * (and threads, one per state) may share it. A state holds the KV caches of
 * up to max_batch sequences, called slots; each slot is a sequence at its
 * own position. One cz_tf_step() advances many slots by one token each in
 * a single batched forward (what dynamic batching calls); cz_tf_prefill()
 * feeds one slot a prompt of several tokens in one forward.
 *
 * A state lives on a device: the CPU (OpenBLAS, this file's own code) or,
 * in builds made where nvcc was found, an NVIDIA GPU (cuda.h: cuBLAS and
 * kernels of our own). Both compute the same function and are called the
 * same way; cz_tf_state_new_on() chooses. Logits agree between them to a
 * tolerance, not bit for bit (cuda.cu says why and what is promised). */
#ifndef CZ_NEURAL_TRANSFORMER_H
#define CZ_NEURAL_TRANSFORMER_H

#include "common/err.h"
#include "workers/models/neural/weights.h"

typedef struct cz_tf_model cz_tf_model;
typedef struct cz_tf_state cz_tf_state;

/** Where a state's forward pass runs. */
typedef enum cz_tf_device {
    CZ_TF_CPU,  /* OpenBLAS and this engine's threads */
    CZ_TF_CUDA, /* an NVIDIA GPU, in builds with CUDA (cz_tf_has_cuda()) */
} cz_tf_device;

/**
 * @brief Loads and verifies the weights at @p path (cz_neural_weights_open())
 * and prepares them for the forward pass, choosing the row group of its
 * matrix products for OpenBLAS's thread count at this moment (the
 * OPENBLAS_NUM_THREADS environment variable, or openblas_set_num_threads()
 * called before): the count must not change afterwards (cz_tf_step()
 * refuses to run if it does).
 * @returns the model, freed with cz_tf_free(); or NULL with @p err filled
 * (a missing or corrupt file says so and what to do).
 */
cz_tf_model *cz_tf_load(const char *path, cz_err *err);

/** @brief Frees @p m; NULL-safe. Free its states first. */
void cz_tf_free(cz_tf_model *m);

/** @brief The model's dimensions. @returns a pointer into @p m. */
const cz_tf_config *cz_tf_config_of(const cz_tf_model *m);

/** @brief The verified weights (path, whole-file sha256, model_version). @returns a pointer into @p
 * m. */
const cz_neural_weights *cz_tf_weights(const cz_tf_model *m);

/**
 * @brief How many rows go through each matrix product (chosen at load:
 * the most for which OpenBLAS's result for a row does not depend on the
 * other rows, see transformer.c), for logs and benchmarks.
 */
int cz_tf_batch_chunk(const cz_tf_model *m);

/**
 * @brief A state for up to @p max_batch sequences (slots 0..max_batch-1),
 * each empty, with KV caches for max_seq positions each (about
 * 2 * n_layers * max_seq * d_model floats per slot: 5 MB for neural-1,
 * touched only as positions fill). Its work is shared among @p threads
 * threads (0: the CPUs this process may use, at most 8): attention, and the
 * matrix products when OpenBLAS runs one thread (OPENBLAS_NUM_THREADS=1,
 * the better choice where worker processes share a few cores); with more,
 * OpenBLAS threads each product itself. The results do not depend on
 * @p threads. A state is used by one thread at a time.
 * @returns the state, freed with cz_tf_state_free(); or NULL with @p err
 * when @p max_batch is not in 1..4096 or @p threads not in 0..64 (a thread
 * that cannot start only means fewer threads).
 */
cz_tf_state *cz_tf_state_new(const cz_tf_model *m, int max_batch, int threads, cz_err *err);

/**
 * @brief cz_tf_state_new() on @p device. For CZ_TF_CPU it is that call.
 * For CZ_TF_CUDA the state's caches and scratch live on the GPU (all
 * allocated now: 5 MB a slot for neural-1), @p threads is checked but
 * unused, and the model's weights are uploaded to the GPU by the first
 * CUDA state made from it (under a lock: states may be made in several
 * threads) and stay there until cz_tf_free().
 * @returns the state, freed with cz_tf_state_free(); or NULL with @p err:
 * cz_tf_state_new()'s errors, a build without CUDA ("neural@1: this build
 * has no CUDA support (nvcc was not found when it was built)"), no usable
 * GPU or driver, not enough GPU memory (each says so and what to do).
 */
cz_tf_state *cz_tf_state_new_on(const cz_tf_model *m, int max_batch, int threads,
                                cz_tf_device device, cz_err *err);

/** @brief Whether this build can make CZ_TF_CUDA states (it was built with nvcc). */
int cz_tf_has_cuda(void);

/**
 * @brief Reads a device's name, "cpu" or "cuda" (CADENZA_NEURAL_DEVICE's
 * values; NULL is the default, cpu), into @p out.
 * @returns 0; or -1 with @p err naming the value and the accepted ones.
 */
int cz_tf_device_parse(const char *name, cz_tf_device *out, cz_err *err);

/** @brief "cpu" or "cuda". */
const char *cz_tf_device_name(cz_tf_device device);

/** @brief The device @p s runs on. */
cz_tf_device cz_tf_state_device(const cz_tf_state *s);

/**
 * @brief Rows per matrix product for @p s: cz_tf_batch_chunk() on the CPU,
 * the group measured at upload on the GPU (cuda.cu), for logs and benchmarks.
 */
int cz_tf_state_chunk(const cz_tf_state *s);

/** @brief Stops the state's threads and frees it; NULL-safe. */
void cz_tf_state_free(cz_tf_state *s);

/** @brief Empties @p slot so it can start a new sequence (an out-of-range slot is ignored). */
void cz_tf_slot_reset(cz_tf_state *s, int slot);

/** @brief The number of tokens @p slot holds (its next position). @returns it, or -1 out of range.
 */
int cz_tf_slot_len(const cz_tf_state *s, int slot);

/**
 * @brief One batched forward step: appends @p tokens[i] to slot @p slots[i]
 * for i in 0..n-1 and writes each row's next-token logits to
 * @p logits[i * vocab .. (i + 1) * vocab) (@p logits may be NULL when none
 * are wanted). The projections and the MLP of all n rows are one matrix
 * product each; attention reads each slot's own cache. A slot named twice
 * takes both tokens, in order, as a prefill would. n may be up to
 * max(max_batch, max_seq).
 * @returns 0; or -1 with @p err (a slot or token out of range, a slot
 * already holding max_seq tokens, too many rows; on a GPU state, a CUDA or
 * cuBLAS failure), and then no slot changes.
 */
int cz_tf_step(const cz_tf_model *m, cz_tf_state *s, const int *slots, const int *tokens, int n,
               float *logits, cz_err *err);

/**
 * @brief Appends the @p n tokens of a prompt to @p slot in one forward and
 * writes the logits after each of them to @p logits[i * vocab ...] (NULL:
 * none; the next token's are the last row).
 * @returns 0; or -1 with @p err as cz_tf_step(), nothing changed.
 */
int cz_tf_prefill(const cz_tf_model *m, cz_tf_state *s, int slot, const int *tokens, int n,
                  float *logits, cz_err *err);

#endif
