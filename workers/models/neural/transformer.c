/* neural@1's forward pass: see transformer.h.
 *
 * Every call is one forward over a set of rows, each row a (slot, position,
 * token): a batched step has one row per sequence, a prefill one row per
 * prompt token of one slot. The rows move through the layers together as a
 * matrix X [rows, d_model]:
 *
 *   X = tok_emb[token] + pos_emb[position]
 *   per layer:  H = LN1(X);  [Q K V] = H Wqkv^T                     (one sgemm)
 *               each row's K and V go to its slot's cache at its position;
 *               each row attends, head by head, over its slot's cache
 *               0..position (causal by construction: later positions are
 *               not there, or belong to rows after it in the same prefill);
 *               X += A Wo^T;  H = LN2(X);  X += GELU(H W1^T + b1) W2^T + b2
 *   logits = LNf(X) tok_emb^T                                      (tied head)
 *
 * Writing every row's K and V before any row attends is what lets one call
 * hold several positions of one slot. The matrix products are OpenBLAS
 * sgemm over many rows at once, so a batch of 32 sequences costs far less
 * than 32 single steps: the weights are read once per group of rows
 * instead of once per sequence. Wq, Wk and Wv are packed into one [3D, D]
 * matrix at load so the three projections are one product.
 *
 * Batch invariance. A job's tokens must not depend on which other jobs
 * shared its batch (the same seed gives the same bytes), so a row's
 * logits must be the same bits whatever rows sit beside it. OpenBLAS does
 * not promise that: it picks kernels by shape and thread count, and some
 * of them sum a row in another order depending on its lane (on this
 * project's machines a 1-row and a 16-row product of the same row differ
 * in the last bits). So every product runs in groups of exactly `chunk`
 * rows, the last group padded with zero rows, and `chunk` is chosen at
 * load by trying 32, 16, 8, 4, 2 on the model's own shapes and keeping the
 * largest for which a row gives the same bits in every lane whatever the
 * other rows hold (1 always does). Everything else (LayerNorm, attention,
 * GELU) is computed row by row by the same code.
 *
 * Threads. Attention, which reads every row's own cache and costs as much
 * as the products at batch 32, is shared among the state's threads, rows
 * dealt round-robin. The products' row groups are shared the same way when
 * OpenBLAS runs one thread (each call then runs in its caller's thread);
 * with more, OpenBLAS shares each call itself. Who computes a group never
 * changes its bits.
 *
 * Devices. A state made with CZ_TF_CUDA keeps only its slots' lengths
 * here; its caches, scratch and forward are cuda.cu's, reached through
 * cuda.h. The checks of a step (slots, tokens, positions) are this file's
 * for both devices, so the two refuse the same things with the same words.
 * Builds without nvcc define no CZ_HAVE_CUDA, have no cuda.cu, and refuse
 * CZ_TF_CUDA states with a message that says so.
 *
 * Numerics follow PyTorch in float32: LayerNorm with the biased variance
 * (accumulated in double, which only removes rounding), softmax with the
 * maximum subtracted, GELU in its tanh form (as x * sigmoid(2u), the same
 * function). */
#include "workers/models/neural/transformer.h"

#include <cblas.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/rand.h"
#ifdef CZ_HAVE_CUDA
#include "workers/models/neural/cuda.h"
#endif

#define MAX_BATCH 4096
#define MAX_THREADS 64
#define AUTO_THREADS 8        /* most threads the automatic choice takes */
#define MIN_ROWS_PER_THREAD 2 /* fewer rows than this per thread: attend on one */
#define CHUNK_MAX 32          /* the most rows per sgemm the load-time check tries */
#define LANES 16              /* positions per tile of the key cache (a multiple of 8) */

struct cz_tf_model {
    cz_neural_weights *w;
    cz_tf_config cfg;
    float *wqkv;      /* per layer [3D, D]: Wq, then Wk, then Wv */
    int chunk;        /* rows per sgemm: the most that keeps rows independent */
    int blas_threads; /* OpenBLAS's thread count when chunk was chosen */
    /* The weights on the GPU, uploaded by the first CUDA state (under
     * gpu_mu: a model is otherwise read-only and shared between threads). */
    pthread_mutex_t gpu_mu;
    struct cz_cuda_model *gpu;
};

/* A piece of work the state's threads share: thread t of `shares` takes
 * rows (attention) or row groups (a matrix product) t, t + shares, ... */
typedef enum job_kind { JOB_STOP, JOB_ATTEND, JOB_LINEAR } job_kind;

typedef struct job {
    job_kind kind;
    int shares;
    int layer, rows;    /* attention: the layer, the number of rows */
    const float *a, *w; /* a product: C (+)= A W^T, n rows in groups of chunk */
    float *c;
    int n, out, in, chunk;
    float beta;
} job;

/* Scratch matrices have max_rows rounded up to CHUNK_MAX rows. */
struct cz_tf_state {
    const cz_tf_model *m;
    cz_tf_device device;
    struct cz_cuda_state *gpu; /* CZ_TF_CUDA: cuda.cu's part; the CPU's below are unused */
    int max_batch, max_rows;
    int seq_stride; /* max_seq rounded up to LANES */
    int *len;       /* per slot: tokens held */
    float *k, *v;   /* per slot, per layer: seq_stride * D, see cache() */
    float *x, *h;   /* [rows, D] */
    float *qkv;     /* [rows, 3D] */
    float *att;     /* [rows, D] */
    float *ff;      /* [rows, F] */
    float *logits;  /* [rows, V] */
    int *row_slot, *row_pos;
    /* Work is shared among n_threads threads: the caller's (index 0) and
     * helpers that wait for `gen` to change, do their share of `job` and
     * count `pending` down. Each thread has its own attention scores:
     * n_threads * seq_stride floats. */
    int n_threads;
    float *scores;
    pthread_t *helpers;
    pthread_mutex_t mu;
    pthread_cond_t go, finished;
    unsigned gen;
    int pending;
    job job;
};

/* ================================================================ model */

static void linear(const float *a, const float *w, float *c, int n, int out, int in, float beta,
                   int chunk);

/* Fills @p n floats with values in [-1, 1) from the stream at *@p rng. */
static void fill(float *x, size_t n, uint64_t *rng) {
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(2 * cz_rand_unit(cz_splitmix64_next(rng)) - 1);
}

/* Whether an sgemm of @p chunk rows by W [out, in] gives a row the same
 * bits in every lane, whatever the other rows hold. */
static bool lanes_agree(const float *w, int out, int in, int chunk, float *a, float *c,
                        float *ref) {
    uint64_t rng = 0x6e657572616cull; // fixed: the check is the same every time
    float *probe = ref + out;
    fill(probe, (size_t)in, &rng);
    for (int lane = 0; lane < chunk; lane++) {
        fill(a, (size_t)chunk * in, &rng);
        memcpy(a + (size_t)lane * in, probe, (size_t)in * sizeof(float));
        linear(a, w, c, chunk, out, in, 0.0f, chunk);
        if (lane == 0)
            memcpy(ref, c, (size_t)out * sizeof(float));
        else if (memcmp(ref, c + (size_t)lane * out, (size_t)out * sizeof(float)))
            return false;
    }
    return true;
}

/* The largest number of rows per sgemm (of 32, 16, 8, 4, 2) for which
 * OpenBLAS computes every row of every one of the model's products the
 * same way whatever lane it sits in, else 1. Measured rather than assumed:
 * which kernels OpenBLAS picks depends on the CPU, the shapes and its
 * thread count, and some compute some lanes in another order. */
static int pick_chunk(const cz_tf_model *m) {
    const cz_tf_config *c = &m->cfg;
    const cz_tf_layer_weights *lw = &m->w->layers[0];
    const int D = c->d_model, F = c->d_ff, big = D > F ? D : F;
    const struct {
        const float *w;
        int out, in;
    } shapes[] = {
        {m->wqkv, 3 * D, D},          {lw->wo, D, D}, {lw->w1, F, D}, {lw->w2, D, F},
        {m->w->tok_emb, c->vocab, D},
    };
    int widest = 3 * D > F ? 3 * D : F;
    widest = widest > c->vocab ? widest : c->vocab;
    float *a = cz_malloc((size_t)CHUNK_MAX * big * sizeof(float));
    float *out = cz_malloc((size_t)CHUNK_MAX * widest * sizeof(float));
    float *ref = cz_malloc((size_t)(widest + big) * sizeof(float));
    int chunk = CHUNK_MAX;
    for (; chunk > 1; chunk /= 2) {
        bool ok = true;
        for (size_t i = 0; ok && i < sizeof shapes / sizeof *shapes; i++)
            ok = lanes_agree(shapes[i].w, shapes[i].out, shapes[i].in, chunk, a, out, ref);
        if (ok)
            break;
    }
    free(a);
    free(out);
    free(ref);
    return chunk;
}

cz_tf_model *cz_tf_load(const char *path, cz_err *err) {
    cz_neural_weights *w = cz_neural_weights_open(path, err);
    if (!w)
        return NULL;
    cz_tf_model *m = cz_calloc(1, sizeof *m);
    m->w = w;
    m->cfg = w->cfg;
    size_t D = (size_t)m->cfg.d_model, L = (size_t)m->cfg.n_layers;
    m->wqkv = cz_malloc(L * 3 * D * D * sizeof(float));
    for (size_t l = 0; l < L; l++) {
        float *dst = m->wqkv + l * 3 * D * D;
        memcpy(dst, w->layers[l].wq, D * D * sizeof(float));
        memcpy(dst + D * D, w->layers[l].wk, D * D * sizeof(float));
        memcpy(dst + 2 * D * D, w->layers[l].wv, D * D * sizeof(float));
    }
    m->blas_threads = openblas_get_num_threads();
    m->chunk = pick_chunk(m);
    pthread_mutex_init(&m->gpu_mu, NULL);
    return m;
}

void cz_tf_free(cz_tf_model *m) {
    if (!m)
        return;
#ifdef CZ_HAVE_CUDA
    cz_cuda_model_free(m->gpu);
#endif
    pthread_mutex_destroy(&m->gpu_mu);
    cz_neural_weights_free(m->w);
    free(m->wqkv);
    free(m);
}

const cz_tf_config *cz_tf_config_of(const cz_tf_model *m) {
    return &m->cfg;
}

const cz_neural_weights *cz_tf_weights(const cz_tf_model *m) {
    return m->w;
}

int cz_tf_batch_chunk(const cz_tf_model *m) {
    return m->chunk;
}

/* ================================================================ state */

static size_t round_up(size_t n, size_t to) {
    return (n + to - 1) / to * to;
}

static void job_run(cz_tf_state *s, int t);

typedef struct helper_arg {
    cz_tf_state *s;
    int t;
} helper_arg;

static void *helper_main(void *p) {
    helper_arg a = *(helper_arg *)p;
    free(p);
    cz_tf_state *s = a.s;
    unsigned seen = 0;
    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (s->gen == seen)
            pthread_cond_wait(&s->go, &s->mu);
        seen = s->gen;
        bool stop = s->job.kind == JOB_STOP;
        pthread_mutex_unlock(&s->mu);
        if (stop)
            return NULL;
        if (a.t < s->job.shares)
            job_run(s, a.t);
        pthread_mutex_lock(&s->mu);
        if (--s->pending == 0)
            pthread_cond_signal(&s->finished);
        pthread_mutex_unlock(&s->mu);
    }
}

/* Wakes the helpers for s->job (a JOB_STOP tells them to end). */
static void helpers_go(cz_tf_state *s) {
    pthread_mutex_lock(&s->mu);
    s->pending = s->n_threads - 1;
    s->gen++;
    pthread_cond_broadcast(&s->go);
    pthread_mutex_unlock(&s->mu);
}

static void helpers_wait(cz_tf_state *s) {
    pthread_mutex_lock(&s->mu);
    while (s->pending > 0)
        pthread_cond_wait(&s->finished, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

/* Runs s->job on @p shares threads (this one and helpers), or here alone. */
static void job_share(cz_tf_state *s, int shares) {
    s->job.shares = shares > s->n_threads ? s->n_threads : shares < 1 ? 1 : shares;
    if (s->job.shares == 1) {
        job_run(s, 0);
        return;
    }
    helpers_go(s);
    job_run(s, 0);
    helpers_wait(s);
}

/* The CPUs this process may run on, at most AUTO_THREADS. */
static int auto_threads(void) {
    cpu_set_t set;
    int n = sched_getaffinity(0, sizeof set, &set) == 0 ? CPU_COUNT(&set) : 1;
    return n < 1 ? 1 : n > AUTO_THREADS ? AUTO_THREADS : n;
}

int cz_tf_has_cuda(void) {
#ifdef CZ_HAVE_CUDA
    return 1;
#else
    return 0;
#endif
}

int cz_tf_device_parse(const char *name, cz_tf_device *out, cz_err *err) {
    if (!name || !strcmp(name, "cpu"))
        *out = CZ_TF_CPU;
    else if (!strcmp(name, "cuda"))
        *out = CZ_TF_CUDA;
    else
        return cz_err_set(err,
                          "neural@1: unknown device \"%s\" (CADENZA_NEURAL_DEVICE takes cpu or "
                          "cuda)",
                          name);
    return 0;
}

const char *cz_tf_device_name(cz_tf_device device) {
    return device == CZ_TF_CUDA ? "cuda" : "cpu";
}

cz_tf_device cz_tf_state_device(const cz_tf_state *s) {
    return s->device;
}

int cz_tf_state_chunk(const cz_tf_state *s) {
#ifdef CZ_HAVE_CUDA
    if (s->device == CZ_TF_CUDA)
        return cz_cuda_model_chunk(s->m->gpu);
#endif
    return s->m->chunk;
}

/* The forward of a CUDA state over the rows set in s->row_slot/row_pos. */
static int forward_cuda(cz_tf_state *s, const int *tokens, int n, float *logits, cz_err *err) {
#ifdef CZ_HAVE_CUDA
    return cz_cuda_forward(s->gpu, tokens, s->row_slot, s->row_pos, n, logits, err);
#else
    (void)s, (void)tokens, (void)n, (void)logits;
    return cz_err_set(err, "neural@1: this build has no CUDA support"); // no such state exists
#endif
}

/* A state on the GPU: the slots' lengths and rows here, the rest in
 * cuda.cu. The model's weights go up with the first such state. */
static cz_tf_state *state_new_cuda(const cz_tf_model *m, int max_batch, cz_err *err) {
#ifdef CZ_HAVE_CUDA
    const cz_tf_config *c = &m->cfg;
    // The lazily made device copy is the one thing in a model that changes.
    cz_tf_model *mm = (cz_tf_model *)m;
    pthread_mutex_lock(&mm->gpu_mu);
    if (!mm->gpu)
        mm->gpu = cz_cuda_model_new(m->w, err);
    struct cz_cuda_model *g = mm->gpu;
    pthread_mutex_unlock(&mm->gpu_mu);
    if (!g)
        return NULL;
    cz_tf_state *s = cz_calloc(1, sizeof *s);
    s->m = m;
    s->device = CZ_TF_CUDA;
    s->max_batch = max_batch;
    s->max_rows = max_batch > c->max_seq ? max_batch : c->max_seq;
    s->len = cz_calloc((size_t)max_batch, sizeof *s->len);
    s->row_slot = cz_malloc((size_t)s->max_rows * sizeof(int));
    s->row_pos = cz_malloc((size_t)s->max_rows * sizeof(int));
    if (!(s->gpu = cz_cuda_state_new(g, max_batch, s->max_rows, err))) {
        cz_tf_state_free(s);
        return NULL;
    }
    return s;
#else
    (void)m, (void)max_batch;
    cz_err_set(err, "neural@1: this build has no CUDA support (nvcc was not found when it was "
                    "built); rebuild where nvcc is on the PATH, or use the cpu device");
    return NULL;
#endif
}

cz_tf_state *cz_tf_state_new(const cz_tf_model *m, int max_batch, int threads, cz_err *err) {
    return cz_tf_state_new_on(m, max_batch, threads, CZ_TF_CPU, err);
}

cz_tf_state *cz_tf_state_new_on(const cz_tf_model *m, int max_batch, int threads,
                                cz_tf_device device, cz_err *err) {
    if (max_batch < 1 || max_batch > MAX_BATCH) {
        cz_err_set(err, "neural@1: max_batch %d is not in 1..%d", max_batch, MAX_BATCH);
        return NULL;
    }
    if (threads < 0 || threads > MAX_THREADS) {
        cz_err_set(err, "neural@1: threads %d is not in 0..%d", threads, MAX_THREADS);
        return NULL;
    }
    if (device == CZ_TF_CUDA)
        return state_new_cuda(m, max_batch, err);
    if (device != CZ_TF_CPU) {
        cz_err_set(err, "neural@1: unknown device %d", (int)device);
        return NULL;
    }
    const cz_tf_config *c = &m->cfg;
    size_t D = (size_t)c->d_model, L = (size_t)c->n_layers, B = (size_t)max_batch;
    cz_tf_state *s = cz_calloc(1, sizeof *s);
    s->m = m;
    s->max_batch = max_batch;
    s->max_rows = max_batch > c->max_seq ? max_batch : c->max_seq;
    s->seq_stride = (int)round_up((size_t)c->max_seq, LANES);
    size_t R = round_up((size_t)s->max_rows, CHUNK_MAX), S = (size_t)s->seq_stride;
    s->len = cz_calloc(B, sizeof *s->len);
    // calloc: large blocks come from fresh zero pages, so a slot's cache
    // costs memory only as its positions fill.
    s->k = cz_calloc(B * L * S * D, sizeof(float));
    s->v = cz_calloc(B * L * S * D, sizeof(float));
    s->x = cz_calloc(R * D, sizeof(float));
    s->h = cz_calloc(R * D, sizeof(float));
    s->qkv = cz_calloc(R * 3 * D, sizeof(float));
    s->att = cz_calloc(R * D, sizeof(float));
    s->ff = cz_calloc(R * (size_t)c->d_ff, sizeof(float));
    s->logits = cz_calloc(R * (size_t)c->vocab, sizeof(float));
    s->row_slot = cz_malloc(R * sizeof(int));
    s->row_pos = cz_malloc(R * sizeof(int));
    int want = threads ? threads : auto_threads();
    s->scores = cz_calloc((size_t)want * S, sizeof(float));
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->go, NULL);
    pthread_cond_init(&s->finished, NULL);
    s->helpers = cz_calloc((size_t)want, sizeof(pthread_t));
    // A helper that cannot start only means fewer threads, as in master.c.
    for (s->n_threads = 1; s->n_threads < want; s->n_threads++) {
        helper_arg *a = cz_malloc(sizeof *a);
        *a = (helper_arg){s, s->n_threads};
        if (pthread_create(&s->helpers[s->n_threads - 1], NULL, helper_main, a)) {
            free(a);
            break;
        }
    }
    return s;
}

void cz_tf_state_free(cz_tf_state *s) {
    if (!s)
        return;
    if (s->device == CZ_TF_CUDA) {
#ifdef CZ_HAVE_CUDA
        cz_cuda_state_free(s->gpu);
#endif
    } else {
        s->job.kind = JOB_STOP;
        helpers_go(s);
        for (int t = 1; t < s->n_threads; t++)
            pthread_join(s->helpers[t - 1], NULL);
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->go);
        pthread_cond_destroy(&s->finished);
    }
    free(s->helpers);
    free(s->len);
    free(s->k);
    free(s->v);
    free(s->x);
    free(s->h);
    free(s->qkv);
    free(s->att);
    free(s->ff);
    free(s->logits);
    free(s->scores);
    free(s->row_slot);
    free(s->row_pos);
    free(s);
}

void cz_tf_slot_reset(cz_tf_state *s, int slot) {
    if (slot >= 0 && slot < s->max_batch)
        s->len[slot] = 0;
}

int cz_tf_slot_len(const cz_tf_state *s, int slot) {
    return slot >= 0 && slot < s->max_batch ? s->len[slot] : -1;
}

/* ================================================================ forward */

static void layer_norm(const float *x, float *out, const float *w, const float *b, int d,
                       float eps) {
    double mean = 0, var = 0;
    for (int i = 0; i < d; i++)
        mean += x[i];
    mean /= d;
    for (int i = 0; i < d; i++)
        var += (x[i] - mean) * (x[i] - mean);
    var /= d;
    float mu = (float)mean, rstd = (float)(1.0 / sqrt(var + eps));
    for (int i = 0; i < d; i++)
        out[i] = (x[i] - mu) * rstd * w[i] + b[i];
}

/* GELU, tanh form: 0.5 x (1 + tanh(u)) is x * sigmoid(2u), which needs one
 * expf instead of tanhf's slower expm1f and is exact in the limits. */
static float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; // sqrt(2 / pi)
    float u = k * (x + 0.044715f * x * x * x);
    return x / (1.0f + expf(-2.0f * u));
}

/* C[n, out] (+)= A[n, in] W^T, W stored [out, in] as nn.Linear keeps it,
 * @p chunk rows per sgemm whatever n is (see the file's header): A and C
 * have n rounded up to @p chunk rows. */
static void linear(const float *a, const float *w, float *c, int n, int out, int in, float beta,
                   int chunk) {
    for (int r = 0; r < n; r += chunk)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, chunk, out, in, 1.0f,
                    a + (size_t)r * in, in, w, in, beta, c + (size_t)r * out, out);
}

/* The cache of @p slot in layer @p l, seq_stride * D floats. Values are
 * [head][position][head_dim]. Keys are tiled: per head, per LANES
 * positions, [head_dim][LANES], so a tile's scores are a sum of head_dim
 * rows of LANES floats (no reduction inside a loop: the compiler
 * vectorises it) and a head's keys are read as one sequential stream. */
static float *cache(const cz_tf_state *s, float *base, int slot, int l) {
    const cz_tf_config *c = &s->m->cfg;
    return base + ((size_t)slot * c->n_layers + l) * s->seq_stride * c->d_model;
}

static void cache_put(cz_tf_state *s, int l, int slot, int pos, const float *k, const float *v) {
    const cz_tf_config *c = &s->m->cfg;
    const int hd = c->d_model / c->n_heads;
    const size_t S = (size_t)s->seq_stride;
    float *K = cache(s, s->k, slot, l), *V = cache(s, s->v, slot, l);
    for (int h = 0; h < c->n_heads; h++) {
        float *kh = K + (size_t)h * hd * S, *vh = V + (size_t)h * S * hd;
        float *tile = kh + (size_t)(pos / LANES) * hd * LANES + pos % LANES;
        for (int i = 0; i < hd; i++)
            tile[i * LANES] = k[h * hd + i];
        memcpy(vh + (size_t)pos * hd, v + h * hd, (size_t)hd * sizeof(float));
    }
}

/* Eight floats, with GCC's vector extensions: the accumulators of
 * attention stay in registers, as the compiler's own vectoriser does not
 * manage at -O2; one AVX register where the CPU has AVX2 (the functions
 * below are compiled twice and the loader picks), two SSE ones elsewhere.
 * Arithmetic per lane is the scalar code's, a multiply then an add (the
 * Makefile's -std=c17 keeps gcc from contracting them into FMAs), so both
 * compilations give the same bits. */
typedef float v8f __attribute__((vector_size(32)));

/* acc += a * (8 floats at p); macros, as a function passing v8f by value
 * would change the ABI between the two compilations. */
#define MUL_ADD8(acc, a, p)                                                                        \
    do {                                                                                           \
        v8f x_;                                                                                    \
        memcpy(&x_, (p), sizeof x_);                                                               \
        (acc) += (a)*x_;                                                                           \
    } while (0)
#define SPLAT8(x) ((v8f){(x), (x), (x), (x), (x), (x), (x), (x)})
#define CLONES __attribute__((target_clones("avx2", "default")))

/* One head's scores before scaling: sc[j] = q . k_j for j in [0, n), n a
 * multiple of LANES, from the head's tiled keys @p kt (see cache()). A
 * tile's LANES scores stay in registers while the head's dimensions go by. */
CLONES static void head_scores(float *restrict sc, const float *restrict kt,
                               const float *restrict q, int hd, int n) {
    for (int j = 0; j < n; j += LANES) {
        const float *tile = kt + (size_t)j * hd;
        v8f acc[LANES / 8] = {0};
        for (int i = 0; i < hd; i++) {
            const v8f qi = SPLAT8(q[i]);
            const float *k = tile + i * LANES;
#pragma GCC unroll 16
            for (int t = 0; t < LANES / 8; t++)
                MUL_ADD8(acc[t], qi, k + 8 * t);
        }
        memcpy(sc + j, acc, sizeof acc);
    }
}

/* One head's output: o = sum over j in [0, n) of p[j] v_j, values stored
 * [position][head_dim]; 32 outputs at a time stay in registers (then 8, then 1). */
CLONES static void head_values(float *restrict o, const float *restrict v, const float *restrict p,
                               int n, int hd) {
    int i = 0;
    for (; i + 32 <= hd; i += 32) {
        v8f acc[4] = {0};
        for (int j = 0; j < n; j++) {
            const v8f pj = SPLAT8(p[j]);
            const float *vj = v + (size_t)j * hd + i;
#pragma GCC unroll 4
            for (int t = 0; t < 4; t++)
                MUL_ADD8(acc[t], pj, vj + 8 * t);
        }
        memcpy(o + i, acc, sizeof acc);
    }
    for (; i + 8 <= hd; i += 8) {
        v8f acc = {0};
        for (int j = 0; j < n; j++)
            MUL_ADD8(acc, SPLAT8(p[j]), v + (size_t)j * hd + i);
        memcpy(o + i, &acc, sizeof acc);
    }
    for (; i < hd; i++) {
        float acc = 0;
        for (int j = 0; j < n; j++)
            acc += p[j] * v[(size_t)j * hd + i];
        o[i] = acc;
    }
}

/* Attention of one row (query @p q, at @p pos of @p slot) into @p out,
 * head by head: scores, softmax with the maximum subtracted, the weighted
 * sum of values. Scores past @p pos (up to the next multiple of LANES) come
 * from whatever the cache holds there and are ignored. */
static void attend(const cz_tf_state *s, int l, int slot, int pos, const float *q, float *out,
                   float *sc) {
    const cz_tf_config *c = &s->m->cfg;
    const int hd = c->d_model / c->n_heads, n = pos + 1;
    const int n_lanes = (int)round_up((size_t)n, LANES);
    const size_t S = (size_t)s->seq_stride;
    const float scale = 1.0f / sqrtf((float)hd);
    const float *K = cache(s, s->k, slot, l), *V = cache(s, s->v, slot, l);
    for (int h = 0; h < c->n_heads; h++) {
        head_scores(sc, K + (size_t)h * hd * S, q + h * hd, hd, n_lanes);
        float max = -INFINITY;
        for (int j = 0; j < n; j++) {
            sc[j] *= scale;
            max = sc[j] > max ? sc[j] : max;
        }
        float sum = 0;
        for (int j = 0; j < n; j++)
            sum += sc[j] = expf(sc[j] - max);
        for (int j = 0; j < n; j++)
            sc[j] /= sum;
        head_values(out + h * hd, V + (size_t)h * S * hd, sc, n, hd);
    }
}

/* Thread @p t's share of s->job: every shares-th row (so that long and
 * short sequences mix in each share) or row group, from t. */
static void job_run(cz_tf_state *s, int t) {
    const job *j = &s->job;
    if (j->kind == JOB_ATTEND) {
        const int D = s->m->cfg.d_model;
        float *sc = s->scores + (size_t)t * s->seq_stride;
        for (int r = t; r < j->rows; r += j->shares)
            attend(s, j->layer, s->row_slot[r], s->row_pos[r], s->qkv + (size_t)r * 3 * D,
                   s->att + (size_t)r * D, sc);
    } else if (j->kind == JOB_LINEAR) {
        for (int r = t * j->chunk; r < j->n; r += j->shares * j->chunk)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, j->chunk, j->out, j->in, 1.0f,
                        j->a + (size_t)r * j->in, j->in, j->w, j->in, j->beta,
                        j->c + (size_t)r * j->out, j->out);
    }
}

/* C[n, out] (+)= A[n, in] W^T (see linear()), its row groups shared among
 * the threads when OpenBLAS runs each call in the caller's thread (one
 * OpenBLAS thread); with more, OpenBLAS shares each call itself. Either
 * way every group is the same call, so the bits do not change. */
static void product(cz_tf_state *s, const float *a, const float *w, float *c, int n, int out,
                    int in, float beta) {
    const int chunk = s->m->chunk, groups = (n + chunk - 1) / chunk;
    s->job = (job){.kind = JOB_LINEAR,
                   .a = a,
                   .w = w,
                   .c = c,
                   .n = n,
                   .out = out,
                   .in = in,
                   .chunk = chunk,
                   .beta = beta};
    job_share(s, s->m->blas_threads == 1 ? groups : 1);
}

/* The forward over the rows set in s->row_slot/row_pos with @p tokens. */
static void forward(const cz_tf_model *m, cz_tf_state *s, const int *tokens, int n, float *logits) {
    const cz_tf_config *c = &m->cfg;
    const cz_neural_weights *w = m->w;
    const int D = c->d_model, F = c->d_ff, V = c->vocab;
    const float eps = c->ln_eps;
    float *x = s->x, *h = s->h, *qkv = s->qkv, *att = s->att, *ff = s->ff;
    // The rows that pad the last chunk are zero, and stay finite.
    const int chunk = m->chunk;
    size_t pad = round_up((size_t)n, (size_t)chunk) - (size_t)n;
    memset(x + (size_t)n * D, 0, pad * D * sizeof(float));
    memset(h + (size_t)n * D, 0, pad * D * sizeof(float));
    memset(att + (size_t)n * D, 0, pad * D * sizeof(float));
    for (int r = 0; r < n; r++) {
        const float *te = w->tok_emb + (size_t)tokens[r] * D;
        const float *pe = w->pos_emb + (size_t)s->row_pos[r] * D;
        for (int i = 0; i < D; i++)
            x[(size_t)r * D + i] = te[i] + pe[i];
    }
    for (int l = 0; l < c->n_layers; l++) {
        const cz_tf_layer_weights *lw = &w->layers[l];
        for (int r = 0; r < n; r++)
            layer_norm(x + (size_t)r * D, h + (size_t)r * D, lw->ln1_w, lw->ln1_b, D, eps);
        product(s, h, m->wqkv + (size_t)l * 3 * D * D, qkv, n, 3 * D, D, 0.0f);
        for (int r = 0; r < n; r++) {
            const float *row = qkv + (size_t)r * 3 * D;
            cache_put(s, l, s->row_slot[r], s->row_pos[r], row + D, row + 2 * D);
        }
        s->job = (job){.kind = JOB_ATTEND, .layer = l, .rows = n};
        job_share(s, n / MIN_ROWS_PER_THREAD);
        product(s, att, lw->wo, x, n, D, D, 1.0f);
        for (int r = 0; r < n; r++)
            layer_norm(x + (size_t)r * D, h + (size_t)r * D, lw->ln2_w, lw->ln2_b, D, eps);
        product(s, h, lw->w1, ff, n, F, D, 0.0f);
        for (int r = 0; r < n; r++) {
            float *row = ff + (size_t)r * F;
            for (int i = 0; i < F; i++)
                row[i] = gelu_tanh(row[i] + lw->b1[i]);
        }
        product(s, ff, lw->w2, x, n, D, F, 1.0f);
        for (int r = 0; r < n; r++)
            for (int i = 0; i < D; i++)
                x[(size_t)r * D + i] += lw->b2[i];
    }
    if (!logits)
        return;
    for (int r = 0; r < n; r++)
        layer_norm(x + (size_t)r * D, h + (size_t)r * D, w->lnf_w, w->lnf_b, D, eps);
    product(s, h, w->tok_emb, s->logits, n, V, D, 0.0f);
    memcpy(logits, s->logits, (size_t)n * V * sizeof(float));
}

int cz_tf_step(const cz_tf_model *m, cz_tf_state *s, const int *slots, const int *tokens, int n,
               float *logits, cz_err *err) {
    const cz_tf_config *c = &m->cfg;
    if (s->m != m)
        return cz_err_set(err, "neural@1: the state belongs to another model");
    // The row group was checked for this thread count; with another,
    // OpenBLAS may pick other kernels and batching could change results.
    if (s->device == CZ_TF_CPU && openblas_get_num_threads() != m->blas_threads)
        return cz_err_set(err,
                          "neural@1: OpenBLAS's thread count changed from %d to %d after the "
                          "model was loaded; set it before cz_tf_load()",
                          m->blas_threads, openblas_get_num_threads());
    if (n < 1 || n > s->max_rows)
        return cz_err_set(err, "neural@1: a step takes 1..%d rows, not %d", s->max_rows, n);
    // Positions first, so that an error leaves every slot as it was.
    for (int r = 0; r < n; r++) {
        int slot = slots[r];
        if (slot < 0 || slot >= s->max_batch)
            return cz_err_set(err, "neural@1: slot %d is not in 0..%d", slot, s->max_batch - 1);
        if (tokens[r] < 0 || tokens[r] >= c->vocab)
            return cz_err_set(err, "neural@1: token %d is not in 0..%d", tokens[r], c->vocab - 1);
        int pos = s->len[slot];
        for (int q = 0; q < r; q++)
            pos += slots[q] == slot;
        if (pos >= c->max_seq)
            return cz_err_set(err, "neural@1: slot %d already holds max_seq (%d) tokens", slot,
                              c->max_seq);
        s->row_slot[r] = slot;
        s->row_pos[r] = pos;
    }
    if (s->device == CZ_TF_CUDA) {
        if (forward_cuda(s, tokens, n, logits, err))
            return -1;
    } else
        forward(m, s, tokens, n, logits);
    for (int r = 0; r < n; r++)
        s->len[slots[r]]++;
    return 0;
}

int cz_tf_prefill(const cz_tf_model *m, cz_tf_state *s, int slot, const int *tokens, int n,
                  float *logits, cz_err *err) {
    if (n < 1 || n > s->max_rows)
        return cz_err_set(err, "neural@1: a prefill takes 1..%d tokens, not %d", s->max_rows, n);
    int *slots = cz_malloc((size_t)n * sizeof *slots);
    for (int i = 0; i < n; i++)
        slots[i] = slot;
    int rc = cz_tf_step(m, s, slots, tokens, n, logits, err);
    free(slots);
    return rc;
}
