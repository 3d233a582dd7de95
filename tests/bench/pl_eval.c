/* Offline evaluation of playlists (tests/bench/bench_playlists_eval.sh runs it).
 *
 * A synthetic catalogue (cli/synth_catalog.c) and synthetic listeners,
 * each with a hidden taste (cz_synth_listener). A listener's history is
 * made from the hidden taste alone, never from the engine's scoring:
 *
 * - affinity of track i = dot(hidden, embedding_i) + 0.1 * popularity_i
 *   + noise (sd 0.05), over the float embeddings the catalogue made;
 * - the listener has heard HEARD tracks, drawn half by popularity (what
 *   charts and radio bring) and half by affinity (what they go looking
 *   for: a softmax at temperature 0.1);
 * - of what they heard, the top 15% by affinity they liked (and
 *   completed), the bottom 3% they disliked (skipped early), the rest they
 *   played, completed with a chance that grows with affinity rank and
 *   otherwise skipped, early more often the lower the rank;
 * - ages are spread over 180 days.
 *
 * A fifth of each listener's likes is held out, with every signal on those
 * tracks; cz_taste_build makes the taste from the rest. Each listener gets
 * a 50-track playlist (no mood or activity, novelty 0.3) from the engine
 * and from its popularity-only baseline (same retrieval pool size, same
 * sequencing rules), and both are scored:
 *
 *   hit rate    share of listeners with at least one held-out like in it
 *   recall      held-out likes in it / held-out likes, averaged
 *   affinity    mean dot(hidden taste, embedding) of its tracks: how well
 *               it fits what the listener really likes, heard or not
 *   diversity   1 - mean pairwise embedding similarity
 *   smoothness  mean |tempo step| / tempo, mean Camelot distance, and the
 *               share of transitions within the rules (must be 100%)
 *
 * Then one line per activity: 50 tracks for each listener, the mean
 * |energy - the arc's target| of both.
 *
 *   pl_eval [tracks] [listeners]
 * Exits 1 when any transition breaks the rules. Deterministic. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/synth_catalog.h"
#include "common/playlist/engine.h"

#define SEED 0xCADE2A11ull
#define HEARD 300
#define LIKED_SHARE 0.15
#define DISLIKED_SHARE 0.03
#define HOLD_OUT 0.2
#define LENGTH 50
#define NOVELTY 0.3

typedef struct catalogue {
    long n;
    float *emb; /* n * CZ_EMBED_DIM, as made (float, unit) */
    double *cum_pop;
    cz_track_index *ix;
} catalogue;

static float dotf(const float *a, const float *b) {
    float s = 0;
    for (int d = 0; d < CZ_EMBED_DIM; d++)
        s += a[d] * b[d];
    return s;
}

/* The first position whose cumulative weight exceeds @p x. */
static long draw(const double *cum, long n, double x) {
    long lo = 0, hi = n - 1;
    while (lo < hi) {
        long mid = (lo + hi) / 2;
        if (cum[mid] > x)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

typedef struct heard {
    uint32_t track;
    float affinity;
} heard;

static int by_affinity_desc(const void *a, const void *b) {
    float x = ((const heard *)a)->affinity, y = ((const heard *)b)->affinity;
    if (x != y)
        return x < y ? 1 : -1;
    return ((const heard *)a)->track < ((const heard *)b)->track ? -1 : 1;
}

/* One listener's history from the hidden taste @p h. Fills @p sig (kept
 * signals) and @p held (held-out likes). */
static void history(const catalogue *c, long u, const float *h, double *aff, double *cum,
                    unsigned char *mark, cz_signal *sig, int *n_sig, uint32_t *held, int *n_held) {
    uint64_t st = SEED ^ (0x51ED270B27D1A5ull * (uint64_t)(u + 1));
    double total = 0;
    for (long i = 0; i < c->n; i++) {
        aff[i] = dotf(h, c->emb + i * CZ_EMBED_DIM) + 0.1 * c->ix->popularity[i] +
                 0.05 * cz_synth_gauss(&st);
        total += exp(aff[i] / 0.1);
        cum[i] = total;
    }
    heard hs[HEARD];
    int nh = 0;
    while (nh < HEARD) {
        long i = cz_synth_uniform(&st) < 0.5
                     ? draw(c->cum_pop, c->n, cz_synth_uniform(&st) * c->cum_pop[c->n - 1])
                     : draw(cum, c->n, cz_synth_uniform(&st) * total);
        if (mark[i])
            continue;
        mark[i] = 1;
        hs[nh++] = (heard){(uint32_t)i, (float)aff[i]};
    }
    for (int k = 0; k < nh; k++)
        mark[hs[k].track] = 0;
    qsort(hs, (size_t)nh, sizeof *hs, by_affinity_desc);
    int likes = (int)(LIKED_SHARE * nh), dislikes = (int)(DISLIKED_SHARE * nh);
    *n_sig = *n_held = 0;
    for (int k = 0; k < nh; k++) {
        uint32_t t = hs[k].track;
        double r = (double)k / nh, age = cz_synth_uniform(&st) * 180 * 86400.0;
        if (k < likes) {
            if (cz_synth_uniform(&st) < HOLD_OUT) {
                held[(*n_held)++] = t;
                continue;
            }
            sig[(*n_sig)++] = (cz_signal){t, CZ_SIGNAL_COMPLETE, -1, age};
            sig[(*n_sig)++] = (cz_signal){t, CZ_SIGNAL_LIKE, -1, age};
        } else if (k >= nh - dislikes) {
            sig[(*n_sig)++] = (cz_signal){t, CZ_SIGNAL_SKIP, 10, age};
            sig[(*n_sig)++] = (cz_signal){t, CZ_SIGNAL_DISLIKE, -1, age};
        } else if (cz_synth_uniform(&st) < 1 - r) {
            sig[(*n_sig)++] = (cz_signal){t, CZ_SIGNAL_COMPLETE, -1, age};
        } else {
            float at = cz_synth_uniform(&st) < r ? 10 : 120;
            sig[(*n_sig)++] = (cz_signal){t, CZ_SIGNAL_SKIP, at, age};
        }
    }
}

typedef struct score {
    double hits, recall, affinity, diversity, tempo_step, key_step, arc;
    long transitions, within, tracks, playlists;
} score;

/* Adds playlist @p p's figures to @p s. */
static void measure(const catalogue *c, const cz_playlist_request *rq, const cz_playlist *p,
                    const float *h, const uint32_t *held, int n_held, score *s) {
    const cz_track_index *ix = c->ix;
    int found = 0;
    double aff = 0, sim = 0, arc = 0;
    long pairs = 0;
    for (int k = 0; k < p->n; k++) {
        uint32_t i = p->items[k].track;
        for (int j = 0; j < n_held; j++)
            found += held[j] == i;
        aff += dotf(h, c->emb + (size_t)i * CZ_EMBED_DIM);
        arc += fabsf(ix->energy[i] - cz_playlist_arc(rq->activity, rq->mood, k, p->n));
        for (int j = 0; j < k; j++, pairs++)
            sim += dotf(c->emb + (size_t)i * CZ_EMBED_DIM,
                        c->emb + (size_t)p->items[j].track * CZ_EMBED_DIM);
        if (k == 0)
            continue;
        uint32_t prev = p->items[k - 1].track;
        float step = fabsf(ix->tempo[i] - ix->tempo[prev]) / ix->tempo[prev];
        int key = cz_camelot_distance(ix->key[prev], ix->mode[prev], ix->key[i], ix->mode[i]);
        bool ok = step <= CZ_PLAYLIST_TEMPO_STEP + 1e-6f && key <= CZ_PLAYLIST_KEY_STEP;
        for (int j = k - 1; j >= 0 && j > k - CZ_PLAYLIST_WINDOW; j--) {
            uint32_t o = p->items[j].track;
            ok = ok && ix->artist[o] != ix->artist[i] &&
                 cz_track_index_similarity(ix, o, i) < CZ_PLAYLIST_NEAR_DUP;
        }
        s->tempo_step += step;
        s->key_step += key;
        s->transitions++;
        s->within += ok;
    }
    s->hits += found > 0;
    s->recall += n_held ? (double)found / n_held : 0;
    s->affinity += p->n ? aff / p->n : 0;
    s->diversity += pairs ? 1 - sim / (double)pairs : 0;
    s->arc += p->n ? arc / p->n : 0;
    s->tracks += p->n;
    s->playlists++;
}

static double ratio(double a, double b) {
    return b > 0 ? a / b : INFINITY;
}

static void row(const char *name, double a, double b, const char *fmt, bool show_ratio) {
    char x[32], y[32];
    snprintf(x, sizeof x, fmt, a);
    snprintf(y, sizeof y, fmt, b);
    if (show_ratio)
        printf("  %-40s %12s %12s %9.2fx\n", name, x, y, ratio(a, b));
    else
        printf("  %-40s %12s %12s\n", name, x, y);
}

int main(int argc, char **argv) {
    long n = argc > 1 ? atol(argv[1]) : 20000, users = argc > 2 ? atol(argv[2]) : 500;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    catalogue c = {.n = n,
                   .emb = malloc((size_t)n * CZ_EMBED_DIM * sizeof(float)),
                   .cum_pop = malloc((size_t)n * sizeof(double)),
                   .ix = cz_track_index_new()};
    double *aff = malloc((size_t)n * sizeof *aff), *cum = malloc((size_t)n * sizeof *cum);
    unsigned char *mark = calloc((size_t)n, 1);
    if (n < 1000 || users < 1 || !c.emb || !c.cum_pop || !c.ix || !aff || !cum || !mark) {
        fprintf(stderr, "usage: pl_eval [tracks >= 1000] [listeners >= 1] (or out of memory)\n");
        return 2;
    }
    cz_err err;
    double pop = 0;
    for (long i = 0; i < n; i++) {
        cz_synth_track t;
        cz_synth_track_make(SEED, n, i, &t);
        if (cz_track_index_add(c.ix, t.id, NULL, t.title, t.artist, &t.f, t.popularity, &err) !=
            i) {
            fprintf(stderr, "pl_eval: %s\n", err.msg);
            return 1;
        }
        memcpy(c.emb + i * CZ_EMBED_DIM, t.f.embedding, sizeof t.f.embedding);
        pop += t.popularity;
        c.cum_pop[i] = pop;
    }

    score mine = {0}, base = {0};
    score ctx_mine[16] = {{0}}, ctx_base[16] = {{0}};
    cz_signal sig[2 * HEARD];
    uint32_t held[HEARD];
    long held_total = 0, signals_total = 0;
    for (long u = 0; u < users; u++) {
        float h[CZ_EMBED_DIM];
        cz_synth_listener(SEED, u, h);
        int n_sig, n_held;
        history(&c, u, h, aff, cum, mark, sig, &n_sig, held, &n_held);
        held_total += n_held, signals_total += n_sig;
        cz_taste taste;
        cz_taste_build(c.ix, sig, n_sig, &taste);
        for (int a = -1; a < 0 || cz_playlist_activities[a]; a++)
            for (int b = 0; b < 2; b++) {
                cz_playlist_request rq = {.activity = a < 0 ? NULL : cz_playlist_activities[a],
                                          .length_tracks = LENGTH,
                                          .novelty = NOVELTY,
                                          .popularity_only = b};
                cz_playlist p;
                cz_playlist_build(c.ix, &rq, &taste, &p);
                score *s = a < 0 ? (b ? &base : &mine) : b ? &ctx_base[a] : &ctx_mine[a];
                measure(&c, &rq, &p, h, held, n_held, s);
                cz_playlist_free(&p);
            }
        cz_taste_free(&taste);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;

    double U = (double)users;
    printf("== playlists: offline evaluation, %ld synthetic listeners, %ld synthetic tracks\n",
           users, n);
    printf("   %d-track playlists, no mood or activity, novelty %.1f; %.1f signals and %.1f "
           "held-out likes a listener\n",
           LENGTH, NOVELTY, (double)signals_total / U, (double)held_total / U);
    printf("  %-40s %12s %12s %10s\n", "", "personalised", "popularity", "ratio");
    row("hit rate (a held-out like in the list)", mine.hits / U, base.hits / U, "%.3f", true);
    row("recall of held-out likes", mine.recall / U, base.recall / U, "%.4f", true);
    row("mean hidden affinity of the tracks", mine.affinity / U, base.affinity / U, "%.3f", false);
    row("intra-list diversity", mine.diversity / U, base.diversity / U, "%.3f", false);
    row("mean |tempo step| / tempo", mine.tempo_step / (double)mine.transitions,
        base.tempo_step / (double)base.transitions, "%.4f", false);
    row("mean Camelot distance", mine.key_step / (double)mine.transitions,
        base.key_step / (double)base.transitions, "%.3f", false);
    row("transitions within the rules (%)", 100.0 * (double)mine.within / (double)mine.transitions,
        100.0 * (double)base.within / (double)base.transitions, "%.2f", false);
    row("tracks per playlist", (double)mine.tracks / U, (double)base.tracks / U, "%.1f", false);
    printf("  by activity, %d tracks: mean |energy - arc target|, then mean hidden affinity\n",
           LENGTH);
    long broken = (mine.transitions - mine.within) + (base.transitions - base.within);
    for (int a = 0; cz_playlist_activities[a]; a++) {
        const score *m = &ctx_mine[a], *b = &ctx_base[a];
        printf("  %-12s arc fit %6.3f   baseline %6.3f   affinity %6.3f   baseline %6.3f   "
               "tracks %5.1f %5.1f\n",
               cz_playlist_activities[a], m->arc / U, b->arc / U, m->affinity / U, b->affinity / U,
               (double)m->tracks / U, (double)b->tracks / U);
        broken += (m->transitions - m->within) + (b->transitions - b->within);
    }
    printf("  %-40s %12.1f s\n", "evaluation time", secs);
    if (broken)
        printf("!! %ld transitions break the tempo, key or repeat rules\n", broken);
    free(aff), free(cum), free(mark), free(c.emb), free(c.cum_pop);
    cz_track_index_free(c.ix);
    return broken ? 1 : 0;
}
