/* neural@1's engine (workers/models/neural/): the forward pass against the
 * logits PyTorch computed for the training tool's fixture model (token by
 * token through the KV cache, as one prefill, and batched; and the
 * committed neural-1 weights against theirs), the weights
 * file's checks (missing, corrupt, wrong version, wrong shape), the
 * sampler's determinism and top-p, the melody guard (a melody that would
 * copy a reference is turned aside at the limit, across sections too), the
 * grammar (1000 sampled sequences all parse), pieces decoded as the worker
 * does (the same tokens alone and in a batch, sections in turn, a stopped
 * piece leaving the others as they were, no run over the limit with the
 * committed weights), the decoder and encoder, and the conditioning of a
 * job's controls. Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cblas.h>
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/buf.h"
#include "common/hash.h"
#include "common/mem.h"
#include "common/music/melody.h"
#include "common/rand.h"
#include "tests/unit/neural_reference.h"
#include "workers/models/neural/pieces.h"
#include "workers/models/neural/sampler.h"
#include "workers/models/neural/tokens.h"
#include "workers/models/neural/transformer.h"

#define FIXTURE "tests/unit/data/neural_fixture.cztf"
#define FIXTURE_LOGITS "tests/unit/data/neural_fixture_logits.json"
#define REAL "workers/models/neural/weights/neural-1.cztf"
#define REAL_LOGITS "workers/models/neural/weights/neural-1.logits.json"
#define REAL_MELODIES "workers/models/neural/weights/neural-1.melodies"

/* ================================================================ helpers */

static void write_all(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

/* Writes "<path>.sha256" for the file as it is now. */
static void write_sidecar(const char *path) {
    char hex[CZ_SHA256_HEX], name[512];
    assert_int_equal(cz_sha256_file(path, hex, NULL, NULL), 0);
    snprintf(name, sizeof name, "%s.sha256", path);
    FILE *f = fopen(name, "w");
    assert_non_null(f);
    fprintf(f, "%s  %s\n", hex, strrchr(path, '/') + 1);
    fclose(f);
}

/* The largest absolute difference between two logit rows. */
static double row_error(const float *got, const float *want, int vocab) {
    double worst = 0;
    for (int v = 0; v < vocab; v++) {
        double e = fabs((double)got[v] - want[v]);
        if (!(e <= worst)) // NaN counts as the worst
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static cz_tf_model *load(const char *path) {
    cz_err err = {0};
    cz_tf_model *m = cz_tf_load(path, &err);
    if (!m)
        fail_msg("%s", err.msg);
    return m;
}

/* ================================================================ forward */

/* Token by token through the KV cache: every position's logits match. */
static void check_steps(const char *weights, const char *logits) {
    cz_tf_model *m = load(weights);
    const int V = cz_tf_config_of(m)->vocab;
    reference r;
    reference_load(logits, V, &r);
    cz_err err = {0};
    cz_tf_state *s = cz_tf_state_new(m, 1, 0, &err);
    assert_non_null(s);
    float *out = cz_malloc((size_t)V * sizeof(float));
    for (int q = 0; q < r.n_seq; q++) {
        cz_tf_slot_reset(s, 0);
        for (int i = 0; i < r.len[q]; i++) {
            int slot = 0;
            assert_int_equal(cz_tf_step(m, s, &slot, &r.tokens[q][i], 1, out, &err), 0);
            double e = row_error(out, r.logits[q] + (size_t)i * V, V);
            if (e > r.tol)
                fail_msg("sequence %d position %d: logits differ by %g (tolerance %g)", q, i, e,
                         r.tol);
        }
        assert_int_equal(cz_tf_slot_len(s, 0), r.len[q]);
    }
    free(out);
    cz_tf_state_free(s);
    reference_free(&r);
    cz_tf_free(m);
}

/* The whole sequence as one prefill: every row matches. */
static void check_prefill(const char *weights, const char *logits) {
    cz_tf_model *m = load(weights);
    const int V = cz_tf_config_of(m)->vocab;
    reference r;
    reference_load(logits, V, &r);
    cz_err err = {0};
    cz_tf_state *s = cz_tf_state_new(m, 2, 0, &err);
    for (int q = 0; q < r.n_seq; q++) {
        float *out = cz_malloc((size_t)r.len[q] * V * sizeof(float));
        cz_tf_slot_reset(s, 1);
        assert_int_equal(cz_tf_prefill(m, s, 1, r.tokens[q], r.len[q], out, &err), 0);
        for (int i = 0; i < r.len[q]; i++) {
            double e = row_error(out + (size_t)i * V, r.logits[q] + (size_t)i * V, V);
            if (e > r.tol)
                fail_msg("prefill of sequence %d, position %d: logits differ by %g", q, i, e);
        }
        free(out);
    }
    cz_tf_state_free(s);
    reference_free(&r);
    cz_tf_free(m);
}

static void test_fixture_steps(void **st) {
    (void)st;
    check_steps(FIXTURE, FIXTURE_LOGITS);
}

static void test_fixture_prefill(void **st) {
    (void)st;
    check_prefill(FIXTURE, FIXTURE_LOGITS);
}

/* The committed weights (workers/models/neural/weights/, from the training
 * tool) against their own PyTorch logits, both ways. They are committed, so
 * a missing file fails here as it would stop a worker. */
static void test_committed_weights(void **st) {
    (void)st;
    check_steps(REAL, REAL_LOGITS);
    check_prefill(REAL, REAL_LOGITS);
}

/* All reference sequences decoded together, one batched step per position
 * (the batch shrinks as the shorter ones end), after a prefill of two
 * tokens for one of them and a step that takes two tokens of one slot:
 * every row has exactly the bits of its unbatched logits (batch
 * invariance: a job's tokens cannot depend on its neighbours). */
static void test_batched_equals_unbatched(void **st) {
    (void)st;
    cz_tf_model *m = load(FIXTURE);
    const int V = cz_tf_config_of(m)->vocab;
    reference r;
    reference_load(FIXTURE_LOGITS, V, &r);
    cz_err err = {0};
    // Unbatched logits of each sequence, position by position.
    float *solo[8];
    cz_tf_state *one = cz_tf_state_new(m, 1, 0, &err);
    for (int q = 0; q < r.n_seq; q++) {
        solo[q] = cz_malloc((size_t)r.len[q] * V * sizeof(float));
        cz_tf_slot_reset(one, 0);
        for (int i = 0; i < r.len[q]; i++) {
            int slot = 0;
            assert_int_equal(
                cz_tf_step(m, one, &slot, &r.tokens[q][i], 1, solo[q] + (size_t)i * V, &err), 0);
        }
    }
    cz_tf_state_free(one);

    // Slots in reverse order, so slot numbers and sequence numbers differ.
    cz_tf_state *s = cz_tf_state_new(m, 8, 0, &err);
    int slot_of[8], at[8] = {0};
    for (int q = 0; q < r.n_seq; q++)
        slot_of[q] = 7 - q;
    float *out = cz_malloc((size_t)16 * V * sizeof(float));
    int last = r.n_seq - 1; // the longest, by the fixture's construction
    assert_true(r.len[last] >= 4);
    assert_int_equal(cz_tf_prefill(m, s, slot_of[last], r.tokens[last], 2, out, &err), 0);
    assert_memory_equal(out, solo[last], (size_t)2 * V * sizeof(float));
    at[last] = 2;
    for (;;) {
        int slots[16], toks[16], who[16], n = 0;
        for (int q = 0; q < r.n_seq; q++) {
            // The longest sequence takes two tokens in the first step.
            int take = q == last && at[q] == 2 ? 2 : 1;
            for (int k = 0; k < take && at[q] < r.len[q]; k++) {
                slots[n] = slot_of[q];
                toks[n] = r.tokens[q][at[q]];
                who[n++] = q;
                at[q]++;
            }
        }
        if (n == 0)
            break;
        assert_int_equal(cz_tf_step(m, s, slots, toks, n, out, &err), 0);
        int pos[8];
        memcpy(pos, at, sizeof pos);
        for (int i = n - 1; i >= 0; i--) { // positions of this step's rows, from the end
            int q = who[i], p = --pos[q];
            if (memcmp(out + (size_t)i * V, solo[q] + (size_t)p * V, (size_t)V * sizeof(float)))
                fail_msg("batched row %d (sequence %d, position %d) differs by %g", i, q, p,
                         row_error(out + (size_t)i * V, solo[q] + (size_t)p * V, V));
        }
    }
    for (int q = 0; q < r.n_seq; q++) {
        assert_int_equal(cz_tf_slot_len(s, slot_of[q]), r.len[q]);
        free(solo[q]);
    }
    free(out);
    cz_tf_state_free(s);
    reference_free(&r);
    cz_tf_free(m);
}

/* With one OpenBLAS thread the state's own threads share the row groups of
 * each product: a prefill (many groups) gives exactly the bits of the same
 * tokens stepped one by one (one group each), and matches the reference. */
static void test_one_blas_thread(void **st) {
    (void)st;
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(1);
    cz_tf_model *m = load(FIXTURE);
    const int V = cz_tf_config_of(m)->vocab;
    reference r;
    reference_load(FIXTURE_LOGITS, V, &r);
    cz_err err = {0};
    cz_tf_state *s = cz_tf_state_new(m, 2, 2, &err);
    int q = r.n_seq - 1, L = r.len[q];
    float *pre = cz_malloc((size_t)L * V * sizeof(float));
    float *one = cz_malloc((size_t)V * sizeof(float));
    assert_int_equal(cz_tf_prefill(m, s, 1, r.tokens[q], L, pre, &err), 0);
    for (int i = 0; i < L; i++) {
        int slot = 0;
        assert_int_equal(cz_tf_step(m, s, &slot, &r.tokens[q][i], 1, one, &err), 0);
        assert_memory_equal(one, pre + (size_t)i * V, (size_t)V * sizeof(float));
        assert_true(row_error(one, r.logits[q] + (size_t)i * V, V) <= r.tol);
    }
    free(pre);
    free(one);
    cz_tf_state_free(s);
    reference_free(&r);
    cz_tf_free(m);
    openblas_set_num_threads(threads);
}

/* A step that cannot run changes nothing: bad slot, bad token, a full
 * slot, OpenBLAS's thread count changed since the load. */
static void test_step_errors(void **st) {
    (void)st;
    cz_tf_model *m = load(FIXTURE);
    const cz_tf_config *c = cz_tf_config_of(m);
    cz_err err = {0};
    assert_null(cz_tf_state_new(m, 0, 0, &err));
    assert_non_null(strstr(err.msg, "max_batch 0"));
    cz_tf_state *s = cz_tf_state_new(m, 2, 0, &err);
    int slots[2] = {0, 2}, toks[2] = {CZ_TOK_BOS, CZ_TOK_BOS};
    assert_int_equal(cz_tf_step(m, s, slots, toks, 2, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "slot 2 is not in 0..1"));
    assert_int_equal(cz_tf_slot_len(s, 0), 0);
    slots[1] = 1;
    toks[1] = CZ_TOK_VOCAB;
    assert_int_equal(cz_tf_step(m, s, slots, toks, 2, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "token 174"));
    int *fill = cz_calloc((size_t)c->max_seq, sizeof(int));
    assert_int_equal(cz_tf_prefill(m, s, 1, fill, c->max_seq, NULL, &err), 0);
    toks[1] = 0;
    assert_int_equal(cz_tf_step(m, s, slots, toks, 2, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "already holds max_seq"));
    assert_int_equal(cz_tf_slot_len(s, 0), 0);
    assert_int_equal(cz_tf_slot_len(s, 1), c->max_seq);
    cz_tf_slot_reset(s, 1);
    assert_int_equal(cz_tf_slot_len(s, 1), 0);
    // OpenBLAS's thread count may not change after the load.
    int threads = openblas_get_num_threads();
    openblas_set_num_threads(threads == 1 ? 2 : 1);
    if (openblas_get_num_threads() != threads) {
        assert_int_equal(cz_tf_step(m, s, slots, toks, 1, NULL, &err), -1);
        assert_non_null(strstr(err.msg, "OpenBLAS's thread count changed"));
    }
    openblas_set_num_threads(threads);
    assert_int_equal(cz_tf_step(m, s, slots, toks, 1, NULL, &err), 0);
    free(fill);
    cz_tf_state_free(s);
    cz_tf_free(m);
}

/* Choosing the device: the names CADENZA_NEURAL_DEVICE takes, and a CUDA
 * state from a build without CUDA refused in words that say why (a build
 * with CUDA is checked on a GPU by test_neural_cuda.c). */
static void test_device_choice(void **st) {
    (void)st;
    cz_tf_device d = CZ_TF_CUDA;
    cz_err err = {0};
    assert_int_equal(cz_tf_device_parse("cpu", &d, &err), 0);
    assert_int_equal(d, CZ_TF_CPU);
    assert_int_equal(cz_tf_device_parse("cuda", &d, &err), 0);
    assert_int_equal(d, CZ_TF_CUDA);
    assert_int_equal(cz_tf_device_parse("gpu", &d, &err), -1);
    assert_string_equal(
        err.msg, "neural@1: unknown device \"gpu\" (CADENZA_NEURAL_DEVICE takes cpu or cuda)");
    assert_string_equal(cz_tf_device_name(CZ_TF_CUDA), "cuda");
    cz_tf_model *m = load(FIXTURE);
    cz_tf_state *s = cz_tf_state_new_on(m, 2, 0, CZ_TF_CPU, &err);
    assert_non_null(s);
    assert_int_equal(cz_tf_state_device(s), CZ_TF_CPU);
    assert_int_equal(cz_tf_state_chunk(s), cz_tf_batch_chunk(m));
    cz_tf_state_free(s);
    if (!cz_tf_has_cuda()) {
        assert_null(cz_tf_state_new_on(m, 2, 0, CZ_TF_CUDA, &err));
        assert_non_null(strstr(err.msg, "neural@1: this build has no CUDA support (nvcc was not "
                                        "found when it was built)"));
    }
    cz_tf_free(m);
}

/* ================================================================ weights file */

typedef struct tmpdir {
    char dir[64];
    char path[128];
} tmpdir;

/* A copy of the fixture (and its sidecar) in a fresh folder. */
static void copy_fixture(tmpdir *t, unsigned char **data, size_t *len) {
    strcpy(t->dir, "/tmp/cz_test_neural_XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof t->path, "%s/neural.cztf", t->dir);
    *data = (unsigned char *)read_all(FIXTURE, len);
    write_all(t->path, *data, *len);
    write_sidecar(t->path);
}

static void remove_copy(tmpdir *t) {
    char name[160];
    snprintf(name, sizeof name, "%s.sha256", t->path);
    unlink(name);
    unlink(t->path);
    rmdir(t->dir);
}

static void expect_error(const char *path, const char *what) {
    cz_err err = {0};
    cz_tf_model *m = cz_tf_load(path, &err);
    if (m)
        fail_msg("%s loaded; expected an error with \"%s\"", path, what);
    if (!strstr(err.msg, what))
        fail_msg("error \"%s\" does not say \"%s\"", err.msg, what);
}

static void test_missing_file(void **st) {
    (void)st;
    expect_error("/tmp/cz-no-such-dir/neural-1.cztf",
                 "neural@1: weights file /tmp/cz-no-such-dir/neural-1.cztf is missing (run make "
                 "model, or restore it from git)");
    tmpdir t;
    unsigned char *data;
    size_t len;
    copy_fixture(&t, &data, &len);
    char name[160];
    snprintf(name, sizeof name, "%s.sha256", t.path);
    unlink(name);
    expect_error(t.path, ".sha256 is missing");
    remove_copy(&t);
    free(data);
}

static void test_corrupt_file(void **st) {
    (void)st;
    tmpdir t;
    unsigned char *data;
    size_t len;
    copy_fixture(&t, &data, &len);
    const cz_tf_model *ok = load(t.path);
    cz_tf_free((cz_tf_model *)ok);

    // One flipped bit in the data, sidecar as committed: the file is corrupt.
    data[len - 100] ^= 0x10;
    write_all(t.path, data, len);
    expect_error(t.path, ": sha256 mismatch, the file is corrupt");
    // The same file with a sidecar that matches it: the header's data_sha256 catches it.
    write_sidecar(t.path);
    expect_error(t.path, "data sha256 mismatch, the file is corrupt");
    data[len - 100] ^= 0x10;

    // Truncated.
    write_all(t.path, data, len - 64);
    write_sidecar(t.path);
    expect_error(t.path, "the file is corrupt");

    // A version this engine does not read.
    data[4] = 2;
    write_all(t.path, data, len);
    write_sidecar(t.path);
    expect_error(t.path, "unsupported format version 2");
    data[4] = 1;

    // A config that the tensors do not fit (same header length: 64 -> 65).
    char *ff = memmem(data, len, "\"d_ff\":64,", 10);
    assert_non_null(ff);
    ff[8] = '5';
    write_all(t.path, data, len);
    write_sidecar(t.path);
    expect_error(t.path, "tensor l0.w1 has shape [64,32], expected [65, 32]");
    ff[8] = '4';

    // Another vocabulary.
    char *pos = memmem(data, len, "\"POS_0\"", 7);
    assert_non_null(pos);
    pos[1] = 'Q';
    write_all(t.path, data, len);
    write_sidecar(t.path);
    expect_error(t.path, "token 33 of its vocab is QOS_0, this engine's is POS_0");

    remove_copy(&t);
    free(data);
}

/* ================================================================ sampler */

static void test_sample_top_p(void **st) {
    (void)st;
    float logits[CZ_TOK_VOCAB];
    bool allowed[CZ_TOK_VOCAB] = {0};
    for (int i = 0; i < CZ_TOK_VOCAB; i++)
        logits[i] = -1e9f;
    logits[10] = logf(0.5f), logits[11] = logf(0.3f), logits[12] = logf(0.2f);
    allowed[10] = allowed[11] = allowed[12] = true;
    uint64_t rng = 7;
    int count[CZ_TOK_VOCAB] = {0};
    // top_p 0.6: {10, 11} (0.8 reaches it, 0.5 does not); 12 never.
    for (int i = 0; i < 4000; i++)
        count[cz_neural_sample(logits, CZ_TOK_VOCAB, allowed, 1.0, 0.6, &rng)]++;
    assert_int_equal(count[12], 0);
    assert_int_equal(count[10] + count[11], 4000);
    assert_in_range(count[10], 2300, 2700); // 0.625 of 4000 = 2500
    // top_p 0 or tiny: the most probable only; temperature 0: greedy.
    for (int i = 0; i < 100; i++) {
        assert_int_equal(cz_neural_sample(logits, CZ_TOK_VOCAB, allowed, 1.0, 0.0, &rng), 10);
        assert_int_equal(cz_neural_sample(logits, CZ_TOK_VOCAB, allowed, 1.0, 1e-9, &rng), 10);
        assert_int_equal(cz_neural_sample(logits, CZ_TOK_VOCAB, allowed, 0.0, 1.0, &rng), 10);
    }
    // top_p 1: all three, about in proportion.
    memset(count, 0, sizeof count);
    for (int i = 0; i < 4000; i++)
        count[cz_neural_sample(logits, CZ_TOK_VOCAB, allowed, 1.0, 1.0, &rng)]++;
    assert_in_range(count[12], 650, 950);
    // The mask wins over the logits: only 12 allowed.
    allowed[10] = allowed[11] = false;
    for (int i = 0; i < 50; i++)
        assert_int_equal(cz_neural_sample(logits, CZ_TOK_VOCAB, allowed, 1.0, 0.95, &rng), 12);
    // Nothing allowed.
    allowed[12] = false;
    assert_int_equal(cz_neural_sample(logits, CZ_TOK_VOCAB, allowed, 1.0, 0.95, &rng), -1);
    // Ties: equal logits, top_p tiny, the lowest id.
    for (int i = 0; i < CZ_TOK_VOCAB; i++)
        logits[i] = 1.0f;
    assert_int_equal(cz_neural_sample(logits, CZ_TOK_VOCAB, NULL, 1.0, 1e-6, &rng), 0);
    // Non-finite logits are impossible; all of them: uniform over the allowed.
    logits[5] = NAN, logits[6] = INFINITY;
    memset(count, 0, sizeof count);
    for (int i = 0; i < 2000; i++)
        count[cz_neural_sample(logits, CZ_TOK_VOCAB, NULL, 1.0, 1.0, &rng)]++;
    assert_int_equal(count[5] + count[6], 0);
    allowed[5] = allowed[6] = true;
    memset(count, 0, sizeof count);
    for (int i = 0; i < 2000; i++)
        count[cz_neural_sample(logits, CZ_TOK_VOCAB, allowed, 1.0, 0.95, &rng)]++;
    assert_int_equal(count[5] + count[6], 2000);
    assert_in_range(count[5], 850, 1150);
}

typedef struct batch_gen {
    int n;
    int len[32];
    int tokens[32][512];
} batch_gen;

/* Samples up to 32 sequences together, one batched step per token. */
static void generate(const cz_tf_model *m, cz_tf_state *s, const cz_neural_cond *conds,
                     const uint64_t *seeds, int n, double temperature, int min_bars,
                     batch_gen *out) {
    const cz_tf_config *c = cz_tf_config_of(m);
    const int V = c->vocab;
    cz_neural_sampler smp[32];
    float *logits = cz_malloc((size_t)32 * V * sizeof(float));
    float *last = cz_malloc((size_t)32 * V * sizeof(float));
    cz_err err = {0};
    out->n = n;
    for (int i = 0; i < n; i++) {
        cz_tf_slot_reset(s, i);
        cz_neural_sampler_init(&smp[i], seeds[i], temperature, CZ_NEURAL_TOP_P, c->max_seq,
                               min_bars, 0);
        out->len[i] = cz_neural_cond_tokens(&conds[i], out->tokens[i]);
        assert_int_equal(cz_neural_sampler_feed(&smp[i], out->tokens[i], out->len[i], &err), 0);
        float pre[CZ_NEURAL_PREFIX * CZ_TOK_VOCAB];
        assert_int_equal(cz_tf_prefill(m, s, i, out->tokens[i], out->len[i], pre, &err), 0);
        memcpy(last + (size_t)i * V, pre + (size_t)(CZ_NEURAL_PREFIX - 1) * V, V * sizeof(float));
    }
    for (;;) {
        int slots[32], toks[32], k = 0;
        for (int i = 0; i < n; i++) {
            if (cz_neural_sampler_done(&smp[i]))
                continue;
            int t = cz_neural_sampler_next(&smp[i], last + (size_t)i * V);
            assert_true(t >= 0); // not done, so something is allowed
            out->tokens[i][out->len[i]++] = t;
            assert_true(out->len[i] <= c->max_seq);
            if (t != CZ_TOK_EOS)
                slots[k] = i, toks[k++] = t;
        }
        if (k == 0)
            break;
        assert_int_equal(cz_tf_step(m, s, slots, toks, k, logits, &err), 0);
        for (int j = 0; j < k; j++)
            memcpy(last + (size_t)slots[j] * V, logits + (size_t)j * V, V * sizeof(float));
    }
    free(logits);
    free(last);
}

static cz_neural_cond random_cond(uint64_t *rng) {
    cz_neural_cond c;
    c.key = (int)(cz_splitmix64_next(rng) % 12);
    c.mode = (cz_neural_mode)(cz_splitmix64_next(rng) % 2);
    c.meter = (cz_neural_meter)(cz_splitmix64_next(rng) % 4);
    c.tempo = (cz_neural_tempo)(cz_splitmix64_next(rng) % 3);
    c.density = (cz_neural_density)(cz_splitmix64_next(rng) % 3);
    c.section = (cz_neural_section)(cz_splitmix64_next(rng) % 5);
    return c;
}

static void test_sampler_determinism(void **st) {
    (void)st;
    cz_tf_model *m = load(FIXTURE);
    cz_err err = {0};
    cz_tf_state *s = cz_tf_state_new(m, 32, 0, &err);
    cz_neural_cond conds[3];
    uint64_t rng = 99, seeds[3] = {42, 42, 43};
    conds[0] = conds[1] = conds[2] = random_cond(&rng);
    batch_gen *a = cz_calloc(1, sizeof *a), *b = cz_calloc(1, sizeof *b);
    generate(m, s, conds, seeds, 3, 1.0, 8, a);
    // Same seed in the same batch and alone: the same tokens.
    assert_int_equal(a->len[0], a->len[1]);
    assert_memory_equal(a->tokens[0], a->tokens[1], a->len[0] * sizeof(int));
    generate(m, s, conds, seeds, 1, 1.0, 8, b);
    assert_int_equal(a->len[0], b->len[0]);
    assert_memory_equal(a->tokens[0], b->tokens[0], a->len[0] * sizeof(int));
    // Another seed: other tokens.
    assert_true(a->len[2] != a->len[0] ||
                memcmp(a->tokens[0], a->tokens[2], a->len[0] * sizeof(int)) != 0);
    free(a);
    free(b);
    cz_tf_state_free(s);
    cz_tf_free(m);
}

/* ---- the melody guard ---------------------------------------------------- */

/* Greedy decoding of four bars whose logits want a chromatic scale: the
 * pitch a semitone above the last note first, a whole tone above next
 * (pitches wrap from 96 to 48), then a new position, one sixteenth long.
 * The melody goes to @p melody; @returns its length. With @p refs, the
 * guard holds runs to @p max_notes, starting from @p from. */
static int chromatic(const cz_melody_index *refs, int max_notes, const cz_melody_walk *from,
                     int first, int *melody) {
    cz_neural_sampler s;
    cz_neural_sampler_init(&s, 1, 0.0, 1.0, 512, 4, 4);
    if (refs)
        cz_neural_sampler_guard(&s, refs, max_notes, from);
    cz_neural_cond c = {.key = 0, .mode = CZ_MODE_MAJ, .meter = CZ_METER_4_4};
    int pre[CZ_NEURAL_PREFIX], n = 0, last = first - 1;
    cz_err err = {0};
    assert_int_equal(cz_neural_sampler_feed(&s, pre, cz_neural_cond_tokens(&c, pre), &err), 0);
    for (int t = 0; t >= 0 && t != CZ_TOK_EOS;) {
        float logits[CZ_TOK_VOCAB];
        for (int i = 0; i < CZ_TOK_VOCAB; i++)
            logits[i] = i >= CZ_TOK_POS && i < CZ_TOK_CHORD ? 5 : 0;
        logits[CZ_TOK_DUR] = 5;
        logits[CZ_TOK_BAR] = -5;
        logits[CZ_TOK_EOS] = -10;
        int up = last + 1 > CZ_NEURAL_PITCH_HI ? 48 : last + 1;
        int tone = up + 1 > CZ_NEURAL_PITCH_HI ? 48 : up + 1;
        logits[CZ_TOK_PITCH + up - CZ_NEURAL_PITCH_LO] = 10;
        logits[CZ_TOK_PITCH + tone - CZ_NEURAL_PITCH_LO] = 8;
        t = cz_neural_sampler_next(&s, logits);
        if (cz_neural_token_pitch(t) >= 0)
            melody[n++] = last = cz_neural_token_pitch(t);
    }
    assert_int_equal(s.unguarded, 0);
    return n;
}

static void test_guard_refuses_copies(void **st) {
    (void)st;
    // The reference: a chromatic scale, so every rising semitone is in it.
    int scale[51], melody[128];
    for (int i = 0; i < 51; i++)
        scale[i] = 40 + i;
    cz_melody_index *refs = cz_melody_index_new();
    cz_melody_index_add(refs, "scale", scale, 51, NULL);
    cz_melody_match m;

    // Unguarded, the melody climbs the scale from 48 to 96: 49 notes of it.
    int n = chromatic(NULL, 0, NULL, 48, melody);
    assert_int_equal(n, 64);
    assert_int_equal(cz_melody_index_longest(refs, melody, n, &m, NULL), 49);

    // Guarded at 5: every fifth step is turned aside to a whole tone, so
    // runs of exactly 5, and the music goes on (every position has a note).
    n = chromatic(refs, 5, NULL, 48, melody);
    assert_int_equal(n, 64);
    assert_int_equal(cz_melody_index_longest(refs, melody, n, &m, NULL), 5);
    for (int i = 1; i < 6; i++)
        assert_int_equal(melody[i] - melody[i - 1], i < 5 ? 1 : 2);

    // A second section goes on from where the first left off: after
    // 60..63, only one more semitone may follow.
    cz_melody_walk w = CZ_MELODY_WALK_START;
    for (int p = 60; p < 64; p++)
        cz_melody_walk_push(refs, &w, p);
    n = chromatic(refs, 5, &w, 64, melody);
    assert_int_equal(melody[0], 64);
    assert_int_equal(melody[1], 66);
    // Alone, the same section starts with five semitones.
    chromatic(refs, 5, NULL, 64, melody);
    assert_int_equal(melody[4], 68);
    cz_melody_index_free(refs);
}

/* ---- pieces, as the worker decodes them ---------------------------------- */

static void stop_second(void *user, cz_neural_gen *gens, int n, int steps) {
    (void)user, (void)steps;
    if (n > 1)
        gens[1].stopped = true;
}

static void test_pieces(void **st) {
    (void)st;
    cz_tf_model *m = load(REAL);
    cz_err err = {0};
    cz_melody_index *refs = cz_melody_index_load(REAL_MELODIES, &err);
    if (!refs)
        fail_msg("%s", err.msg);
    enum { N = 4 };
    cz_tf_state *s = cz_tf_state_new(m, N, 0, &err);
    cz_neural_gen *batch = cz_calloc(N, sizeof *batch), *alone = cz_calloc(1, sizeof *alone);
    cz_controls none = {.key_root = -1, .mode = -1};
    for (int j = 0; j < N; j++) {
        batch[j].seed = 7000 + (uint64_t)j;
        cz_neural_cond_from_controls(&none, batch[j].seed, &batch[j].cond);
    }
    cz_neural_sampling d = {m, s, refs, stop_second, NULL};
    assert_int_equal(cz_neural_pieces_sample(&d, batch, N, &err), 0);
    assert_true(batch[1].stopped);
    int melody[CZ_NEURAL_SECTIONS * CZ_NEURAL_MAX_SEQ];
    for (int j = 0; j < N; j++) {
        if (j == 1)
            continue;
        const cz_neural_gen *g = &batch[j];
        assert_false(g->stopped || g->failed);
        assert_int_equal(g->at, CZ_NEURAL_SECTIONS);
        // Both sections: their own prefix, eight bars, and no copied run.
        for (int k = 0; k < CZ_NEURAL_SECTIONS; k++) {
            cz_neural_piece p;
            assert_int_equal(g->sec[k].tokens[6],
                             CZ_TOK_SECTION + (k ? CZ_SECTION_B : CZ_SECTION_A));
            assert_int_equal(cz_neural_decode(g->sec[k].tokens, g->sec[k].n, &p, &err), 0);
            assert_int_equal(p.n_bars, CZ_NEURAL_SECTION_BARS);
            cz_neural_piece_free(&p);
        }
        cz_melody_match mm;
        int n = cz_neural_gen_melody(g, melody);
        assert_true(n > 16);
        assert_true(cz_melody_index_longest(refs, melody, n, &mm, NULL) <=
                    CZ_NEURAL_MAX_SHARED_NOTES);
        // Alone, the same piece: the same tokens.
        *alone = (cz_neural_gen){.seed = g->seed, .cond = g->cond};
        cz_neural_sampling one = {m, s, refs, NULL, NULL};
        assert_int_equal(cz_neural_pieces_sample(&one, alone, 1, &err), 0);
        for (int k = 0; k < CZ_NEURAL_SECTIONS; k++) {
            assert_int_equal(alone->sec[k].n, g->sec[k].n);
            assert_memory_equal(alone->sec[k].tokens, g->sec[k].tokens, sizeof(int) * g->sec[k].n);
        }
    }
    free(batch);
    free(alone);
    cz_tf_state_free(s);
    cz_tf_free(m);
    cz_melody_index_free(refs);
}

/* An independent reading of what a decoded piece must be. */
static void check_piece(const cz_neural_piece *p) {
    assert_true(p->n_bars >= 1);
    for (int b = 0; b < p->n_bars; b++) {
        int busy = 0;
        const cz_neural_bar *bar = &p->bars[b];
        for (int i = 0; i < bar->n_chords; i++) {
            assert_in_range(bar->chords[i].pos, 0, p->bar_len - 1);
            assert_in_range(bar->chords[i].root, 0, 11);
            if (i)
                assert_true(bar->chords[i].pos > bar->chords[i - 1].pos);
        }
        for (int i = 0; i < bar->n_notes; i++) {
            const cz_neural_note *n = &bar->notes[i];
            assert_in_range(n->pos, 0, p->bar_len - 1);
            assert_in_range(n->pitch, CZ_NEURAL_PITCH_LO, CZ_NEURAL_PITCH_HI);
            assert_in_range(n->dur, 1, CZ_NEURAL_MAX_DUR);
            assert_true(n->pos >= busy); // monophonic
            busy = n->pos + n->dur;
            assert_true(busy <= p->bar_len); // within its bar
        }
    }
}

/* 1000 sequences sampled from the fixture (random weights, so anything the
 * grammar allows is likely somewhere) all parse, keep the conditioning they
 * were given, fit in max_seq (ending with EOS, or full and cut between
 * events), and encode back to the same tokens. */
static void test_grammar_thousand(void **st) {
    (void)st;
    cz_tf_model *m = load(FIXTURE);
    cz_err err = {0};
    cz_tf_state *s = cz_tf_state_new(m, 32, 0, &err);
    batch_gen *g = cz_calloc(1, sizeof *g);
    uint64_t rng = 2024;
    int total = 0, cut = 0, notes = 0, chords = 0;
    int enc[512];
    while (total < 1000) {
        int n = 1000 - total < 32 ? 1000 - total : 32;
        cz_neural_cond conds[32];
        uint64_t seeds[32];
        for (int i = 0; i < n; i++) {
            conds[i] = random_cond(&rng);
            seeds[i] = cz_splitmix64_next(&rng);
        }
        // The fixture's random weights favour EOS: a third as they are,
        // the rest kept going by min_bars and flattened by temperature, so
        // that long bars and the max_seq budget are reached too.
        int round = total / 32;
        generate(m, s, conds, seeds, n, 1.0 + round % 3, round % 3 ? 2 + round % 10 : 1, g);
        for (int i = 0; i < n; i++) {
            cz_neural_piece p;
            if (cz_neural_decode(g->tokens[i], g->len[i], &p, &err) < 0)
                fail_msg("sequence %d: %s", total + i, err.msg);
            assert_memory_equal(&p.cond, &conds[i], sizeof p.cond);
            check_piece(&p);
            for (int b = 0; b < p.n_bars; b++)
                notes += p.bars[b].n_notes, chords += p.bars[b].n_chords;
            cut += !p.eos;
            if (!p.eos) // only a full sequence stops without EOS
                assert_true(g->len[i] >= cz_tf_config_of(m)->max_seq - 2);
            int k = cz_neural_encode(&p, enc, 512, &err);
            assert_int_equal(k, g->len[i]);
            assert_memory_equal(enc, g->tokens[i], k * sizeof(int));
            cz_neural_piece_free(&p);
        }
        total += n;
    }
    assert_true(notes > 1000 && chords > 1000); // it did write music
    assert_true(cut > 0 && cut < 1000);         // and both ends happened
    free(g);
    cz_tf_state_free(s);
    cz_tf_free(m);
}

/* Bars and budgets: min_bars withholds EOS, max_bars stops BARs, and near
 * max_len only what can still stop in time is allowed. */
static void test_grammar_bars(void **st) {
    (void)st;
    cz_neural_grammar g;
    bool allowed[CZ_TOK_VOCAB];
    cz_neural_cond c = {0, CZ_MODE_MAJ, CZ_METER_3_4, CZ_TEMPO_MID, CZ_DENSITY_MID, CZ_SECTION_A};
    int pre[CZ_NEURAL_PREFIX];
    cz_neural_cond_tokens(&c, pre);
    cz_neural_grammar_init(&g, 64, 3, 3);
    static const int group[CZ_NEURAL_PREFIX] = {1, 12, 2, 4, 3, 3, 5};
    for (int i = 0; i < CZ_NEURAL_PREFIX; i++) {
        assert_int_equal(cz_neural_grammar_allowed(&g, allowed), group[i]);
        assert_true(allowed[pre[i]]);
        assert_int_equal(cz_neural_grammar_push(&g, pre[i], NULL), 0);
    }
    assert_int_equal(cz_neural_grammar_allowed(&g, allowed), 1);
    assert_true(allowed[CZ_TOK_BAR]);
    assert_int_equal(cz_neural_grammar_push(&g, CZ_TOK_BAR, NULL), 0);
    cz_neural_grammar_allowed(&g, allowed);
    assert_false(allowed[CZ_TOK_EOS]);     // 1 bar of 3
    assert_true(allowed[CZ_TOK_POS + 11]); // 3/4: 12 sixteenths
    assert_false(allowed[CZ_TOK_POS + 12]);
    // A note at POS_8 of a 3/4 bar lasts at most 4 sixteenths.
    assert_int_equal(cz_neural_grammar_push(&g, CZ_TOK_POS + 8, NULL), 0);
    assert_int_equal(cz_neural_grammar_push(&g, CZ_TOK_PITCH + 24, NULL), 0);
    cz_neural_grammar_allowed(&g, allowed);
    assert_true(allowed[CZ_TOK_DUR + 3]);
    assert_false(allowed[CZ_TOK_DUR + 4]);
    assert_int_equal(cz_neural_grammar_push(&g, CZ_TOK_DUR + 1, NULL), 0);
    // The note sounds until 10: a chord may come at 9, a note not before 10.
    assert_true(cz_neural_grammar_accepts(&g, CZ_TOK_POS + 9));
    cz_neural_grammar next = g;
    cz_neural_grammar_push(&next, CZ_TOK_POS + 9, NULL);
    assert_true(cz_neural_grammar_accepts(&next, CZ_TOK_CHORD));
    assert_false(cz_neural_grammar_accepts(&next, CZ_TOK_PITCH));
    assert_int_equal(cz_neural_grammar_push(&g, CZ_TOK_BAR, NULL), 0);
    assert_int_equal(cz_neural_grammar_push(&g, CZ_TOK_BAR, NULL), 0);
    cz_neural_grammar_allowed(&g, allowed);
    assert_true(allowed[CZ_TOK_EOS]);
    assert_false(allowed[CZ_TOK_BAR]); // max_bars
    assert_false(cz_neural_grammar_done(&g));
    assert_int_equal(cz_neural_grammar_push(&g, CZ_TOK_EOS, NULL), 0);
    assert_true(cz_neural_grammar_done(&g) && cz_neural_grammar_ended(&g));
    assert_int_equal(cz_neural_grammar_allowed(&g, allowed), 0);

    // A tight budget, 2 tokens left after BAR: a chord (POS CHORD) fits, a
    // note (POS PITCH DUR) does not; once full the sequence is over, cut
    // between events, without EOS.
    cz_neural_grammar_init(&g, CZ_NEURAL_PREFIX + 3, 1, 0);
    for (int i = 0; i < CZ_NEURAL_PREFIX; i++)
        cz_neural_grammar_push(&g, pre[i], NULL);
    cz_neural_grammar_push(&g, CZ_TOK_BAR, NULL);
    assert_int_equal(cz_neural_grammar_push(&g, CZ_TOK_POS + 2, NULL), 0);
    cz_neural_grammar_allowed(&g, allowed);
    assert_true(allowed[CZ_TOK_CHORD + 5]);
    assert_false(allowed[CZ_TOK_PITCH + 24]);
    assert_false(cz_neural_grammar_done(&g));
    assert_int_equal(cz_neural_grammar_push(&g, CZ_TOK_CHORD + 5, NULL), 0);
    assert_true(cz_neural_grammar_done(&g));
    assert_false(cz_neural_grammar_ended(&g));
    assert_true(cz_neural_grammar_complete(&g));
    // min_bars above max_bars is lowered to it.
    cz_neural_grammar_init(&g, 64, 50, 6);
    assert_int_equal(g.min_bars, 6);
}

/* ================================================================ decoder */

static int ids(const char *names, int *out) {
    char buf[2048];
    snprintf(buf, sizeof buf, "%s", names);
    int n = 0;
    for (char *t = strtok(buf, " "); t; t = strtok(NULL, " ")) {
        out[n] = cz_neural_token_id(t);
        if (out[n] < 0)
            fail_msg("no token %s", t);
        n++;
    }
    return n;
}

static void test_decode(void **st) {
    (void)st;
    int t[128], enc[128];
    int n = ids("BOS KEY_9 MODE_MIN METER_4_4 TEMPO_FAST DENSITY_HIGH SECTION_B "
                "BAR POS_0 CHORD_9_MIN POS_0 PITCH_69 DUR_4 POS_4 PITCH_72 DUR_2 "
                "POS_8 CHORD_4_DOM7 POS_8 PITCH_71 DUR_8 "
                "BAR BAR POS_2 PITCH_64 DUR_14 EOS",
                t);
    cz_neural_piece p;
    cz_err err = {0};
    assert_int_equal(cz_neural_decode(t, n, &p, &err), 0);
    assert_int_equal(p.cond.key, 9);
    assert_int_equal(p.cond.mode, CZ_MODE_MIN);
    assert_int_equal(p.cond.tempo, CZ_TEMPO_FAST);
    assert_int_equal(p.cond.density, CZ_DENSITY_HIGH);
    assert_int_equal(p.cond.section, CZ_SECTION_B);
    assert_int_equal(p.bar_len, 16);
    assert_int_equal(p.n_bars, 3);
    assert_int_equal(p.bars[0].n_chords, 2);
    assert_int_equal(p.bars[0].chords[1].pos, 8);
    assert_int_equal(p.bars[0].chords[1].root, 4);
    assert_int_equal(p.bars[0].chords[1].quality, CZ_QUALITY_DOM7);
    assert_int_equal(p.bars[0].n_notes, 3);
    assert_int_equal(p.bars[0].notes[1].pos, 4);
    assert_int_equal(p.bars[0].notes[1].pitch, 72);
    assert_int_equal(p.bars[0].notes[1].dur, 2);
    assert_int_equal(p.bars[1].n_notes + p.bars[1].n_chords, 0);
    assert_int_equal(p.bars[2].notes[0].dur, 14);
    // And back.
    assert_int_equal(cz_neural_encode(&p, enc, 128, &err), n);
    assert_memory_equal(enc, t, n * sizeof(int));
    assert_int_equal(cz_neural_encode(&p, enc, 10, &err), -1);
    assert_non_null(strstr(err.msg, "more than 10 tokens"));
    // A piece built by hand that breaks the rules is refused.
    p.bars[0].notes[1].pos = 2; // starts while the first note (0..4) sounds
    assert_int_equal(cz_neural_encode(&p, enc, 128, &err), -1);
    assert_non_null(strstr(err.msg, "bar 1"));
    p.bars[0].notes[1].pitch = 120;
    assert_int_equal(cz_neural_encode(&p, enc, 128, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
    cz_neural_piece_free(&p);
    cz_neural_piece_free(&p); // emptied: a second free is harmless

    // The fixture's 40-token sequence stops between events, as a cut chunk
    // does: it parses, without EOS; one token less stops inside an event.
    reference r;
    reference_load(FIXTURE_LOGITS, CZ_TOK_VOCAB, &r);
    int last = r.n_seq - 1;
    assert_int_equal(cz_neural_decode(r.tokens[last], r.len[last], &p, &err), 0);
    assert_int_equal(p.n_bars, 3);
    assert_false(p.eos);
    assert_int_equal(cz_neural_encode(&p, enc, 128, &err), r.len[last]);
    assert_memory_equal(enc, r.tokens[last], r.len[last] * sizeof(int));
    cz_neural_piece_free(&p);
    assert_int_equal(cz_neural_decode(r.tokens[last], r.len[last] - 1, &p, &err), -1);
    assert_non_null(strstr(err.msg, "stops after 39 tokens, inside an event: expected CHORD_ or "
                                    "PITCH_ after POS_0"));
    assert_int_equal(cz_neural_decode(r.tokens[last], 4, &p, &err), -1);
    assert_non_null(strstr(err.msg, "inside its prefix"));
    reference_free(&r);

    // What does not parse, and the message says where and why.
    static const struct {
        const char *seq, *says;
    } bad[] = {
        {"BOS KEY_0 MODE_MAJ METER_4_4 TEMPO_MID DENSITY_MID SECTION_A BAR PITCH_60",
         "at token 8 of 9: token PITCH_60 is not allowed here: expected BAR, EOS or POS_0..POS_15"},
        {"BOS KEY_0 METER_4_4",
         "at token 2 of 3: token METER_4_4 is not allowed here: expected MODE_"},
        {"BOS KEY_0 MODE_MAJ METER_2_4 TEMPO_MID DENSITY_MID SECTION_A BAR POS_8",
         "token POS_8 is not allowed"},
        {"BOS KEY_0 MODE_MAJ METER_4_4 TEMPO_MID DENSITY_MID SECTION_A BAR POS_4 PITCH_60 DUR_1 "
         "POS_3",
         "token POS_3 is not allowed"},
        {"BOS KEY_0 MODE_MAJ METER_4_4 TEMPO_MID DENSITY_MID SECTION_A BAR POS_4 PITCH_60 DUR_1 "
         "POS_4",
         "token POS_4 is not allowed here: expected BAR, EOS or POS_4..POS_15"},
        {"BOS KEY_0 MODE_MAJ METER_4_4 TEMPO_MID DENSITY_MID SECTION_A BAR POS_4 CHORD_0_MAJ "
         "POS_4 CHORD_1_MAJ",
         "expected PITCH_ (a chord is already there) after POS_4"},
        {"BOS KEY_0 MODE_MAJ METER_4_4 TEMPO_MID DENSITY_MID SECTION_A BAR POS_2 PITCH_60 DUR_4 "
         "POS_4 PITCH_62",
         "expected CHORD_ (the melody's last note is still sounding) after POS_4"},
        {"BOS KEY_0 MODE_MAJ METER_4_4 TEMPO_MID DENSITY_MID SECTION_A BAR POS_14 PITCH_60 DUR_4",
         "token DUR_4 is not allowed here: expected DUR_1..DUR_2 after PITCH_ at POS_14"},
        {"BOS KEY_0 MODE_MAJ METER_4_4 TEMPO_MID DENSITY_MID SECTION_A BAR POS_0 PITCH_60 EOS",
         "expected DUR_"},
        {"BOS KEY_0 MODE_MAJ METER_4_4 TEMPO_MID DENSITY_MID SECTION_A EOS", "expected BAR"},
        {"BOS KEY_0 MODE_MAJ METER_4_4 TEMPO_MID DENSITY_MID SECTION_A BAR EOS BAR",
         "expected nothing after EOS"},
        {"BOS KEY_0 MODE_MAJ METER_4_4 TEMPO_MID DENSITY_MID SECTION_A BAR KEY_3", "KEY_3"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        n = ids(bad[i].seq, t);
        assert_int_equal(cz_neural_decode(t, n, &p, &err), -1);
        if (!strstr(err.msg, bad[i].says))
            fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err.msg, bad[i].says);
        assert_null(p.bars);
    }
    // A note held over the bar line is written again at POS_0; empty bars are rests.
    n = ids("BOS KEY_0 MODE_MAJ METER_4_4 TEMPO_MID DENSITY_MID SECTION_A BAR POS_14 PITCH_60 "
            "DUR_2 BAR POS_0 PITCH_60 DUR_2 POS_1 CHORD_0_MAJ POS_2 PITCH_62 DUR_1 BAR EOS",
            t);
    assert_int_equal(cz_neural_decode(t, n, &p, &err), 0);
    assert_int_equal(p.n_bars, 3);
    assert_true(p.eos);
    cz_neural_piece_free(&p);
}

/* ================================================================ conditioning */

static void test_conditioning(void **st) {
    (void)st;
    cz_controls c;
    memset(&c, 0, sizeof c);
    c.key_root = 9, c.mode = 1, c.tempo_bpm = 140;
    strcpy(c.moods[0], "calm"), c.n_moods = 1;
    cz_neural_cond k;
    cz_neural_cond_from_controls(&c, 1, &k);
    int t[CZ_NEURAL_PREFIX], want[CZ_NEURAL_PREFIX];
    assert_int_equal(cz_neural_cond_tokens(&k, t), CZ_NEURAL_PREFIX);
    ids("BOS KEY_9 MODE_MIN METER_4_4 TEMPO_FAST DENSITY_LOW SECTION_A", want);
    assert_memory_equal(t, want, sizeof t);
    // Tempo bands at their edges, and from words.
    assert_int_equal(cz_neural_tempo_band(89.9), CZ_TEMPO_SLOW);
    assert_int_equal(cz_neural_tempo_band(90), CZ_TEMPO_MID);
    assert_int_equal(cz_neural_tempo_band(130), CZ_TEMPO_MID);
    assert_int_equal(cz_neural_tempo_band(130.1), CZ_TEMPO_FAST);
    c.tempo_bpm = 0;
    strcpy(c.tempo, "slow");
    strcpy(c.moods[0], "energetic");
    cz_neural_cond_from_controls(&c, 1, &k);
    assert_int_equal(k.tempo, CZ_TEMPO_SLOW);
    assert_int_equal(k.density, CZ_DENSITY_HIGH);
    // No key or mode: drawn from the seed, the same for the same seed, and
    // over seeds every key appears.
    c.key_root = -1, c.mode = -1, c.n_moods = 0, c.tempo[0] = 0;
    cz_neural_cond a, b;
    cz_neural_cond_from_controls(&c, 77, &a);
    cz_neural_cond_from_controls(&c, 77, &b);
    assert_memory_equal(&a, &b, sizeof a);
    assert_int_equal(a.tempo, CZ_TEMPO_MID);
    assert_int_equal(a.density, CZ_DENSITY_MID);
    int seen = 0, minor = 0;
    for (uint64_t seed = 0; seed < 200; seed++) {
        cz_neural_cond_from_controls(&c, seed, &a);
        seen |= 1 << a.key;
        minor += a.mode == CZ_MODE_MIN;
    }
    assert_int_equal(seen, 0xfff);
    assert_in_range(minor, 60, 140);
    // Names and ids agree both ways for the whole vocabulary.
    for (int i = 0; i < CZ_TOK_VOCAB; i++)
        assert_int_equal(cz_neural_token_id(cz_neural_token_name(i)), i);
    assert_string_equal(cz_neural_token_name(CZ_TOK_CHORD + 7 * 4 + 3), "CHORD_7_DOM7");
    assert_string_equal(cz_neural_token_name(CZ_TOK_PITCH + 24), "PITCH_60");
    assert_string_equal(cz_neural_token_name(CZ_TOK_DUR + 15), "DUR_16");
    assert_null(cz_neural_token_name(CZ_TOK_VOCAB));
}

int main(void) {
    cz_mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixture_steps),
        cmocka_unit_test(test_fixture_prefill),
        cmocka_unit_test(test_committed_weights),
        cmocka_unit_test(test_batched_equals_unbatched),
        cmocka_unit_test(test_one_blas_thread),
        cmocka_unit_test(test_step_errors),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_corrupt_file),
        cmocka_unit_test(test_sample_top_p),
        cmocka_unit_test(test_sampler_determinism),
        cmocka_unit_test(test_guard_refuses_copies),
        cmocka_unit_test(test_pieces),
        cmocka_unit_test(test_grammar_thousand),
        cmocka_unit_test(test_grammar_bars),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_conditioning),
        cmocka_unit_test(test_device_choice),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
