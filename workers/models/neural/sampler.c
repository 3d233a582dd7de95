/* neural@1's sampler: see sampler.h.
 *
 * A draw masks the tokens the grammar forbids, scales the rest by the
 * temperature and takes exp(z - max) in double, sorts them by probability
 * (ties by id, so the order, and therefore the draw, never depends on the
 * sort's whims), keeps the smallest prefix whose mass reaches top_p of the
 * total, and walks that prefix with one uniform from splitmix64. The
 * grammar's allowed() already guarantees that the sequence can stop in
 * time (EOS, or full between events), so the sampler never forces a token.
 *
 * The guard walks the melody through the references' suffix automaton
 * (melody.h): before a draw, each allowed PITCH token is tried on a copy of
 * the walk, and the ones whose run would grow past the limit are masked.
 * That costs at most one automaton step per pitch (61) per draw, and only
 * where a pitch may come next. The mask changes only which tokens may be
 * drawn, never the stream, so the same seed still gives the same tokens. */
#include "workers/models/neural/sampler.h"

#include <math.h>
#include <stdlib.h>

#include "common/rand.h"

typedef struct cand {
    double p;
    int id;
} cand;

static int by_prob(const void *a, const void *b) {
    const cand *x = a, *y = b;
    if (x->p != y->p)
        return x->p > y->p ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int cz_neural_sample(const float *logits, int vocab, const bool *allowed, double temperature,
                     double top_p, uint64_t *rng) {
    double u = cz_rand_unit(cz_splitmix64_next(rng));
    if (vocab < 1 || vocab > CZ_TOK_VOCAB)
        return -1;
    cand c[CZ_TOK_VOCAB];
    int n = 0;
    double max = -INFINITY;
    for (int i = 0; i < vocab; i++) {
        if (allowed && !allowed[i])
            continue;
        c[n].id = i;
        c[n].p = isfinite(logits[i]) ? logits[i] : -INFINITY;
        if (c[n].p > max)
            max = c[n].p;
        n++;
    }
    if (n == 0)
        return -1;
    if (max == -INFINITY) // no allowed token has a usable logit
        return c[(int)(u * n)].id;
    if (temperature <= 0) {
        int best = 0;
        for (int i = 1; i < n; i++)
            if (c[i].p > c[best].p)
                best = i;
        return c[best].id;
    }
    double total = 0;
    for (int i = 0; i < n; i++) {
        c[i].p = exp((c[i].p - max) / temperature);
        total += c[i].p;
    }
    qsort(c, (size_t)n, sizeof *c, by_prob);
    int keep = 0;
    double mass = 0;
    while (keep < n && (keep == 0 || mass < top_p * total))
        mass += c[keep++].p;
    double at = u * mass;
    for (int i = 0; i < keep; i++) {
        at -= c[i].p;
        if (at < 0)
            return c[i].id;
    }
    return c[keep - 1].id; // rounding left a sliver at the end
}

/* Masks the allowed PITCH tokens that would make the shared run too long;
 * leaves @p allowed as it was if that would mask everything. */
static void guard(cz_neural_sampler *s, bool allowed[CZ_TOK_VOCAB]) {
    bool refused[CZ_TOK_VOCAB] = {false};
    int left = 0, n_refused = 0;
    for (int t = 0; t < CZ_TOK_VOCAB; t++) {
        if (!allowed[t])
            continue;
        int p = cz_neural_token_pitch(t);
        refused[t] = p >= 0 && cz_melody_walk_peek(s->refs, &s->walk, p) > s->max_shared;
        n_refused += refused[t];
        left += !refused[t];
    }
    if (n_refused == 0)
        return;
    if (left == 0) {
        s->unguarded++;
        return;
    }
    s->refused++;
    for (int t = 0; t < CZ_TOK_VOCAB; t++)
        allowed[t] = allowed[t] && !refused[t];
}

/* Records token @p t in the melody's walk, when there is a guard. */
static void walk(cz_neural_sampler *s, int t) {
    if (s->refs && cz_neural_token_pitch(t) >= 0)
        cz_melody_walk_push(s->refs, &s->walk, cz_neural_token_pitch(t));
}

void cz_neural_sampler_init(cz_neural_sampler *s, uint64_t seed, double temperature, double top_p,
                            int max_len, int min_bars, int max_bars) {
    cz_neural_grammar_init(&s->grammar, max_len, min_bars, max_bars);
    s->rng = seed;
    s->temperature = temperature;
    s->top_p = top_p;
    s->refs = NULL;
    s->max_shared = 0;
    s->walk = CZ_MELODY_WALK_START;
    s->refused = s->unguarded = 0;
}

void cz_neural_sampler_guard(cz_neural_sampler *s, const cz_melody_index *refs, int max_notes,
                             const cz_melody_walk *from) {
    s->refs = refs;
    s->max_shared = max_notes;
    s->walk = from ? *from : CZ_MELODY_WALK_START;
}

int cz_neural_sampler_feed(cz_neural_sampler *s, const int *tokens, int n, cz_err *err) {
    for (int i = 0; i < n; i++) {
        cz_err why;
        if (cz_neural_grammar_push(&s->grammar, tokens[i], &why) < 0)
            return cz_err_set(err, "neural@1: the prompt does not parse at token %d: %s", i,
                              why.msg);
        walk(s, tokens[i]);
    }
    return 0;
}

int cz_neural_sampler_next(cz_neural_sampler *s, const float *logits) {
    bool allowed[CZ_TOK_VOCAB];
    if (!cz_neural_grammar_allowed(&s->grammar, allowed))
        return -1; // after EOS, or full
    if (s->refs)
        guard(s, allowed);
    int tok = cz_neural_sample(logits, CZ_TOK_VOCAB, allowed, s->temperature, s->top_p, &s->rng);
    if (tok >= 0) {
        cz_neural_grammar_push(&s->grammar, tok, NULL);
        walk(s, tok);
    }
    return tok;
}

bool cz_neural_sampler_done(const cz_neural_sampler *s) {
    return cz_neural_grammar_done(&s->grammar);
}
