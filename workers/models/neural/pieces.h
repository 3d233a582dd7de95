/* neural@1's pieces: a piece is CZ_NEURAL_SECTIONS sections (A, then B)
 * of CZ_NEURAL_SECTION_BARS bars, each one sequence of tokens sampled under
 * the grammar and, given reference melodies, the melody guard (sampler.h).
 * Many pieces are decoded together, one slot of the transformer's state
 * each, so that one batched forward step (cz_tf_step) advances them all.
 *
 * The sections of a piece are decoded in turn in its slot: section B
 * starts when A ends, its guard picking up where A's melody left off, so
 * that no run of notes across the two copies a reference either. Each
 * section samples from its own stream, seeded from the piece's seed and
 * the section, so a piece's tokens depend on its seed and conditioning
 * only, never on the pieces beside it.
 *
 * The worker (neural.c) and the memorisation benchmark decode through
 * this one function, so what is measured is what is served. */
#ifndef CZ_NEURAL_PIECES_H
#define CZ_NEURAL_PIECES_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/music/melody.h"
#include "workers/models/neural/sampler.h"
#include "workers/models/neural/tokens.h"
#include "workers/models/neural/transformer.h"

#define CZ_NEURAL_SECTIONS 2
#define CZ_NEURAL_SECTION_BARS 8
#define CZ_NEURAL_MAX_SEQ 512   /* the longest sequence a weights file may hold */
#define CZ_NEURAL_STEP_CHECK 16 /* steps between two calls of the decoder's check */
#define CZ_NEURAL_EXPECT_STEPS (CZ_NEURAL_SECTIONS * CZ_NEURAL_SECTION_BARS * 20) /* a piece's */

/** One section: its tokens (the conditioning prefix first) and its sampler. */
typedef struct cz_neural_seq {
    int tokens[CZ_NEURAL_MAX_SEQ];
    int n;
    cz_neural_sampler sampler;
} cz_neural_seq;

/** One piece being decoded. */
typedef struct cz_neural_gen {
    /* set by the caller */
    cz_neural_cond cond; /* the piece's conditioning; the section is set per section */
    uint64_t seed;
    /* set by decoding */
    cz_neural_seq sec[CZ_NEURAL_SECTIONS];
    int at;       /* the section being decoded; CZ_NEURAL_SECTIONS once all are */
    bool stopped; /* set by the check to end the piece early (canceled) */
    bool failed;  /* a section could not start: err says why */
    cz_err err;
} cz_neural_gen;

/** What decodes: the model, a state with a slot per piece, the guard's references. */
typedef struct cz_neural_sampling {
    const cz_tf_model *model;
    cz_tf_state *state;          /* pieces use slots 0..n-1 */
    const cz_melody_index *refs; /* melodies not to copy; NULL: no guard */
    /* Called every CZ_NEURAL_STEP_CHECK steps (NULL: never): may set a
     * piece's stopped, which leaves the batch at once. */
    void (*check)(void *user, cz_neural_gen *gens, int n, int steps);
    void *user;
} cz_neural_sampling;

/**
 * @brief Decodes the @p n pieces at @p gens (n at most the state's slots
 * and 1..4096), each to its end, stopped or failed: per step, every piece
 * still going draws one token and one batched forward step advances them.
 * @returns 0; or -1 with @p err when a forward step failed (then every
 * piece not yet over is marked failed, with the same error).
 */
int cz_neural_pieces_sample(const cz_neural_sampling *d, cz_neural_gen *gens, int n, cz_err *err);

/**
 * @brief Loads the training melodies that go with the weights at
 * @p weights, which the guard needs: the CZML file of the same name with
 * ".melodies" for ".cztf" (cz_melody_index_load()).
 * @returns the index; or NULL with @p err saying what is wrong and what to
 * do (restore it from git, or run make model).
 */
cz_melody_index *cz_neural_melodies_load(const char *weights, cz_err *err);

/** @brief Appends the MIDI pitches of the piece's PITCH tokens, section by section, to @p out
 * (room for CZ_NEURAL_SECTIONS * CZ_NEURAL_MAX_SEQ). @returns how many. */
int cz_neural_gen_melody(const cz_neural_gen *g, int *out);

#endif
