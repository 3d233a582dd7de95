/* neural@1's memorisation (issue 16): the longest run of consecutive notes,
 * in any transposition, that a generated melody shares with a training
 * piece, over many generated pieces (common/music/melody.h).
 *
 * The references are the training melodies the worker itself guards
 * against (workers/models/neural/weights/neural-1.melodies, written by
 * make model from the training split: one melody per line of it). Pieces
 * are generated through the worker's own code (pieces.h), so what is
 * measured is what is served: with the guard, and again without it, which
 * shows what the model alone would copy. So that the pieces cover the
 * conditioning, piece i gets key and mode from its seed (as a request that
 * names none), tempo band i % 3 and density (i / 3) % 3. A piece's melody
 * is its sections' notes in order, A then B.
 *
 * Prints "name value" lines, each figure once per mode: "guarded_..." and
 * "unguarded_...". With --dump FILE, writes the guarded pieces' sections,
 * one line each in the training split's format (token ids, the
 * conditioning prefix first), A's line then B's line per piece.
 *
 *   memorisation [--dump FILE] [melodies] [weights] [pieces]
 *   (defaults: workers/models/neural/weights/neural-1.melodies and .cztf, 200 pieces) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mem.h"
#include "common/music/melody.h"
#include "common/rand.h"
#include "workers/models/neural/pieces.h"

#define BATCH 16   /* pieces decoded together, as a worker's default max_batch */
#define SEED0 7000 /* piece i's seed is SEED0 + i */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what, const cz_err *err) {
    fprintf(stderr, "memorisation: %s: %s\n", what, err->msg);
    exit(1);
}

static int cmp_int(const void *a, const void *b) {
    return *(const int *)a - *(const int *)b;
}

/* The nearest-rank percentile @p p of the @p n sorted values. */
static int percentile(const int *v, int n, double p) {
    int i = (int)(p * n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

/* Writes piece @p g's sections as token lines. */
static void dump(FILE *f, const cz_neural_gen *g) {
    for (int k = 0; k < CZ_NEURAL_SECTIONS; k++) {
        const cz_neural_seq *sec = &g->sec[k];
        for (int i = 0; i < sec->n; i++)
            fprintf(f, i ? " %d" : "%d", sec->tokens[i]);
        fputc('\n', f);
    }
}

/* Generates @p pieces pieces, with the guard when @p guard, measures each
 * against @p refs and prints the figures under @p mode. */
static void measure(const char *mode, const cz_melody_index *refs, bool guard, const cz_tf_model *m,
                    cz_tf_state *s, int pieces, FILE *out) {
    cz_neural_gen *gens = cz_calloc(BATCH, sizeof *gens);
    cz_neural_sampling d = {m, s, guard ? refs : NULL, NULL, NULL};
    int *shared = cz_malloc(sizeof *shared * (size_t)pieces);
    int *melody = cz_malloc(sizeof *melody * CZ_NEURAL_SECTIONS * CZ_NEURAL_MAX_SEQ);
    int worst = -1, refused = 0;
    cz_melody_match worst_m = {0};
    long long tokens = 0, notes = 0;
    double t_gen = 0, t_query = 0;
    cz_err err;
    for (int first = 0; first < pieces; first += BATCH) {
        int count = pieces - first < BATCH ? pieces - first : BATCH;
        for (int j = 0; j < count; j++) {
            int i = first + j;
            cz_controls none = {.key_root = -1, .mode = -1};
            gens[j] = (cz_neural_gen){.seed = SEED0 + (uint64_t)i};
            cz_neural_cond_from_controls(&none, gens[j].seed, &gens[j].cond);
            gens[j].cond.tempo = (cz_neural_tempo)(i % 3);
            gens[j].cond.density = (cz_neural_density)(i / 3 % 3);
        }
        double t1 = now();
        if (cz_neural_pieces_sample(&d, gens, count, &err))
            die("decoding", &err);
        double t2 = now();
        t_gen += t2 - t1;
        for (int j = 0; j < count; j++) {
            const cz_neural_gen *g = &gens[j];
            if (g->failed)
                die("a piece", &g->err);
            for (int k = 0; k < CZ_NEURAL_SECTIONS; k++)
                tokens += g->sec[k].n, refused += g->sec[k].sampler.refused;
            int n = cz_neural_gen_melody(g, melody);
            notes += n;
            cz_melody_match mm;
            if (cz_melody_index_longest(refs, melody, n, &mm, &err) < 0)
                die("query", &err);
            shared[first + j] = mm.notes;
            if (worst < 0 || mm.notes > worst_m.notes)
                worst = first + j, worst_m = mm;
            if (out)
                dump(out, g);
        }
        t_query += now() - t2;
    }
    qsort(shared, (size_t)pieces, sizeof *shared, cmp_int);
    int over = 0;
    for (int i = 0; i < pieces; i++)
        over += shared[i] > CZ_NEURAL_MAX_SHARED_NOTES;

    printf("%s_pieces %d\n", mode, pieces);
    printf("%s_piece_notes_mean %.1f\n", mode, (double)notes / pieces);
    printf("%s_max_shared_notes %d\n", mode, shared[pieces - 1]);
    printf("%s_p50_shared_notes %d\n", mode, percentile(shared, pieces, 0.50));
    printf("%s_p95_shared_notes %d\n", mode, percentile(shared, pieces, 0.95));
    printf("%s_pieces_over_limit %d\n", mode, over);
    printf("%s_worst_piece_seed %d\n", mode, SEED0 + worst);
    printf("%s_worst_reference_line %s\n", mode, worst_m.name ? worst_m.name : "-");
    printf("%s_guarded_draws %d\n", mode, refused);
    printf("%s_generate_s %.2f\n", mode, t_gen);
    printf("%s_tokens_per_s %.0f\n", mode, tokens / t_gen);
    printf("%s_query_ms_per_piece %.3f\n", mode, t_query * 1e3 / pieces);
    free(melody);
    free(shared);
    free(gens);
}

int main(int argc, char **argv) {
    cz_mem_init();
    const char *dump_path = NULL;
    if (argc > 2 && !strcmp(argv[1], "--dump")) {
        dump_path = argv[2];
        argv += 2, argc -= 2;
    }
    const char *melodies = argc > 1 ? argv[1] : "workers/models/neural/weights/neural-1.melodies";
    const char *weights = argc > 2 ? argv[2] : "workers/models/neural/weights/neural-1.cztf";
    int pieces = argc > 3 ? atoi(argv[3]) : 200;
    if (pieces < 1 || argc > 4) {
        fprintf(stderr, "usage: memorisation [--dump FILE] [melodies] [weights] [pieces >= 1]\n");
        return 2;
    }

    cz_err err;
    double t0 = now();
    cz_melody_index *refs = cz_melody_index_load(melodies, &err);
    if (!refs)
        die("references", &err);
    printf("references %d\n", cz_melody_index_count(refs));
    printf("limit_notes %d\n", CZ_NEURAL_MAX_SHARED_NOTES);
    printf("index_s %.2f\n", now() - t0);

    cz_tf_model *m = cz_tf_load(weights, &err);
    if (!m)
        die("weights", &err);
    if (cz_tf_config_of(m)->max_seq > CZ_NEURAL_MAX_SEQ) {
        fprintf(stderr, "memorisation: %s holds sequences longer than %d tokens\n", weights,
                CZ_NEURAL_MAX_SEQ);
        return 1;
    }
    cz_tf_state *s = cz_tf_state_new(m, BATCH, 0, &err);
    if (!s)
        die("state", &err);
    FILE *out = dump_path ? fopen(dump_path, "w") : NULL;
    if (dump_path && !out) {
        perror(dump_path);
        return 1;
    }
    measure("guarded", refs, true, m, s, pieces, out);
    measure("unguarded", refs, false, m, s, pieces, NULL);
    if (out && fclose(out)) {
        perror(dump_path);
        return 1;
    }
    cz_tf_state_free(s);
    cz_tf_free(m);
    cz_melody_index_free(refs);
    return 0;
}
