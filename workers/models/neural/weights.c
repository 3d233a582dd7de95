/* Opening neural@1's weights: see weights.h.
 *
 * A CZTF file is "CZTF", a u32 format version, a u32 header length H, H
 * bytes of JSON, zero padding to a multiple of 64 bytes, then the float32
 * tensors, each at a 64-byte aligned offset from the start of the data.
 * The checks run from the cheapest evidence of a wrong file to the most
 * specific: the sidecar's whole-file sha256 first (what a truncated copy
 * or a Git LFS pointer fails), then magic and version, then the header
 * against this engine's contract (config bounds, the exact vocabulary,
 * every tensor present once with its shape and inside the data), then the
 * header's own data_sha256. Only a file that passes them all is used; the
 * tensors are pointers into a read-only private mapping, which is 64-byte
 * aligned because the mapping starts on a page. */
#include "workers/models/neural/weights.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/mem.h"
#include "workers/models/neural/tokens.h"

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "CZTF tensors are little-endian float32, read in place: a big-endian host needs a byte swap"
#endif

#define HEADER_MAX (16 << 20) /* a JSON header is a few kilobytes */
#define ALIGN 64

/* The header's config bounds: generous, but they keep sizes computed from a
 * header far from overflow before anything is allocated. */
#define DIM_MAX 16384
#define LAYERS_MAX 128

/* What a tensor's shape is, in the config's terms. */
typedef enum shape { S_D, S_F, S_DD, S_FD, S_DF, S_VD, S_SD } shape;

static const struct {
    const char *name;
    size_t field; /* offset in cz_tf_layer_weights */
    shape shape;
} layer_tensors[] = {
    {"ln1_w", offsetof(cz_tf_layer_weights, ln1_w), S_D},
    {"ln1_b", offsetof(cz_tf_layer_weights, ln1_b), S_D},
    {"wq", offsetof(cz_tf_layer_weights, wq), S_DD},
    {"wk", offsetof(cz_tf_layer_weights, wk), S_DD},
    {"wv", offsetof(cz_tf_layer_weights, wv), S_DD},
    {"wo", offsetof(cz_tf_layer_weights, wo), S_DD},
    {"ln2_w", offsetof(cz_tf_layer_weights, ln2_w), S_D},
    {"ln2_b", offsetof(cz_tf_layer_weights, ln2_b), S_D},
    {"w1", offsetof(cz_tf_layer_weights, w1), S_FD},
    {"b1", offsetof(cz_tf_layer_weights, b1), S_F},
    {"w2", offsetof(cz_tf_layer_weights, w2), S_DF},
    {"b2", offsetof(cz_tf_layer_weights, b2), S_D},
};
#define N_LAYER_TENSORS (sizeof layer_tensors / sizeof *layer_tensors)

static int dims_of(const cz_tf_config *c, shape s, long dims[2]) {
    const long D = c->d_model, F = c->d_ff;
    switch (s) {
    case S_D:
        dims[0] = D;
        return 1;
    case S_F:
        dims[0] = F;
        return 1;
    case S_DD:
        dims[0] = D, dims[1] = D;
        return 2;
    case S_FD:
        dims[0] = F, dims[1] = D;
        return 2;
    case S_DF:
        dims[0] = D, dims[1] = F;
        return 2;
    case S_VD:
        dims[0] = c->vocab, dims[1] = D;
        return 2;
    case S_SD:
        dims[0] = c->max_seq, dims[1] = D;
        return 2;
    }
    return 0;
}

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int get_int(const cJSON *o, const char *key, int lo, int hi, int *out) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    // The range first: casting an out-of-range double to int is undefined.
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi) ||
        v->valuedouble != floor(v->valuedouble))
        return -1;
    *out = (int)v->valuedouble;
    return 0;
}

static int read_config(const cJSON *h, cz_tf_config *c, const char *path, cz_err *err) {
    const cJSON *o = cJSON_GetObjectItemCaseSensitive(h, "config");
    if (!cJSON_IsObject(o))
        return cz_err_set(err, "neural@1: weights file %s: the header has no config", path);
    static const char *const names[] = {"vocab",   "d_model", "n_layers",
                                        "n_heads", "d_ff",    "max_seq"};
    int *fields[] = {&c->vocab, &c->d_model, &c->n_layers, &c->n_heads, &c->d_ff, &c->max_seq};
    const int hi[] = {DIM_MAX, DIM_MAX, LAYERS_MAX, DIM_MAX, DIM_MAX, DIM_MAX};
    for (int i = 0; i < 6; i++)
        if (get_int(o, names[i], 1, hi[i], fields[i]) < 0)
            return cz_err_set(err,
                              "neural@1: weights file %s: config.%s is missing or not an "
                              "integer in 1..%d",
                              path, names[i], hi[i]);
    const cJSON *eps = cJSON_GetObjectItemCaseSensitive(o, "ln_eps");
    if (!cJSON_IsNumber(eps) || !(eps->valuedouble > 0 && eps->valuedouble < 1))
        return cz_err_set(
            err, "neural@1: weights file %s: config.ln_eps is missing or not in (0, 1)", path);
    c->ln_eps = (float)eps->valuedouble;
    if (c->vocab != CZ_TOK_VOCAB)
        return cz_err_set(err,
                          "neural@1: weights file %s: config.vocab is %d, this engine's "
                          "vocabulary has %d tokens",
                          path, c->vocab, CZ_TOK_VOCAB);
    if (c->d_model % c->n_heads)
        return cz_err_set(err,
                          "neural@1: weights file %s: d_model %d is not a multiple of n_heads %d",
                          path, c->d_model, c->n_heads);
    return 0;
}

static int check_vocab(const cJSON *h, const char *path, cz_err *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, "vocab");
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != CZ_TOK_VOCAB)
        return cz_err_set(err,
                          "neural@1: weights file %s: the header's vocab is not a list of %d names",
                          path, CZ_TOK_VOCAB);
    int i = 0;
    for (const cJSON *t = v->child; t; t = t->next, i++)
        if (!cJSON_IsString(t) || strcmp(t->valuestring, cz_neural_token_name(i)))
            return cz_err_set(err,
                              "neural@1: weights file %s: token %d of its vocab is %s, this "
                              "engine's is %s (trained on another vocabulary)",
                              path, i, cJSON_IsString(t) ? t->valuestring : "not a string",
                              cz_neural_token_name(i));
    return 0;
}

/* The slot a tensor name fills, and its shape; NULL for an unknown name. */
static const float **slot_of(cz_neural_weights *w, const char *name, shape *s) {
    static const struct {
        const char *name;
        size_t field;
        shape shape;
    } top[] = {
        {"tok_emb", offsetof(cz_neural_weights, tok_emb), S_VD},
        {"pos_emb", offsetof(cz_neural_weights, pos_emb), S_SD},
        {"lnf_w", offsetof(cz_neural_weights, lnf_w), S_D},
        {"lnf_b", offsetof(cz_neural_weights, lnf_b), S_D},
    };
    for (size_t i = 0; i < sizeof top / sizeof *top; i++)
        if (!strcmp(name, top[i].name)) {
            *s = top[i].shape;
            return (const float **)((char *)w + top[i].field);
        }
    int layer, used = 0;
    char rest[16];
    if (sscanf(name, "l%d.%15[a-z0-9_]%n", &layer, rest, &used) != 2 || name[used] || layer < 0 ||
        layer >= w->cfg.n_layers || (name[1] == '0' && name[2] != '.'))
        return NULL;
    for (size_t i = 0; i < N_LAYER_TENSORS; i++)
        if (!strcmp(rest, layer_tensors[i].name)) {
            *s = layer_tensors[i].shape;
            return (const float **)((char *)&w->layers[layer] + layer_tensors[i].field);
        }
    return NULL;
}

static int read_tensors(const cJSON *h, cz_neural_weights *w, const unsigned char *data,
                        size_t data_bytes, cz_err *err) {
    const char *path = w->path;
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(h, "tensors");
    if (!cJSON_IsArray(list))
        return cz_err_set(err, "neural@1: weights file %s: the header has no tensors list", path);
    const cJSON *t;
    cJSON_ArrayForEach(t, list) {
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
        const cJSON *dims = cJSON_GetObjectItemCaseSensitive(t, "shape");
        const cJSON *off = cJSON_GetObjectItemCaseSensitive(t, "offset");
        if (!cJSON_IsString(name))
            return cz_err_set(err, "neural@1: weights file %s: a tensor has no name", path);
        const char *n = name->valuestring;
        shape s;
        const float **slot = slot_of(w, n, &s);
        if (!slot)
            return cz_err_set(err, "neural@1: weights file %s: unexpected tensor %s", path, n);
        if (*slot)
            return cz_err_set(err, "neural@1: weights file %s: tensor %s appears twice", path, n);
        long want[2];
        int rank = dims_of(&w->cfg, s, want);
        bool same = cJSON_IsArray(dims) && cJSON_GetArraySize(dims) == rank;
        for (int i = 0; same && i < rank; i++) {
            const cJSON *d = cJSON_GetArrayItem(dims, i);
            same = cJSON_IsNumber(d) && d->valuedouble == (double)want[i];
        }
        if (!same) {
            char *got = dims ? cJSON_PrintUnformatted(dims) : NULL;
            if (rank == 1)
                cz_err_set(err, "neural@1: weights file %s: tensor %s has shape %s, expected [%ld]",
                           path, n, got ? got : "(none)", want[0]);
            else
                cz_err_set(err,
                           "neural@1: weights file %s: tensor %s has shape %s, expected [%ld, %ld]",
                           path, n, got ? got : "(none)", want[0], want[1]);
            free(got);
            return -1;
        }
        size_t bytes = (size_t)want[0] * (rank == 2 ? (size_t)want[1] : 1) * sizeof(float);
        double o = cJSON_IsNumber(off) ? off->valuedouble : -1;
        if (!(o >= 0 && o <= (double)data_bytes) || o != floor(o) || (size_t)o % ALIGN ||
            bytes > data_bytes - (size_t)o)
            return cz_err_set(err,
                              "neural@1: weights file %s: tensor %s's offset is not a multiple of "
                              "%d inside the %zu bytes of data",
                              path, n, ALIGN, data_bytes);
        *slot = (const float *)(data + (size_t)o);
    }
    // Every tensor the config implies must be there.
    const char *missing = !w->tok_emb   ? "tok_emb"
                          : !w->pos_emb ? "pos_emb"
                          : !w->lnf_w   ? "lnf_w"
                          : !w->lnf_b   ? "lnf_b"
                                        : NULL;
    if (missing)
        return cz_err_set(err, "neural@1: weights file %s: tensor %s is missing", path, missing);
    for (int l = 0; l < w->cfg.n_layers; l++)
        for (size_t i = 0; i < N_LAYER_TENSORS; i++)
            if (!*(const float **)((char *)&w->layers[l] + layer_tensors[i].field))
                return cz_err_set(err, "neural@1: weights file %s: tensor l%d.%s is missing", path,
                                  l, layer_tensors[i].name);
    return 0;
}

static int read_header(cz_neural_weights *w, const unsigned char *p, size_t size, cz_err *err) {
    const char *path = w->path;
    uint32_t version = le32(p + 4), hlen = le32(p + 8);
    if (version != CZ_CZTF_VERSION)
        return cz_err_set(err,
                          "neural@1: weights file %s: unsupported format version %u (this "
                          "worker reads version %d; rebuild it with make model)",
                          path, version, CZ_CZTF_VERSION);
    size_t data_start = ((size_t)12 + hlen + ALIGN - 1) / ALIGN * ALIGN;
    if (hlen > HEADER_MAX || data_start > size)
        return cz_err_set(err, "neural@1: weights file %s: its header length %u runs past the file",
                          path, hlen);
    cJSON *h = cJSON_ParseWithLength((const char *)p + 12, hlen);
    if (!cJSON_IsObject(h)) {
        cJSON_Delete(h);
        return cz_err_set(err, "neural@1: weights file %s: its header is not a JSON object", path);
    }
    int rc = -1;
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(h, "format");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(h, "model");
    const cJSON *mv = cJSON_GetObjectItemCaseSensitive(h, "model_version");
    const cJSON *nbytes = cJSON_GetObjectItemCaseSensitive(h, "data_bytes");
    const cJSON *dsha = cJSON_GetObjectItemCaseSensitive(h, "data_sha256");
    size_t data_bytes = size - data_start;
    char got[CZ_SHA256_HEX];
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "cztf")) {
        cz_err_set(err, "neural@1: weights file %s: the header's format is not \"cztf\"", path);
    } else if (!cJSON_IsString(model) || strcmp(model->valuestring, "neural")) {
        cz_err_set(err, "neural@1: weights file %s: the header's model is not \"neural\"", path);
    } else if (!cJSON_IsString(mv) || strlen(mv->valuestring) >= sizeof w->model_version) {
        cz_err_set(err, "neural@1: weights file %s: the header has no model_version", path);
    } else if (!cJSON_IsNumber(nbytes) || nbytes->valuedouble != (double)data_bytes) {
        cz_err_set(err,
                   "neural@1: weights file %s: the header says %.0f bytes of data, the file "
                   "has %zu after the header; the file is corrupt",
                   path, cJSON_IsNumber(nbytes) ? nbytes->valuedouble : -1.0, data_bytes);
    } else if (read_config(h, &w->cfg, path, err) == 0 && check_vocab(h, path, err) == 0) {
        snprintf(w->model_version, sizeof w->model_version, "%s", mv->valuestring);
        w->layers = cz_calloc((size_t)w->cfg.n_layers, sizeof *w->layers);
        if (read_tensors(h, w, p + data_start, data_bytes, err) == 0) {
            cz_sha256_hex(p + data_start, data_bytes, got);
            if (!cJSON_IsString(dsha) || strcasecmp(dsha->valuestring, got))
                cz_err_set(err,
                           "neural@1: weights file %s: data sha256 mismatch, the file is "
                           "corrupt (the header says %s, the data hashes to %s)",
                           path, cJSON_IsString(dsha) ? dsha->valuestring : "nothing", got);
            else
                rc = 0;
        }
    }
    cJSON_Delete(h);
    return rc;
}

cz_neural_weights *cz_neural_weights_open(const char *path, cz_err *err) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        int e = errno;
        if (e == ENOENT)
            cz_err_set(err,
                       "neural@1: weights file %s is missing (run make model, or restore it "
                       "from git)",
                       path);
        else
            cz_err_set(err, "neural@1: cannot open weights file %s: %s", path, strerror(e));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        cz_err_set(err, "neural@1: weights file %s is not a regular file", path);
        close(fd);
        return NULL;
    }
    size_t size = (size_t)st.st_size;
    void *map = size ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    int e = errno;
    close(fd);
    if (map == MAP_FAILED) {
        cz_err_set(err, "neural@1: cannot map weights file %s: %s", path,
                   size ? strerror(e) : "it is empty");
        return NULL;
    }
    cz_neural_weights *w = cz_calloc(1, sizeof *w);
    w->path = cz_strdup(path);
    w->map = map;
    w->map_len = size;
    char got[CZ_SHA256_HEX];
    cz_err why;
    if (cz_sha256_sidecar_check(path, map, size, got, &why)) {
        cz_err_set(err, "neural@1: weights file %s: %s; restore it from git or run make model",
                   path, why.msg);
    } else if (size < 12 || memcmp(map, "CZTF", 4)) {
        cz_err_set(err, "neural@1: weights file %s is not a CZTF file (no magic \"CZTF\")", path);
    } else if (read_header(w, map, size, err) == 0) {
        memcpy(w->sha256, got, sizeof got);
        return w;
    }
    cz_neural_weights_free(w);
    return NULL;
}

void cz_neural_weights_free(cz_neural_weights *w) {
    if (!w)
        return;
    if (w->map)
        munmap(w->map, w->map_len);
    free(w->layers);
    free(w->path);
    free(w);
}
