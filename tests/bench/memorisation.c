/* neural@1's memorisation (issue 16): the longest run of consecutive notes,
 * in any transposition, that a generated melody shares with a training
 * piece, over many generated pieces (common/music/melody.h).
 *
 * The references are the training split as token ids, one sequence a line
 * (build/model/data/train.tok, written by make model's corpus step): each
 * line's PITCH tokens in order are one reference melody, named by its line
 * number. A piece that spans several lines is several references, so a run
 * across the cut between two lines is not seen; the augmented split holds
 * each piece in several keys, which transposition invariance counts once.
 *
 * Pieces are generated as the worker does (workers/models/neural.c): two
 * sections, A and B, of eight bars, each a sequence whose prefix comes
 * from cz_neural_cond_from_controls() with the piece's seed (no controls:
 * key and mode drawn from the seed) and is sampled from its own stream under
 * the grammar at the default temperature and top-p, the sequences of
 * BATCH pieces stepped together with cz_tf_step(). So that the pieces cover
 * the conditioning, piece i also gets tempo band i % 3 and density
 * (i / 3) % 3. A piece's melody is section A's notes then section B's.
 *
 * Prints "name value" lines.
 *
 *   memorisation TRAIN_TOKENS [weights] [pieces]
 *   (default workers/models/neural/weights/neural-1.cztf, 200 pieces) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/mem.h"
#include "common/music/melody.h"
#include "common/rand.h"
#include "workers/models/neural/sampler.h"
#include "workers/models/neural/transformer.h"

#define SECTIONS 2
#define SECTION_BARS 8
#define BATCH 16    /* pieces decoded together */
#define MAX_SEQ 512 /* the longest sequence a weights file may hold, as the worker */
#define SEED0 7000  /* piece i's seed is SEED0 + i */
#define LIMIT 12    /* issue 16: no run longer than this */

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void die(const char *what, const cz_err *err) {
    fprintf(stderr, "memorisation: %s: %s\n", what, err->msg);
    exit(1);
}

/* The pitch of token @p t, or -1 when it is not a PITCH token. */
static int pitch_of(long t) {
    return t >= CZ_TOK_PITCH && t <= CZ_TOK_PITCH + CZ_NEURAL_PITCH_HI - CZ_NEURAL_PITCH_LO
               ? (int)(t - CZ_TOK_PITCH) + CZ_NEURAL_PITCH_LO
               : -1;
}

/* Adds each line of @p path as a reference, its PITCH tokens in order.
 * @returns the number of notes added. */
static long long read_references(const char *path, cz_melody_index *ix) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        fprintf(stderr, "memorisation: the training tokens come from make model (or "
                        "tools/model/make_model.sh eval) into build/model/data/train.tok\n");
        exit(1);
    }
    int *notes = NULL, n = 0, cap = 0, line = 0;
    long long total = 0;
    long tok = 0;
    bool in_num = false;
    for (int c;;) {
        c = getc(f);
        if (c >= '0' && c <= '9') {
            tok = !in_num ? c - '0' : tok < 1000000 ? tok * 10 + (c - '0') : tok;
            in_num = true;
            continue;
        }
        if (in_num && pitch_of(tok) >= 0) {
            if (n == cap)
                notes = cz_realloc(notes, sizeof *notes * (size_t)(cap = cap ? cap * 2 : 1024));
            notes[n++] = pitch_of(tok);
        }
        in_num = false;
        if (c == '\n' || (c == EOF && n > 0)) {
            char name[32];
            snprintf(name, sizeof name, "%d", ++line);
            cz_err err;
            if (cz_melody_index_add(ix, name, notes, n, &err) < 0)
                die(path, &err);
            total += n;
            n = 0;
        }
        if (c == EOF)
            break;
    }
    free(notes);
    fclose(f);
    return total;
}

/* One section of one piece being decoded. */
typedef struct sequence {
    cz_neural_sampler sampler;
    int tokens[MAX_SEQ];
    int n;
    bool done;
    float *logits;
} sequence;

/* Decodes pieces @p first .. @p first + @p count - 1 (sections in slots
 * 2 * j + k), as neural.c's sequence_start() and decode_batch() do. */
static void decode(const cz_tf_model *m, cz_tf_state *s, int first, int count, sequence *seq,
                   long long *tokens) {
    const cz_tf_config *cfg = cz_tf_config_of(m);
    int nseq = count * SECTIONS, slots[BATCH * SECTIONS], next[BATCH * SECTIONS];
    float *rows = cz_malloc(sizeof(float) * cfg->vocab * (nseq > 8 ? nseq : 8));
    cz_err err;
    for (int j = 0; j < count; j++) {
        uint64_t seed = SEED0 + (uint64_t)(first + j);
        cz_controls none = {.key_root = -1, .mode = -1};
        for (int k = 0; k < SECTIONS; k++) {
            sequence *q = &seq[j * SECTIONS + k];
            cz_neural_cond cond;
            cz_neural_cond_from_controls(&none, seed, &cond);
            cond.tempo = (cz_neural_tempo)((first + j) % 3);
            cond.density = (cz_neural_density)((first + j) / 3 % 3);
            cond.section = k == 0 ? CZ_SECTION_A : CZ_SECTION_B;
            q->done = false;
            q->n = cz_neural_cond_tokens(&cond, q->tokens);
            cz_neural_sampler_init(&q->sampler, cz_splitmix64_mix(seed + 0x5EC7104ull * (k + 1)),
                                   CZ_NEURAL_TEMPERATURE, CZ_NEURAL_TOP_P, cfg->max_seq,
                                   SECTION_BARS, SECTION_BARS);
            int slot = j * SECTIONS + k;
            cz_tf_slot_reset(s, slot);
            if (cz_neural_sampler_feed(&q->sampler, q->tokens, q->n, &err) ||
                cz_tf_prefill(m, s, slot, q->tokens, q->n, rows, &err))
                die("prefill", &err);
            memcpy(q->logits, rows + (size_t)(q->n - 1) * cfg->vocab, sizeof(float) * cfg->vocab);
        }
    }
    for (;;) {
        int n = 0;
        for (int i = 0; i < nseq; i++) {
            sequence *q = &seq[i];
            if (q->done)
                continue;
            int t = cz_neural_sampler_next(&q->sampler, q->logits);
            if (t >= 0)
                q->tokens[q->n++] = t;
            if (t < 0 || t == CZ_TOK_EOS) {
                q->done = true;
                continue;
            }
            slots[n] = i, next[n] = t;
            n++;
        }
        if (n == 0)
            break;
        if (cz_tf_step(m, s, slots, next, n, rows, &err))
            die("step", &err);
        *tokens += n;
        for (int r = 0; r < n; r++)
            memcpy(seq[slots[r]].logits, rows + (size_t)r * cfg->vocab, sizeof(float) * cfg->vocab);
    }
    free(rows);
}

static int cmp_int(const void *a, const void *b) {
    return *(const int *)a - *(const int *)b;
}

/* The nearest-rank percentile @p p of the @p n sorted values. */
static int percentile(const int *v, int n, double p) {
    int i = (int)(p * n + 0.999999) - 1;
    return v[i < 0 ? 0 : i >= n ? n - 1 : i];
}

int main(int argc, char **argv) {
    cz_mem_init();
    if (argc < 2) {
        fprintf(stderr, "usage: memorisation TRAIN_TOKENS [weights] [pieces]\n");
        return 2;
    }
    const char *weights = argc > 2 ? argv[2] : "workers/models/neural/weights/neural-1.cztf";
    int pieces = argc > 3 ? atoi(argv[3]) : 200;
    if (pieces < 1) {
        fprintf(stderr, "memorisation: pieces must be at least 1\n");
        return 2;
    }

    double t0 = now();
    cz_melody_index *ix = cz_melody_index_new();
    long long ref_notes = read_references(argv[1], ix);
    double t_index = now() - t0;

    cz_err err;
    cz_tf_model *m = cz_tf_load(weights, &err);
    if (!m)
        die("weights", &err);
    if (cz_tf_config_of(m)->max_seq > MAX_SEQ) {
        fprintf(stderr, "memorisation: %s holds sequences longer than %d tokens\n", weights,
                MAX_SEQ);
        return 1;
    }
    cz_tf_state *s = cz_tf_state_new(m, BATCH * SECTIONS, 0, &err);
    if (!s)
        die("state", &err);
    sequence *seq = cz_calloc(BATCH * SECTIONS, sizeof *seq);
    for (int i = 0; i < BATCH * SECTIONS; i++)
        seq[i].logits = cz_malloc(sizeof(float) * cz_tf_config_of(m)->vocab);

    int *shared = cz_malloc(sizeof *shared * (size_t)pieces);
    int over = 0, worst = -1, melody[SECTIONS * MAX_SEQ];
    cz_melody_match worst_m = {0};
    long long tokens = 0, notes = 0;
    double t_gen = 0, t_query = 0;
    for (int first = 0; first < pieces; first += BATCH) {
        int count = pieces - first < BATCH ? pieces - first : BATCH;
        double t1 = now();
        decode(m, s, first, count, seq, &tokens);
        double t2 = now();
        t_gen += t2 - t1;
        for (int j = 0; j < count; j++) {
            int n = 0;
            for (int k = 0; k < SECTIONS; k++) {
                const sequence *q = &seq[j * SECTIONS + k];
                for (int i = CZ_NEURAL_PREFIX; i < q->n; i++)
                    if (pitch_of(q->tokens[i]) >= 0)
                        melody[n++] = pitch_of(q->tokens[i]);
            }
            notes += n;
            cz_melody_match mm;
            if (cz_melody_index_longest(ix, melody, n, &mm, &err) < 0)
                die("query", &err);
            shared[first + j] = mm.notes;
            over += mm.notes > LIMIT;
            if (worst < 0 || mm.notes > worst_m.notes)
                worst = first + j, worst_m = mm;
        }
        t_query += now() - t2;
    }
    qsort(shared, (size_t)pieces, sizeof *shared, cmp_int);

    printf("pieces %d\n", pieces);
    printf("references %d\n", cz_melody_index_count(ix));
    printf("reference_notes %lld\n", ref_notes);
    printf("piece_notes_mean %.1f\n", (double)notes / pieces);
    printf("max_shared_notes %d\n", shared[pieces - 1]);
    printf("p50_shared_notes %d\n", percentile(shared, pieces, 0.50));
    printf("p95_shared_notes %d\n", percentile(shared, pieces, 0.95));
    printf("pieces_over_%d %d\n", LIMIT, over);
    printf("worst_piece %d\n", worst);
    printf("worst_piece_seed %d\n", SEED0 + worst);
    printf("worst_reference_line %s\n", worst_m.name ? worst_m.name : "-");
    printf("worst_shared_notes %d\n", worst_m.notes);
    printf("worst_piece_note %d\n", worst_m.query_start);
    printf("worst_reference_note %d\n", worst_m.ref_start);
    printf("index_s %.2f\n", t_index);
    printf("generate_s %.2f\n", t_gen);
    printf("generated_tokens %lld\n", tokens);
    printf("query_ms_per_piece %.3f\n", t_query * 1e3 / pieces);

    for (int i = 0; i < BATCH * SECTIONS; i++)
        free(seq[i].logits);
    free(seq);
    free(shared);
    cz_tf_state_free(s);
    cz_tf_free(m);
    cz_melody_index_free(ix);
    return 0;
}
