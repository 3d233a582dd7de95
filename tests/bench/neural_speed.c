/* neural@1's decoding speed: tokens per second at batch 1, 8 and 32 for a
 * weights file, the way dynamic batching decodes (a prefill of each
 * sequence's conditioning, then one batched cz_tf_step per token, with the
 * grammar-constrained sampler choosing every token). Each batch decodes
 * STEPS tokens per sequence (min_bars keeps them from ending early; a
 * sequence that ends anyway starts again in its slot). It also checks that
 * batching does not change a sequence: the first sequence of batch 32 must
 * sample the same tokens as batch 1 with the same seed, and it prints the
 * largest difference between their logits. Prints "name value" lines.
 *
 * It also times what a job at batch 1 waits for: one whole piece (both
 * sections, guard on) decoded as the worker decodes it (pieces.h). A piece
 * is the same 16 bars whatever the track's length (the arranger repeats
 * and varies them), so this is the symbolic part of a 3-minute track too.
 *
 * Each batch size runs once per round, the rounds interleaved, and the best
 * round counts, so a neighbour's burst of work on a shared machine does not
 * decide the figure; tokens per CPU-second (all threads) are printed too.
 *
 *   neural_speed [weights] [steps] [rounds]
 *   (default workers/models/neural/weights/neural-1.cztf, 256 steps, 3 rounds)
 *
 * CADENZA_NEURAL_DEVICE=cuda, as for the worker, measures the GPU forward
 * pass instead (builds with CUDA; tools/cuda_check.sh runs both). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mem.h"
#include "workers/models/neural/pieces.h"
#include "workers/models/neural/sampler.h"
#include "workers/models/neural/transformer.h"

#define MAX_B 32

static double clock_s(clockid_t id) {
    struct timespec t;
    clock_gettime(id, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double now(void) {
    return clock_s(CLOCK_MONOTONIC);
}

typedef struct run {
    double tokens_per_s, cpu_tokens_per_s; /* best of the rounds */
    int first[1024];                       /* slot 0's sampled tokens */
    float *first_logits;                   /* slot 0's logits at every step */
} run;

static void start(const cz_tf_model *m, cz_tf_state *s, cz_neural_sampler *smp, int slot,
                  uint64_t seed, float *last) {
    const cz_tf_config *c = cz_tf_config_of(m);
    cz_neural_cond cond = {(int)(seed % 12), CZ_MODE_MAJ,    CZ_METER_4_4,
                           CZ_TEMPO_MID,     CZ_DENSITY_MID, CZ_SECTION_A};
    int pre[CZ_NEURAL_PREFIX];
    cz_neural_cond_tokens(&cond, pre);
    cz_neural_sampler_init(smp, seed, CZ_NEURAL_TEMPERATURE, CZ_NEURAL_TOP_P, c->max_seq, 64, 0);
    cz_neural_sampler_feed(smp, pre, CZ_NEURAL_PREFIX, NULL);
    float out[CZ_NEURAL_PREFIX * CZ_TOK_VOCAB];
    cz_err err;
    cz_tf_slot_reset(s, slot);
    if (cz_tf_prefill(m, s, slot, pre, CZ_NEURAL_PREFIX, out, &err) < 0) {
        fprintf(stderr, "neural_speed: %s\n", err.msg);
        exit(1);
    }
    memcpy(last, out + (CZ_NEURAL_PREFIX - 1) * CZ_TOK_VOCAB, sizeof(float) * CZ_TOK_VOCAB);
}

static cz_tf_device device; /* CADENZA_NEURAL_DEVICE */
static int chunk;           /* rows per matrix product of the states on it */

static void decode(const cz_tf_model *m, int batch, int steps, run *r) {
    cz_err err;
    cz_tf_state *s = cz_tf_state_new_on(m, batch, 0, device, &err);
    if (!s) {
        fprintf(stderr, "neural_speed: %s\n", err.msg);
        exit(1);
    }
    chunk = cz_tf_state_chunk(s);
    cz_neural_sampler smp[MAX_B];
    float *last = cz_malloc(sizeof(float) * MAX_B * CZ_TOK_VOCAB);
    float *logits = cz_malloc(sizeof(float) * MAX_B * CZ_TOK_VOCAB);
    for (int i = 0; i < batch; i++)
        start(m, s, &smp[i], i, 1000 + (uint64_t)i, last + i * CZ_TOK_VOCAB);
    int slots[MAX_B], toks[MAX_B];
    double t0 = now(), c0 = clock_s(CLOCK_PROCESS_CPUTIME_ID);
    for (int step = 0; step < steps; step++) {
        for (int i = 0; i < batch; i++) {
            int t = cz_neural_sampler_next(&smp[i], last + i * CZ_TOK_VOCAB);
            if (t < 0 || t == CZ_TOK_EOS) { // over (full, or EOS): a new sequence
                start(m, s, &smp[i], i, 5000 + (uint64_t)step * MAX_B + i, last + i * CZ_TOK_VOCAB);
                t = cz_neural_sampler_next(&smp[i], last + i * CZ_TOK_VOCAB);
            }
            slots[i] = i, toks[i] = t;
            if (i == 0 && step < 1024)
                r->first[step] = t;
        }
        if (cz_tf_step(m, s, slots, toks, batch, logits, &err) < 0) {
            fprintf(stderr, "neural_speed: %s\n", err.msg);
            exit(1);
        }
        memcpy(last, logits, sizeof(float) * batch * CZ_TOK_VOCAB);
        if (r->first_logits)
            memcpy(r->first_logits + (size_t)step * CZ_TOK_VOCAB, logits,
                   sizeof(float) * CZ_TOK_VOCAB);
    }
    double tps = (double)batch * steps / (now() - t0);
    double cps = (double)batch * steps / (clock_s(CLOCK_PROCESS_CPUTIME_ID) - c0);
    r->tokens_per_s = tps > r->tokens_per_s ? tps : r->tokens_per_s;
    r->cpu_tokens_per_s = cps > r->cpu_tokens_per_s ? cps : r->cpu_tokens_per_s;
    free(last);
    free(logits);
    cz_tf_state_free(s);
}

/* The best of @p rounds times to decode one piece at batch 1, in ms. */
static double piece_ms(const cz_tf_model *m, const char *weights, int rounds) {
    cz_err err;
    cz_melody_index *refs = cz_neural_melodies_load(weights, &err);
    cz_tf_state *s = refs ? cz_tf_state_new(m, 1, 0, &err) : NULL;
    if (!s) {
        fprintf(stderr, "neural_speed: %s\n", err.msg);
        exit(1);
    }
    cz_neural_gen *g = cz_calloc(1, sizeof *g);
    cz_controls none = {.key_root = -1, .mode = -1};
    double best = INFINITY;
    for (int r = 0; r < rounds; r++) {
        *g = (cz_neural_gen){.seed = 900 + (uint64_t)r};
        cz_neural_cond_from_controls(&none, g->seed, &g->cond);
        cz_neural_sampling d = {m, s, refs, NULL, NULL};
        double t0 = now();
        if (cz_neural_pieces_sample(&d, g, 1, &err)) {
            fprintf(stderr, "neural_speed: %s\n", err.msg);
            exit(1);
        }
        best = fmin(best, (now() - t0) * 1e3);
    }
    free(g);
    cz_tf_state_free(s);
    cz_melody_index_free(refs);
    return best;
}

int main(int argc, char **argv) {
    cz_mem_init();
    const char *path = argc > 1 ? argv[1] : "workers/models/neural/weights/neural-1.cztf";
    int steps = argc > 2 ? atoi(argv[2]) : 256;
    int rounds = argc > 3 ? atoi(argv[3]) : 3;
    cz_err err;
    if (cz_tf_device_parse(getenv("CADENZA_NEURAL_DEVICE"), &device, &err)) {
        fprintf(stderr, "neural_speed: %s\n", err.msg);
        return 1;
    }
    double t0 = now();
    cz_tf_model *m = cz_tf_load(path, &err);
    if (!m) {
        fprintf(stderr, "neural_speed: %s\n", err.msg);
        return 1;
    }
    const cz_tf_config *c = cz_tf_config_of(m);
    if (steps < 1 || steps > c->max_seq - CZ_NEURAL_PREFIX)
        steps = c->max_seq - CZ_NEURAL_PREFIX;
    printf("neural_load_ms %.1f\n", (now() - t0) * 1e3);
    printf("neural_params_m %.2f\n",
           ((double)c->vocab * c->d_model + (double)c->max_seq * c->d_model +
            c->n_layers * (4.0 * c->d_model * c->d_model + 2.0 * c->d_model * c->d_ff + c->d_ff +
                           5.0 * c->d_model) +
            2.0 * c->d_model) /
               1e6);
    printf("neural_steps %d\n", steps);
    printf("neural_device %s\n", cz_tf_device_name(device));
    static run runs[3];
    const int batches[3] = {1, 8, 32};
    runs[0].first_logits = cz_malloc(sizeof(float) * steps * CZ_TOK_VOCAB);
    runs[2].first_logits = cz_malloc(sizeof(float) * steps * CZ_TOK_VOCAB);
    decode(m, 1, steps < 16 ? steps : 16, &runs[0]); // warm-up: pages, threads
    runs[0].tokens_per_s = runs[0].cpu_tokens_per_s = 0;
    for (int round = 0; round < rounds; round++)
        for (int b = 0; b < 3; b++)
            decode(m, batches[b], steps, &runs[b]);
    printf("neural_batch_chunk %d\n", chunk);
    for (int b = 0; b < 3; b++)
        printf("neural_tokens_per_s_batch%d %.0f\n", batches[b], runs[b].tokens_per_s);
    for (int b = 0; b < 3; b++)
        printf("neural_cpu_tokens_per_s_batch%d %.0f\n", batches[b], runs[b].cpu_tokens_per_s);
    printf("neural_speedup_batch32 %.2f\n", runs[2].tokens_per_s / runs[0].tokens_per_s);
    printf("neural_ms_per_token_batch1 %.3f\n", 1e3 / runs[0].tokens_per_s);
    double diff = 0;
    for (size_t i = 0; i < (size_t)steps * CZ_TOK_VOCAB; i++)
        diff = fmax(diff, fabs(runs[0].first_logits[i] - runs[2].first_logits[i]));
    int n = steps < 1024 ? steps : 1024;
    printf("neural_batch_logits_max_abs_diff %g\n", diff);
    printf("neural_batch_same_tokens %d\n",
           !memcmp(runs[0].first, runs[2].first, sizeof(int) * (size_t)n));
    printf("neural_piece_ms_batch1 %.1f\n", piece_ms(m, path, rounds));
    free(runs[0].first_logits);
    free(runs[2].first_logits);
    cz_tf_free(m);
    return 0;
}
