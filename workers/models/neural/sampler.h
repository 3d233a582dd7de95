/* neural@1's sampler: temperature and top-p (nucleus) sampling from a
 * seeded splitmix64 stream, constrained by the grammar of tokens.h so that
 * every sequence it makes parses, and, when given reference melodies, by a
 * guard against copying them: no melody it writes shares a run of more
 * than CZ_NEURAL_MAX_SHARED_NOTES notes, in any key, with one of them. */
#ifndef CZ_NEURAL_SAMPLER_H
#define CZ_NEURAL_SAMPLER_H

#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/music/melody.h"
#include "workers/models/neural/tokens.h"

#define CZ_NEURAL_TEMPERATURE 1.0 /* defaults of a request that names none */
#define CZ_NEURAL_TOP_P 0.95
/* The longest run of notes a guarded melody may share with a reference. */
#define CZ_NEURAL_MAX_SHARED_NOTES 12

/**
 * @brief Draws one token from @p logits (@p vocab of them, at most
 * CZ_TOK_VOCAB) among those @p allowed marks (NULL: all): logits divided by
 * @p temperature, softmax, the smallest set of most probable tokens whose
 * probability reaches @p top_p (at least one; ties in id order),
 * renormalised, and one uniform from the stream at *@p rng. A temperature
 * of 0 or less is greedy (the most probable allowed token). Logits that are
 * not finite count as impossible; when every allowed one is, the draw is
 * uniform over the allowed tokens. Each call takes exactly one number from
 * the stream, so the same seed gives the same tokens.
 * @returns the token, or -1 when nothing is allowed (or @p vocab is out of range).
 */
int cz_neural_sample(const float *logits, int vocab, const bool *allowed, double temperature,
                     double top_p, uint64_t *rng);

/** One sequence being sampled: its grammar, its stream and its settings. */
typedef struct cz_neural_sampler {
    cz_neural_grammar grammar;
    uint64_t rng; /* splitmix64 state, from the job's seed */
    double temperature, top_p;
    const cz_melody_index *refs; /* melodies not to copy (cz_neural_sampler_guard); NULL: none */
    int max_shared;              /* the longest run of notes the melody may share with one */
    cz_melody_walk walk;         /* the melody so far (its PITCH tokens) against refs */
    int refused;                 /* draws in which the guard refused at least one pitch */
    int unguarded;               /* draws it let through because it would have refused all */
} cz_neural_sampler;

/**
 * @brief Starts a sequence of at most @p max_len tokens (the model's
 * max_seq) that may end with EOS after @p min_bars bars and holds at most
 * @p max_bars (0: any), sampled from the stream seeded with @p seed (see
 * cz_neural_grammar_init()).
 */
void cz_neural_sampler_init(cz_neural_sampler *s, uint64_t seed, double temperature, double top_p,
                            int max_len, int min_bars, int max_bars);

/**
 * @brief Guards the melody of the sequence (its PITCH tokens in order, fed
 * or sampled from now on, after the notes @p from stands for) against the
 * reference melodies @p refs: a draw refuses every PITCH token that would
 * make the melody share a run of more than @p max_notes notes with one of
 * them, transposed or not (melody.h). Only the intervals that continue
 * the whole shared run are refused, so the grammar always keeps a choice;
 * if ever it had none, the draw would go ahead unguarded (counted in
 * unguarded). @p from is where an earlier section's melody ended, so that
 * a run across the two is seen (NULL: a melody of its own). @p refs must
 * outlive the sampler.
 */
void cz_neural_sampler_guard(cz_neural_sampler *s, const cz_melody_index *refs, int max_notes,
                             const cz_melody_walk *from);

/**
 * @brief Feeds tokens the caller wrote itself (the conditioning prefix of
 * cz_neural_cond_tokens(), or a piece to continue) through the grammar.
 * @returns 0; or -1 with @p err when they do not parse.
 */
int cz_neural_sampler_feed(cz_neural_sampler *s, const int *tokens, int n, cz_err *err);

/**
 * @brief Samples the next token from @p logits (the model's output after
 * the last token fed or sampled) among those the grammar allows, and
 * records it.
 * @returns the token (CZ_TOK_EOS ends the sequence), or -1 when the
 * sequence is over: after EOS, or full (max_len reached between events:
 * the section goes on in a new sequence after the same prefix).
 */
int cz_neural_sampler_next(cz_neural_sampler *s, const float *logits);

/** @brief Whether the sequence is over (EOS, or full): cz_neural_grammar_done(). */
bool cz_neural_sampler_done(const cz_neural_sampler *s);

#endif
