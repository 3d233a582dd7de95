/* neural@1's weights: a CZTF file (format version 1, docs/models/format.md)
 * opened, verified and mapped read-only. Nothing is copied: the tensors
 * point into the mapping, so every worker process on a machine shares one
 * copy of the pages. */
#ifndef CZ_NEURAL_WEIGHTS_H
#define CZ_NEURAL_WEIGHTS_H

#include <stddef.h>

#include "common/err.h"
#include "common/hash.h"

#define CZ_CZTF_VERSION 1

/** The model's dimensions, from the file's header. */
typedef struct cz_tf_config {
    int vocab;    /* 174 */
    int d_model;  /* width of the residual stream */
    int n_layers; /* transformer blocks */
    int n_heads;  /* attention heads; d_model / n_heads per head */
    int d_ff;     /* width of the MLP */
    int max_seq;  /* positions (learned embeddings) */
    float ln_eps; /* LayerNorm's epsilon */
} cz_tf_config;

/** One block's tensors, PyTorch's [out, in] row-major layout. */
typedef struct cz_tf_layer_weights {
    const float *ln1_w, *ln1_b;     /* [D] */
    const float *wq, *wk, *wv, *wo; /* [D, D] */
    const float *ln2_w, *ln2_b;     /* [D] */
    const float *w1, *b1, *w2, *b2; /* [F, D], [F], [D, F], [D] */
} cz_tf_layer_weights;

/** A verified weights file. */
typedef struct cz_neural_weights {
    char *path;
    cz_tf_config cfg;
    char sha256[CZ_SHA256_HEX]; /* of the whole file: the model's identity in provenance */
    char model_version[16];     /* the header's "model_version" */
    const float *tok_emb;       /* [V, D], also the output head */
    const float *pos_emb;       /* [S, D] */
    const float *lnf_w, *lnf_b; /* [D] */
    cz_tf_layer_weights *layers;
    void *map;
    size_t map_len;
} cz_neural_weights;

/**
 * @brief Opens the weights at @p path: checks the whole file against the
 * sha256 in "<path>.sha256", reads the header (format, version, model,
 * config, vocabulary, tensors), checks the data against the header's
 * data_sha256 and every tensor's shape against the config, and maps it.
 * Errors say what is wrong and what to do: a missing file ("run make model,
 * or restore it from git"), a corrupt one ("sha256 mismatch, the file is
 * corrupt"), an unsupported format version, a vocabulary other than
 * tokens.h's, a tensor missing or of the wrong shape (named).
 * @returns the weights, freed with cz_neural_weights_free(); or NULL with
 * @p err filled.
 */
cz_neural_weights *cz_neural_weights_open(const char *path, cz_err *err);

/** @brief Unmaps and frees @p w; NULL-safe. */
void cz_neural_weights_free(cz_neural_weights *w);

#endif
