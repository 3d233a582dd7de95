/* neural@1's pieces: see pieces.h.
 *
 * Each step, every piece still going draws its next token from the logits
 * its last forward left; a section that ends (EOS, or full) hands its slot
 * to the piece's next section at once: the slot is reset, the next
 * section's prefix prefilled in one forward, and its first token drawn in
 * the same step. Then one cz_tf_step advances every piece that drew. */
#include "workers/models/neural/pieces.h"

#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"
#include "common/rand.h"

/* Starts section gen->at of piece @p g in @p slot: its prefix fed to the
 * grammar and to the model, the model's logits after it into @p logits. */
static int section_start(const cz_neural_sampling *d, cz_neural_gen *g, int slot, float *logits,
                         float *scratch, cz_err *err) {
    const cz_tf_config *cfg = cz_tf_config_of(d->model);
    int k = g->at;
    cz_neural_seq *sec = &g->sec[k];
    cz_neural_cond cond = g->cond;
    cond.section = k == 0 ? CZ_SECTION_A : CZ_SECTION_B;
    sec->n = cz_neural_cond_tokens(&cond, sec->tokens);
    /* Each section its own stream: the same seed gives the same sections. */
    cz_neural_sampler_init(&sec->sampler, cz_splitmix64_mix(g->seed + 0x5EC7104ull * (k + 1)),
                           CZ_NEURAL_TEMPERATURE, CZ_NEURAL_TOP_P, cfg->max_seq,
                           CZ_NEURAL_SECTION_BARS, CZ_NEURAL_SECTION_BARS);
    if (d->refs)
        cz_neural_sampler_guard(&sec->sampler, d->refs, CZ_NEURAL_MAX_SHARED_NOTES,
                                k > 0 ? &g->sec[k - 1].sampler.walk : NULL);
    cz_tf_slot_reset(d->state, slot);
    if (cz_neural_sampler_feed(&sec->sampler, sec->tokens, sec->n, err) ||
        cz_tf_prefill(d->model, d->state, slot, sec->tokens, sec->n, scratch, err))
        return -1;
    memcpy(logits, scratch + (size_t)(sec->n - 1) * cfg->vocab, sizeof(float) * cfg->vocab);
    return 0;
}

/* Whether piece @p g is over: all sections written, stopped or failed. */
static bool over(const cz_neural_gen *g) {
    return g->at >= CZ_NEURAL_SECTIONS || g->stopped || g->failed;
}

/* Draws piece @p g's next token, moving on to its next section when one
 * ends. @returns the token to step its slot with, or -1 when it is over. */
static int draw(const cz_neural_sampling *d, cz_neural_gen *g, int slot, float *logits,
                float *scratch) {
    while (!over(g)) {
        cz_neural_seq *sec = &g->sec[g->at];
        int t = cz_neural_sampler_next(&sec->sampler, logits);
        if (t >= 0)
            sec->tokens[sec->n++] = t;
        if (t >= 0 && t != CZ_TOK_EOS)
            return t;
        if (++g->at < CZ_NEURAL_SECTIONS &&
            section_start(d, g, slot, logits, scratch, &g->err) != 0)
            g->failed = true;
    }
    return -1;
}

int cz_neural_pieces_sample(const cz_neural_sampling *d, cz_neural_gen *gens, int n, cz_err *err) {
    const cz_tf_config *cfg = cz_tf_config_of(d->model);
    size_t v = (size_t)cfg->vocab;
    int *slots = cz_malloc(sizeof *slots * (size_t)n), *next = cz_malloc(sizeof *next * (size_t)n);
    float *logits = cz_malloc(sizeof(float) * v * (size_t)n);
    /* One row per piece stepped, or per prefix token of a prefill. */
    size_t nrows = n > CZ_NEURAL_PREFIX ? (size_t)n : CZ_NEURAL_PREFIX;
    float *rows = cz_malloc(sizeof(float) * v * nrows);
    for (int j = 0; j < n; j++) {
        cz_neural_gen *g = &gens[j];
        g->at = 0;
        g->failed = section_start(d, g, j, logits + j * v, rows, &g->err) != 0;
    }
    int rc = 0;
    for (int steps = 1;; steps++) {
        int m = 0;
        for (int j = 0; j < n; j++) {
            int t = draw(d, &gens[j], j, logits + j * v, rows);
            if (t >= 0)
                slots[m] = j, next[m] = t, m++;
        }
        if (m == 0)
            break;
        if (cz_tf_step(d->model, d->state, slots, next, m, rows, err)) {
            for (int j = 0; j < n; j++)
                if (!over(&gens[j]))
                    gens[j].failed = true, gens[j].err = *err;
            rc = -1;
            break;
        }
        for (int r = 0; r < m; r++)
            memcpy(logits + slots[r] * v, rows + r * v, sizeof(float) * v);
        if (d->check && steps % CZ_NEURAL_STEP_CHECK == 0)
            d->check(d->user, gens, n, steps);
    }
    free(slots);
    free(next);
    free(logits);
    free(rows);
    return rc;
}

int cz_neural_gen_melody(const cz_neural_gen *g, int *out) {
    int n = 0;
    for (int k = 0; k < CZ_NEURAL_SECTIONS; k++)
        for (int i = 0; i < g->sec[k].n; i++)
            if (cz_neural_token_pitch(g->sec[k].tokens[i]) >= 0)
                out[n++] = cz_neural_token_pitch(g->sec[k].tokens[i]);
    return n;
}

cz_melody_index *cz_neural_melodies_load(const char *weights, cz_err *err) {
    cz_buf path = {0};
    size_t stem = strlen(weights);
    if (stem > 5 && !strcmp(weights + stem - 5, ".cztf"))
        stem -= 5;
    cz_buf_appendf(&path, "%.*s.melodies", (int)stem, weights);
    cz_err why;
    cz_melody_index *refs = cz_melody_index_load(path.data, &why);
    if (!refs)
        cz_err_set(err,
                   "neural@1: %s (the training melodies of the weights, which the guard against "
                   "copying needs); restore it from git or run make model",
                   why.msg);
    cz_buf_free(&path);
    return refs;
}
