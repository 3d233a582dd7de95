/* neural@1's forward pass on an NVIDIA GPU: see cuda.h.
 *
 * The same computation as transformer.c, row by row, on the device:
 *
 *   X = tok_emb[token] + pos_emb[position]                       embed()
 *   per layer:  H = LN1(X)                                        layer_norm()
 *               [Q K V] = H Wqkv^T                                cuBLAS sgemm
 *               K, V of every row into its slot's cache           cache_put()
 *               each row attends over its slot's cache 0..pos     attend()
 *               X += A Wo^T                                       sgemm, beta 1
 *               H = LN2(X);  F = GELU(H W1^T + b1)                sgemm, bias_gelu()
 *               X += F W2^T;  X += b2                             sgemm, add_bias()
 *   logits = LNf(X) tok_emb^T, copied to the host                 sgemm
 *
 * Layout. The weights are one device allocation, tensors 256-byte aligned,
 * Wq, Wk, Wv packed into one [3D, D] matrix per layer. A state's caches
 * are per slot, per layer, per head: keys transposed, [head_dim][max_seq],
 * so the threads of attend() that score consecutive positions read
 * consecutive floats; values [max_seq][head_dim], so the threads that sum
 * one output dimension over positions read consecutive floats too.
 *
 * Attention is one block per (row, head): the block scores positions
 * 0..pos (a thread per position, head_dim multiply-adds in order, as the
 * CPU does), takes the maximum, exponentiates, sums and normalises in
 * shared memory, then sums the values with the positions split among
 * groups of head_dim threads. Reductions (maximum, softmax sum, LayerNorm's
 * mean and variance) go through warp shuffles and shared memory.
 *
 * Numerics. float32 throughout, as on the CPU: LayerNorm with the biased
 * variance accumulated in double, softmax with the maximum subtracted,
 * GELU's tanh form as x * sigmoid(2u), no TF32 (cuBLAS's default math mode
 * keeps sgemm in float32) and no fast math; the Makefile builds this file
 * with -fmad=false, so the kernels round each multiply and add as
 * transformer.c's expressions do. What still differs from the CPU: the
 * order of the sums inside cuBLAS and inside the reductions, and CUDA's
 * expf (within 2 ulp) beside glibc's. The logits agree with the CPU's to
 * about 1e-5 of their size, not bit for bit (test_neural_cuda.c checks a
 * bound); a seed may therefore sample another token on the GPU than on
 * the CPU where two tokens' probabilities are within that distance.
 *
 * Batch invariance. As on the CPU, a row's logits must not depend on the
 * rows beside it. cuBLAS chooses its kernel by the problem's shape, so the
 * number of rows in a product would change the kernel (and its order of
 * summation) with the batch size. So every product runs in groups of
 * exactly `chunk` rows, one sgemm call per group, the last group padded
 * with zero rows: every call has the same shape, hence the same kernel.
 * That a kernel computes a row the same way in every lane of its group is
 * measured at upload, as transformer.c measures OpenBLAS: 32, 16, ..., 2
 * rows are tried on every product's shape with a probe row in each lane
 * and random rows around it, and the largest for which the probe's bits
 * never change is kept (1 always qualifies). Everything else is per row.
 * So on one GPU model with one CUDA toolkit a row's logits are the same
 * bits alone, in any batch and in a prefill (cuBLAS promises the same bits
 * run to run on the same architecture and SM count, for one stream). Not
 * promised: the same bits on another GPU model, another toolkit or
 * driver's cuBLAS, or the CPU.
 *
 * Errors from CUDA and cuBLAS come back as cz_err messages; GPU memory is
 * a library's allocation in docs/conventions.md's sense (an error the
 * caller reports, with a hint), host memory goes through cz_malloc. */
extern "C" {
#include "common/mem.h"
#include "common/rand.h"
}
#include "workers/models/neural/cuda.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK_MAX 32    /* the most rows per sgemm the upload's check tries */
#define ROW_THREADS 256 /* threads of the per-row kernels */
#define ATT_THREADS 128 /* threads of attend() for heads up to 128 wide */
#define MAX_HEAD_DIM 1024
#define ALIGN_FLOATS 64 /* tensors in the weights allocation: 256 bytes */

typedef struct dev_layer {
    const float *ln1_w, *ln1_b, *wqkv, *wo, *ln2_w, *ln2_b, *w1, *b1, *w2, *b2;
} dev_layer;

struct cz_cuda_model {
    cz_tf_config cfg;
    int device;
    float *mem; /* every tensor, one allocation */
    const float *tok_emb, *pos_emb, *lnf_w, *lnf_b;
    dev_layer *layers;
    int chunk;
};

/* Scratch matrices have max_rows rounded up to CHUNK_MAX rows. */
struct cz_cuda_state {
    const cz_cuda_model *g;
    int max_batch, max_rows;
    cudaStream_t stream;
    cublasHandle_t blas;
    bool has_stream, has_blas;
    float *k, *v;       /* per slot, per layer, per head: see the file's header */
    float *x, *h, *att; /* [rows, D] */
    float *qkv;         /* [rows, 3D] */
    float *ff;          /* [rows, F] */
    float *logits;      /* [rows, V] */
    int *rows;          /* tokens, slots, positions of a forward: 3 * max_rows */
    int *host_rows;     /* the same, staged on the host */
};

/* ================================================================ errors */

static int cuda_fail(cz_err *err, const char *what, cudaError_t e) {
    return cz_err_set(err, "neural@1: %s on the GPU failed: %s (%s)", what, cudaGetErrorName(e),
                      cudaGetErrorString(e));
}

static int blas_fail(cz_err *err, const char *what, cublasStatus_t st) {
    return cz_err_set(err, "neural@1: %s on the GPU failed: cuBLAS says %s", what,
                      cublasGetStatusString(st));
}

/* cudaMalloc with an error that says how much, for what, and what to do. */
static int dev_alloc(void **p, size_t bytes, const char *what, cz_err *err) {
    cudaError_t e = cudaMalloc(p, bytes);
    if (e == cudaSuccess)
        return 0;
    *p = NULL;
    cudaGetLastError(); // an allocation failure is not sticky: clear it
    return cz_err_set(err,
                      "neural@1: cannot allocate %.1f MB of GPU memory for %s: %s; use fewer "
                      "slots (CADENZA_MAX_BATCH) or CADENZA_NEURAL_DEVICE=cpu",
                      bytes / 1e6, what, cudaGetErrorString(e));
}

int cz_cuda_devices(cz_err *err) {
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e == cudaErrorNoDevice)
        return 0;
    if (e != cudaSuccess) {
        int runtime = 0;
        cudaRuntimeGetVersion(&runtime);
        cz_err_set(err,
                   "neural@1: the CUDA runtime cannot start: %s (%s); check that an NVIDIA "
                   "driver for CUDA %d.%d or later is installed",
                   cudaGetErrorName(e), cudaGetErrorString(e), runtime / 1000, runtime % 1000 / 10);
        return -1;
    }
    return n;
}

/* ================================================================ kernels */

/* Block-wide sum and maximum: a warp's lanes by shuffles, then the warps'
 * results through @p red (one slot per warp). blockDim.x is a multiple of
 * 32. Every thread gets the result. */
__device__ static float block_sum(float v, float *red) {
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads(); // red may still be read from the previous reduction
    if (threadIdx.x % 32 == 0)
        red[threadIdx.x / 32] = v;
    __syncthreads();
    v = red[0];
    for (int w = 1; w < (int)blockDim.x / 32; w++)
        v += red[w];
    return v;
}

__device__ static float block_max(float v, float *red) {
    for (int o = 16; o > 0; o >>= 1)
        v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    __syncthreads();
    if (threadIdx.x % 32 == 0)
        red[threadIdx.x / 32] = v;
    __syncthreads();
    v = red[0];
    for (int w = 1; w < (int)blockDim.x / 32; w++)
        v = fmaxf(v, red[w]);
    return v;
}

__device__ static double block_sum_d(double v, double *red) {
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    __syncthreads();
    if (threadIdx.x % 32 == 0)
        red[threadIdx.x / 32] = v;
    __syncthreads();
    v = red[0];
    for (int w = 1; w < (int)blockDim.x / 32; w++)
        v += red[w];
    return v;
}

/* x[r] = tok_emb[tokens[r]] + pos_emb[pos[r]]; a block per row. */
__global__ static void embed(float *x, const float *tok_emb, const float *pos_emb,
                             const int *tokens, const int *pos, int d) {
    const int r = blockIdx.x;
    const float *te = tok_emb + (size_t)tokens[r] * d, *pe = pos_emb + (size_t)pos[r] * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        x[(size_t)r * d + i] = te[i] + pe[i];
}

/* LayerNorm of each row, PyTorch's biased variance, sums in double as in
 * transformer.c's layer_norm(); a block per row. */
__global__ static void layer_norm(const float *x, float *out, const float *w, const float *b, int d,
                                  float eps) {
    __shared__ double red[32];
    const float *xr = x + (size_t)blockIdx.x * d;
    float *o = out + (size_t)blockIdx.x * d;
    double s = 0;
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        s += xr[i];
    const double mean = block_sum_d(s, red) / d;
    double v = 0;
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        v += (xr[i] - mean) * (xr[i] - mean);
    const double var = block_sum_d(v, red) / d;
    const float mu = (float)mean, rstd = (float)(1.0 / sqrt(var + eps));
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        o[i] = (xr[i] - mu) * rstd * w[i] + b[i];
}

/* The first word of a (slot, layer, head)'s cache: see the file's header. */
__device__ static size_t cache_at(int slot, int layers, int l, int heads, int h, int hd, int s) {
    return (((size_t)slot * layers + l) * heads + h) * (size_t)hd * s;
}

/* Each row's K and V (from its [Q K V] row) into its slot's cache at its
 * position; a block per row. */
__global__ static void cache_put(const float *qkv, float *kc, float *vc, const int *slots,
                                 const int *pos, int layers, int l, int heads, int hd, int s) {
    const int r = blockIdx.x, d = heads * hd, p = pos[r];
    const float *row = qkv + (size_t)r * 3 * d;
    for (int c = threadIdx.x; c < d; c += blockDim.x) {
        const int h = c / hd, i = c % hd;
        const size_t at = cache_at(slots[r], layers, l, heads, h, hd, s);
        kc[at + (size_t)i * s + p] = row[d + c];
        vc[at + (size_t)p * hd + i] = row[2 * d + c];
    }
}

/* Attention of row blockIdx.x, head blockIdx.y, over its slot's positions
 * 0..pos. Shared memory: scores [s], the query [hd], a reduction area
 * [blockDim.x]. The values' sum splits positions among blockDim.x / hd
 * groups of hd threads (one output dimension each), summed in group order. */
__global__ static void attend(const float *qkv, const float *kc, const float *vc, float *att,
                              const int *slots, const int *pos, int layers, int l, int heads,
                              int hd, int s, float scale) {
    extern __shared__ float sm[];
    float *sc = sm, *q = sm + s, *red = q + hd;
    const int r = blockIdx.x, h = blockIdx.y, d = heads * hd, n = pos[r] + 1;
    const size_t at = cache_at(slots[r], layers, l, heads, h, hd, s);
    const float *K = kc + at, *V = vc + at;
    for (int i = threadIdx.x; i < hd; i += blockDim.x)
        q[i] = qkv[(size_t)r * 3 * d + h * hd + i];
    __syncthreads();
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        float acc = 0;
        for (int i = 0; i < hd; i++)
            acc += q[i] * K[(size_t)i * s + j];
        sc[j] = acc * scale;
        mx = fmaxf(mx, sc[j]);
    }
    mx = block_max(mx, red);
    float sum = 0;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        sc[j] = expf(sc[j] - mx);
        sum += sc[j];
    }
    sum = block_sum(sum, red);
    for (int j = threadIdx.x; j < n; j += blockDim.x)
        sc[j] /= sum;
    __syncthreads();
    const int groups = (int)blockDim.x / hd, i = threadIdx.x % hd, grp = threadIdx.x / hd;
    float acc = 0;
    if (grp < groups)
        for (int j = grp; j < n; j += groups)
            acc += sc[j] * V[(size_t)j * hd + i];
    red[threadIdx.x] = acc;
    __syncthreads();
    if (grp == 0) {
        float o = 0;
        for (int k = 0; k < groups; k++)
            o += red[k * hd + i];
        att[(size_t)r * d + h * hd + i] = o;
    }
}

/* GELU, tanh form, as x * sigmoid(2u): transformer.c's gelu_tanh(). */
__device__ static float gelu_tanh(float x) {
    const float k = 0.7978845608028654f; // sqrt(2 / pi)
    float u = k * (x + 0.044715f * x * x * x);
    return x / (1.0f + expf(-2.0f * u));
}

/* ff[r] = GELU(ff[r] + b); a block per row. */
__global__ static void bias_gelu(float *ff, const float *b, int f) {
    float *row = ff + (size_t)blockIdx.x * f;
    for (int i = threadIdx.x; i < f; i += blockDim.x)
        row[i] = gelu_tanh(row[i] + b[i]);
}

/* x[r] += b; a block per row. */
__global__ static void add_bias(float *x, const float *b, int d) {
    float *row = x + (size_t)blockIdx.x * d;
    for (int i = threadIdx.x; i < d; i += blockDim.x)
        row[i] += b[i];
}

/* ================================================================ products */

static size_t round_up(size_t n, size_t to) {
    return (n + to - 1) / to * to;
}

/* C[n, out] (+)= A[n, in] W^T, W stored [out, in] as nn.Linear keeps it,
 * one sgemm per group of @p chunk rows whatever n is (see the file's
 * header): A and C have n rounded up to @p chunk rows. Row-major C is
 * column-major C^T = W A^T, hence W transposed and A not. */
static cublasStatus_t product(cublasHandle_t blas, const float *a, const float *w, float *c, int n,
                              int out, int in, float beta, int chunk) {
    const float one = 1.0f;
    for (int r = 0; r < n; r += chunk) {
        cublasStatus_t st = cublasSgemm(blas, CUBLAS_OP_T, CUBLAS_OP_N, out, chunk, in, &one, w, in,
                                        a + (size_t)r * in, in, &beta, c + (size_t)r * out, out);
        if (st != CUBLAS_STATUS_SUCCESS)
            return st;
    }
    return CUBLAS_STATUS_SUCCESS;
}

/* ================================================================ model */

/* Places the weights in one allocation: with base NULL it only counts
 * (u->used is then the size), else it copies each tensor to its place. */
typedef struct upload {
    float *base;
    size_t used;
    cudaError_t rc;
} upload;

static void upload_align(upload *u) {
    u->used = round_up(u->used, ALIGN_FLOATS);
}

static const float *upload_put(upload *u, const float *src, size_t n) {
    float *at = u->base ? u->base + u->used : NULL;
    if (at && u->rc == cudaSuccess)
        u->rc = cudaMemcpy(at, src, n * sizeof(float), cudaMemcpyHostToDevice);
    u->used += n;
    return at;
}

static const float *upload_tensor(upload *u, const float *src, size_t n) {
    upload_align(u);
    return upload_put(u, src, n);
}

static void upload_all(cz_cuda_model *g, const cz_neural_weights *w, upload *u) {
    const cz_tf_config *c = &g->cfg;
    const size_t D = (size_t)c->d_model, F = (size_t)c->d_ff;
    g->tok_emb = upload_tensor(u, w->tok_emb, (size_t)c->vocab * D);
    g->pos_emb = upload_tensor(u, w->pos_emb, (size_t)c->max_seq * D);
    g->lnf_w = upload_tensor(u, w->lnf_w, D);
    g->lnf_b = upload_tensor(u, w->lnf_b, D);
    for (int l = 0; l < c->n_layers; l++) {
        const cz_tf_layer_weights *lw = &w->layers[l];
        dev_layer *dl = &g->layers[l];
        dl->ln1_w = upload_tensor(u, lw->ln1_w, D);
        dl->ln1_b = upload_tensor(u, lw->ln1_b, D);
        dl->wqkv = upload_tensor(u, lw->wq, D * D); // Wk and Wv right after
        upload_put(u, lw->wk, D * D);
        upload_put(u, lw->wv, D * D);
        dl->wo = upload_tensor(u, lw->wo, D * D);
        dl->ln2_w = upload_tensor(u, lw->ln2_w, D);
        dl->ln2_b = upload_tensor(u, lw->ln2_b, D);
        dl->w1 = upload_tensor(u, lw->w1, F * D);
        dl->b1 = upload_tensor(u, lw->b1, F);
        dl->w2 = upload_tensor(u, lw->w2, D * F);
        dl->b2 = upload_tensor(u, lw->b2, D);
    }
}

/* Fills @p n floats with values in [-1, 1) from the stream at *@p rng. */
static void fill(float *x, size_t n, uint64_t *rng) {
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(2 * cz_rand_unit(cz_splitmix64_next(rng)) - 1);
}

/* Scratch for the check of row groups: host and device matrices of
 * CHUNK_MAX rows as wide as the widest product. */
typedef struct probe {
    cublasHandle_t blas;
    float *a, *c, *ref; /* host */
    float *da, *dc;     /* device */
} probe;

/* Whether an sgemm of @p chunk rows by W [out, in] gives a row the same
 * bits in every lane whatever the other rows hold: 1 yes, 0 no, -1 error. */
static int lanes_agree(probe *p, const float *w, int out, int in, int chunk, cz_err *err) {
    uint64_t rng = 0x6e657572616cull; // fixed: the check is the same every time
    float *row = p->ref + out;
    fill(row, (size_t)in, &rng);
    for (int lane = 0; lane < chunk; lane++) {
        fill(p->a, (size_t)chunk * in, &rng);
        memcpy(p->a + (size_t)lane * in, row, (size_t)in * sizeof(float));
        cudaError_t e =
            cudaMemcpy(p->da, p->a, (size_t)chunk * in * sizeof(float), cudaMemcpyHostToDevice);
        if (e != cudaSuccess)
            return cuda_fail(err, "the batching check", e);
        cublasStatus_t st = product(p->blas, p->da, w, p->dc, chunk, out, in, 0.0f, chunk);
        if (st != CUBLAS_STATUS_SUCCESS)
            return blas_fail(err, "the batching check", st);
        e = cudaMemcpy(p->c, p->dc + (size_t)lane * out, (size_t)out * sizeof(float),
                       cudaMemcpyDeviceToHost);
        if (e != cudaSuccess)
            return cuda_fail(err, "the batching check", e);
        if (lane == 0)
            memcpy(p->ref, p->c, (size_t)out * sizeof(float));
        else if (memcmp(p->ref, p->c, (size_t)out * sizeof(float)))
            return 0;
    }
    return 1;
}

/* The largest number of rows per sgemm (of 32, 16, 8, 4, 2) for which
 * cuBLAS computes a row of each of the model's products the same way in
 * every lane, else 1; or -1 with @p err. */
static int pick_chunk(const cz_cuda_model *g, cz_err *err) {
    const cz_tf_config *c = &g->cfg;
    const dev_layer *lw = &g->layers[0];
    const int D = c->d_model, F = c->d_ff;
    const struct {
        const float *w;
        int out, in;
    } shapes[] = {
        {lw->wqkv, 3 * D, D},      {lw->wo, D, D}, {lw->w1, F, D}, {lw->w2, D, F},
        {g->tok_emb, c->vocab, D},
    };
    int wide = D > F ? D : F;
    wide = wide > 3 * D ? wide : 3 * D;
    wide = wide > c->vocab ? wide : c->vocab;
    probe p;
    memset(&p, 0, sizeof p);
    int chunk = -1;
    cublasStatus_t st = cublasCreate(&p.blas);
    if (st != CUBLAS_STATUS_SUCCESS)
        return blas_fail(err, "starting cuBLAS", st);
    p.a = (float *)cz_malloc((size_t)CHUNK_MAX * wide * sizeof(float));
    p.c = (float *)cz_malloc((size_t)wide * sizeof(float));
    p.ref = (float *)cz_malloc((size_t)2 * wide * sizeof(float));
    if (!dev_alloc((void **)&p.da, (size_t)CHUNK_MAX * wide * sizeof(float), "the batching check",
                   err) &&
        !dev_alloc((void **)&p.dc, (size_t)CHUNK_MAX * wide * sizeof(float), "the batching check",
                   err)) {
        for (chunk = CHUNK_MAX; chunk > 1; chunk /= 2) {
            int ok = 1;
            for (size_t i = 0; ok == 1 && i < sizeof shapes / sizeof *shapes; i++)
                ok = lanes_agree(&p, shapes[i].w, shapes[i].out, shapes[i].in, chunk, err);
            if (ok < 0)
                chunk = -1;
            if (ok != 0)
                break;
        }
    }
    cudaFree(p.da);
    cudaFree(p.dc);
    free(p.a);
    free(p.c);
    free(p.ref);
    cublasDestroy(p.blas);
    return chunk;
}

/* Bytes of attend()'s shared memory, and its threads, for a head of @p hd. */
static int attend_threads(int hd) {
    return hd <= ATT_THREADS ? ATT_THREADS : (int)round_up((size_t)hd, 32);
}

static size_t attend_shared(const cz_tf_config *c) {
    const int hd = c->d_model / c->n_heads;
    return ((size_t)c->max_seq + hd + attend_threads(hd)) * sizeof(float);
}

cz_cuda_model *cz_cuda_model_new(const cz_neural_weights *w, cz_err *err) {
    const cz_tf_config *c = &w->cfg;
    const int hd = c->d_model / c->n_heads;
    if (hd > MAX_HEAD_DIM) {
        cz_err_set(err, "neural@1: heads of %d dimensions are wider than the GPU code's %d", hd,
                   MAX_HEAD_DIM);
        return NULL;
    }
    int n = cz_cuda_devices(err);
    if (n < 0)
        return NULL;
    if (n == 0) {
        cz_err_set(err, "neural@1: no NVIDIA GPU is visible to this process (check the driver "
                        "with nvidia-smi, and CUDA_VISIBLE_DEVICES)");
        return NULL;
    }
    cz_cuda_model *g = (cz_cuda_model *)cz_calloc(1, sizeof *g);
    g->cfg = *c;
    g->layers = (dev_layer *)cz_calloc((size_t)c->n_layers, sizeof *g->layers);
    cudaError_t e = cudaGetDevice(&g->device);
    if (e != cudaSuccess) {
        cuda_fail(err, "choosing the device", e);
        cz_cuda_model_free(g);
        return NULL;
    }
    cudaDeviceProp prop;
    e = cudaGetDeviceProperties(&prop, g->device);
    if (e == cudaSuccess && attend_shared(c) > prop.sharedMemPerBlock) {
        cz_err_set(err,
                   "neural@1: sequences of %d positions need %zu bytes of shared memory per "
                   "block for attention, the GPU has %zu",
                   c->max_seq, attend_shared(c), prop.sharedMemPerBlock);
        cz_cuda_model_free(g);
        return NULL;
    }
    upload u = {NULL, 0, cudaSuccess};
    upload_all(g, w, &u); // counts
    if (dev_alloc((void **)&u.base, u.used * sizeof(float), "the weights", err)) {
        cz_cuda_model_free(g);
        return NULL;
    }
    g->mem = u.base;
    u.used = 0;
    upload_all(g, w, &u);
    if (u.rc != cudaSuccess) {
        cuda_fail(err, "uploading the weights", u.rc);
        cz_cuda_model_free(g);
        return NULL;
    }
    if ((g->chunk = pick_chunk(g, err)) < 0) {
        cz_cuda_model_free(g);
        return NULL;
    }
    return g;
}

void cz_cuda_model_free(cz_cuda_model *g) {
    if (!g)
        return;
    cudaSetDevice(g->device);
    cudaFree(g->mem);
    free(g->layers);
    free(g);
}

int cz_cuda_model_chunk(const cz_cuda_model *g) {
    return g->chunk;
}

/* ================================================================ state */

cz_cuda_state *cz_cuda_state_new(const cz_cuda_model *g, int max_batch, int max_rows, cz_err *err) {
    const cz_tf_config *c = &g->cfg;
    const size_t D = (size_t)c->d_model, L = (size_t)c->n_layers, S = (size_t)c->max_seq;
    const size_t R = round_up((size_t)max_rows, CHUNK_MAX), B = (size_t)max_batch;
    cz_cuda_state *s = (cz_cuda_state *)cz_calloc(1, sizeof *s);
    s->g = g;
    s->max_batch = max_batch;
    s->max_rows = max_rows;
    s->host_rows = (int *)cz_malloc(3 * R * sizeof(int));
    cudaError_t e = cudaSetDevice(g->device);
    if (e == cudaSuccess &&
        (e = cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking)) == cudaSuccess)
        s->has_stream = true;
    if (e != cudaSuccess) {
        cuda_fail(err, "creating a stream", e);
        cz_cuda_state_free(s);
        return NULL;
    }
    cublasStatus_t st = cublasCreate(&s->blas);
    if (st == CUBLAS_STATUS_SUCCESS) {
        s->has_blas = true;
        // Plain float32: no TF32 (the default already, said outright).
        st = cublasSetMathMode(s->blas, CUBLAS_DEFAULT_MATH);
    }
    if (st == CUBLAS_STATUS_SUCCESS)
        st = cublasSetStream(s->blas, s->stream);
    if (st != CUBLAS_STATUS_SUCCESS) {
        blas_fail(err, "starting cuBLAS", st);
        cz_cuda_state_free(s);
        return NULL;
    }
    const size_t cache = B * L * S * D * sizeof(float);
    if (dev_alloc((void **)&s->k, cache, "the key caches", err) ||
        dev_alloc((void **)&s->v, cache, "the value caches", err) ||
        dev_alloc((void **)&s->x, R * D * sizeof(float), "scratch", err) ||
        dev_alloc((void **)&s->h, R * D * sizeof(float), "scratch", err) ||
        dev_alloc((void **)&s->att, R * D * sizeof(float), "scratch", err) ||
        dev_alloc((void **)&s->qkv, R * 3 * D * sizeof(float), "scratch", err) ||
        dev_alloc((void **)&s->ff, R * (size_t)c->d_ff * sizeof(float), "scratch", err) ||
        dev_alloc((void **)&s->logits, R * (size_t)c->vocab * sizeof(float), "scratch", err) ||
        dev_alloc((void **)&s->rows, 3 * R * sizeof(int), "scratch", err)) {
        cz_cuda_state_free(s);
        return NULL;
    }
    // Zeroed once, so that nothing ever reads uninitialised memory.
    if ((e = cudaMemset(s->k, 0, cache)) != cudaSuccess ||
        (e = cudaMemset(s->v, 0, cache)) != cudaSuccess) {
        cuda_fail(err, "clearing the caches", e);
        cz_cuda_state_free(s);
        return NULL;
    }
    return s;
}

void cz_cuda_state_free(cz_cuda_state *s) {
    if (!s)
        return;
    cudaSetDevice(s->g->device);
    if (s->has_stream)
        cudaStreamSynchronize(s->stream);
    cudaFree(s->k);
    cudaFree(s->v);
    cudaFree(s->x);
    cudaFree(s->h);
    cudaFree(s->att);
    cudaFree(s->qkv);
    cudaFree(s->ff);
    cudaFree(s->logits);
    cudaFree(s->rows);
    if (s->has_blas)
        cublasDestroy(s->blas);
    if (s->has_stream)
        cudaStreamDestroy(s->stream);
    free(s->host_rows);
    free(s);
}

/* ================================================================ forward */

int cz_cuda_forward(cz_cuda_state *s, const int *tokens, const int *slots, const int *pos, int n,
                    float *logits, cz_err *err) {
    const cz_cuda_model *g = s->g;
    const cz_tf_config *c = &g->cfg;
    const int D = c->d_model, F = c->d_ff, V = c->vocab, L = c->n_layers, H = c->n_heads;
    const int hd = D / H, S = c->max_seq, chunk = g->chunk;
    const float scale = 1.0f / sqrtf((float)hd);
    cudaStream_t st = s->stream;
    cublasHandle_t blas = s->blas;
    cublasStatus_t bs = CUBLAS_STATUS_SUCCESS;
    cudaError_t e = cudaSetDevice(g->device);
    if (e != cudaSuccess)
        return cuda_fail(err, "choosing the device", e);
    if (n < 1 || n > s->max_rows)
        return cz_err_set(err, "neural@1: a GPU forward takes 1..%d rows, not %d", s->max_rows, n);

    memcpy(s->host_rows, tokens, (size_t)n * sizeof(int));
    memcpy(s->host_rows + n, slots, (size_t)n * sizeof(int));
    memcpy(s->host_rows + 2 * n, pos, (size_t)n * sizeof(int));
    // From pageable memory: the call returns once host_rows is copied out.
    e = cudaMemcpyAsync(s->rows, s->host_rows, (size_t)3 * n * sizeof(int), cudaMemcpyHostToDevice,
                        st);
    if (e != cudaSuccess)
        return cuda_fail(err, "copying a step's rows", e);
    const int *d_tok = s->rows, *d_slot = s->rows + n, *d_pos = s->rows + 2 * n;

    // The rows that pad the last group are zero, and stay finite.
    const size_t pad = round_up((size_t)n, (size_t)chunk) - (size_t)n;
    if (pad) {
        cudaMemsetAsync(s->x + (size_t)n * D, 0, pad * D * sizeof(float), st);
        cudaMemsetAsync(s->h + (size_t)n * D, 0, pad * D * sizeof(float), st);
        cudaMemsetAsync(s->att + (size_t)n * D, 0, pad * D * sizeof(float), st);
    }

    const int att_threads = attend_threads(hd);
    const size_t att_shared = attend_shared(c);
    embed<<<n, ROW_THREADS, 0, st>>>(s->x, g->tok_emb, g->pos_emb, d_tok, d_pos, D);
    for (int l = 0; l < L; l++) {
        const dev_layer *lw = &g->layers[l];
        layer_norm<<<n, ROW_THREADS, 0, st>>>(s->x, s->h, lw->ln1_w, lw->ln1_b, D, c->ln_eps);
        bs = product(blas, s->h, lw->wqkv, s->qkv, n, 3 * D, D, 0.0f, chunk);
        if (bs != CUBLAS_STATUS_SUCCESS)
            break;
        cache_put<<<n, ROW_THREADS, 0, st>>>(s->qkv, s->k, s->v, d_slot, d_pos, L, l, H, hd, S);
        attend<<<dim3(n, H), att_threads, att_shared, st>>>(s->qkv, s->k, s->v, s->att, d_slot,
                                                            d_pos, L, l, H, hd, S, scale);
        bs = product(blas, s->att, lw->wo, s->x, n, D, D, 1.0f, chunk);
        if (bs != CUBLAS_STATUS_SUCCESS)
            break;
        layer_norm<<<n, ROW_THREADS, 0, st>>>(s->x, s->h, lw->ln2_w, lw->ln2_b, D, c->ln_eps);
        bs = product(blas, s->h, lw->w1, s->ff, n, F, D, 0.0f, chunk);
        if (bs != CUBLAS_STATUS_SUCCESS)
            break;
        bias_gelu<<<n, ROW_THREADS, 0, st>>>(s->ff, lw->b1, F);
        bs = product(blas, s->ff, lw->w2, s->x, n, D, F, 1.0f, chunk);
        if (bs != CUBLAS_STATUS_SUCCESS)
            break;
        add_bias<<<n, ROW_THREADS, 0, st>>>(s->x, lw->b2, D);
    }
    if (bs == CUBLAS_STATUS_SUCCESS && logits) {
        layer_norm<<<n, ROW_THREADS, 0, st>>>(s->x, s->h, g->lnf_w, g->lnf_b, D, c->ln_eps);
        bs = product(blas, s->h, g->tok_emb, s->logits, n, V, D, 0.0f, chunk);
        if (bs == CUBLAS_STATUS_SUCCESS)
            e = cudaMemcpyAsync(logits, s->logits, (size_t)n * V * sizeof(float),
                                cudaMemcpyDeviceToHost, st);
    }
    // Wait even after an error, so that nothing still runs on the rows.
    cudaError_t sync = cudaStreamSynchronize(st);
    if (bs != CUBLAS_STATUS_SUCCESS)
        return blas_fail(err, "a matrix product", bs);
    if (e == cudaSuccess)
        e = sync;
    if (e == cudaSuccess)
        e = cudaGetLastError(); // a kernel launch that failed
    if (e != cudaSuccess)
        return cuda_fail(err, "the forward pass", e);
    return 0;
}
