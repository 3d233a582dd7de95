/* The fingerprint index: see fp_index.h.
 *
 * Layout. A direct table of 2^CZ_FP_INDEX_KEY_BITS buckets, each a growable
 * array of postings; a posting is (track slot << 32 | item position). A
 * track slot indexes the array of tracks, which owns each fingerprint for
 * scoring. Runs of one key in a fingerprint (chromaprint items change slowly,
 * so neighbours often share their top bits) are posted once, at the run's
 * first position; the query skips its runs the same way, so the two still
 * line up.
 *
 * Votes go into an open-addressing hash table keyed by (slot, offset),
 * sized to the postings the query touched, so a query allocates in
 * proportion to its own work. The CZ_FP_INDEX_CANDIDATES best-voted
 * alignments are scored at their offset and one item either side (a
 * resampled or trimmed copy can land between items). */
#include "common/music/fp_index.h"

#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/music/fingerprint.h"

#define CZ_FP_BUCKETS ((size_t)1 << CZ_FP_INDEX_KEY_BITS)
#define CZ_FP_KEY(v) ((v) >> (32 - CZ_FP_INDEX_KEY_BITS))

typedef struct cz_fp_bucket {
    uint64_t *items;
    uint32_t n, cap;
} cz_fp_bucket;

typedef struct cz_fp_track {
    int64_t id;
    uint32_t *v;
    size_t n;
} cz_fp_track;

struct cz_fp_index {
    cz_fp_bucket *buckets;
    cz_fp_track *tracks;
    size_t ntracks, cap;
};

double cz_fp_score(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, long offset,
                   size_t *overlap) {
    // Item j of b meets item j + offset of a.
    long from = offset < 0 ? -offset : 0;
    long to = (long)nb;
    if ((long)na - offset < to)
        to = (long)na - offset;
    if (overlap)
        *overlap = to > from ? (size_t)(to - from) : 0;
    if (to <= from)
        return 0.0;
    unsigned long errors = 0;
    for (long j = from; j < to; j++)
        errors += (unsigned)__builtin_popcount(a[j + offset] ^ b[j]);
    return 1.0 - (double)errors / (32.0 * (double)(to - from));
}

cz_fp_index *cz_fp_index_new(void) {
    cz_fp_index *ix = cz_calloc(1, sizeof *ix);
    ix->buckets = cz_calloc(CZ_FP_BUCKETS, sizeof *ix->buckets);
    return ix;
}

void cz_fp_index_free(cz_fp_index *ix) {
    if (!ix)
        return;
    for (size_t i = 0; i < CZ_FP_BUCKETS; i++)
        free(ix->buckets[i].items);
    for (size_t i = 0; i < ix->ntracks; i++)
        free(ix->tracks[i].v);
    free(ix->buckets);
    free(ix->tracks);
    free(ix);
}

size_t cz_fp_index_tracks(const cz_fp_index *ix) {
    return ix ? ix->ntracks : 0;
}

static void cz_fp_post(cz_fp_bucket *b, uint64_t posting) {
    if (b->n == b->cap) {
        uint32_t cap = b->cap ? b->cap * 2 : 4;
        b->items = cz_realloc(b->items, cap * sizeof *b->items);
        b->cap = cap;
    }
    b->items[b->n++] = posting;
}

int cz_fp_index_add(cz_fp_index *ix, int64_t track_id, const uint32_t *v, size_t n, cz_err *err) {
    if (!ix || (n > 0 && !v))
        return cz_err_set(err, "fingerprint index: no index or no fingerprint given");
    if (n > UINT32_MAX || ix->ntracks >= UINT32_MAX)
        return cz_err_set(err, "fingerprint index: track %lld is too long or the index is full",
                          (long long)track_id);
    if (ix->ntracks == ix->cap) {
        size_t cap = ix->cap ? ix->cap * 2 : 64;
        ix->tracks = cz_realloc(ix->tracks, cap * sizeof *ix->tracks);
        ix->cap = cap;
    }
    cz_fp_track *t = &ix->tracks[ix->ntracks];
    t->id = track_id;
    t->n = n;
    t->v = cz_malloc((n ? n : 1) * sizeof *t->v);
    if (n)
        memcpy(t->v, v, n * sizeof *v);
    uint64_t slot = ix->ntracks;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && CZ_FP_KEY(v[i]) == CZ_FP_KEY(v[i - 1]))
            continue;
        cz_fp_post(&ix->buckets[CZ_FP_KEY(v[i])], slot << 32 | i);
    }
    ix->ntracks++;
    return 0;
}

/* ---------------------------------------------------------------- query */

typedef struct cz_fp_vote {
    uint64_t key; /* slot << 32 | (offset + 2^31); 0 = empty */
    int votes;
} cz_fp_vote;

static uint64_t cz_fp_mix(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    return x;
}

/* Keeps the best CZ_FP_INDEX_CANDIDATES votes, sorted by votes, descending. */
static void cz_fp_keep(cz_fp_vote *top, size_t *ntop, cz_fp_vote v) {
    size_t i = *ntop < CZ_FP_INDEX_CANDIDATES ? (*ntop)++ : CZ_FP_INDEX_CANDIDATES;
    if (i == CZ_FP_INDEX_CANDIDATES) {
        if (v.votes <= top[i - 1].votes)
            return;
        i--;
    }
    while (i > 0 && top[i - 1].votes < v.votes) {
        top[i] = top[i - 1];
        i--;
    }
    top[i] = v;
}

/* Counts the postings the query would read. */
static size_t cz_fp_touched(const cz_fp_index *ix, const uint32_t *q, size_t n) {
    size_t total = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && CZ_FP_KEY(q[i]) == CZ_FP_KEY(q[i - 1]))
            continue;
        uint32_t len = ix->buckets[CZ_FP_KEY(q[i])].n;
        if (len <= CZ_FP_INDEX_MAX_POSTINGS)
            total += len;
    }
    return total;
}

int cz_fp_index_query(const cz_fp_index *ix, const uint32_t *q, size_t n, cz_fp_match *best) {
    memset(best, 0, sizeof *best);
    if (!ix || !q || n == 0)
        return 0;
    size_t touched = cz_fp_touched(ix, q, n);
    if (touched == 0)
        return 0;
    size_t cap = 64;
    while (cap < 2 * touched)
        cap *= 2;
    cz_fp_vote *table = cz_calloc(cap, sizeof *table);

    for (size_t i = 0; i < n; i++) {
        if (i > 0 && CZ_FP_KEY(q[i]) == CZ_FP_KEY(q[i - 1]))
            continue;
        const cz_fp_bucket *b = &ix->buckets[CZ_FP_KEY(q[i])];
        if (b->n > CZ_FP_INDEX_MAX_POSTINGS)
            continue;
        for (uint32_t k = 0; k < b->n; k++) {
            uint64_t slot = b->items[k] >> 32, pos = b->items[k] & 0xffffffffu;
            uint64_t off = (uint64_t)((int64_t)pos - (int64_t)i + ((int64_t)1 << 31));
            uint64_t key = slot << 32 | (off & 0xffffffffu);
            key += 1; // 0 marks an empty slot
            size_t h = cz_fp_mix(key) & (cap - 1);
            while (table[h].key && table[h].key != key)
                h = (h + 1) & (cap - 1);
            table[h].key = key;
            table[h].votes++;
        }
    }
    cz_fp_vote top[CZ_FP_INDEX_CANDIDATES];
    size_t ntop = 0;
    for (size_t h = 0; h < cap; h++)
        if (table[h].key)
            cz_fp_keep(top, &ntop, table[h]);
    free(table);

    int found = 0;
    for (size_t c = 0; c < ntop; c++) {
        uint64_t key = top[c].key - 1;
        const cz_fp_track *t = &ix->tracks[key >> 32];
        long offset = (long)((int64_t)(key & 0xffffffffu) - ((int64_t)1 << 31));
        for (long d = -1; d <= 1; d++) {
            size_t overlap;
            double s = cz_fp_score(t->v, t->n, q, n, offset + d, &overlap);
            if (overlap < CZ_FP_INDEX_MIN_OVERLAP && overlap < n)
                continue;
            if (!found || s > best->score) {
                *best = (cz_fp_match){.track_id = t->id,
                                      .score = s,
                                      .offset = offset + d,
                                      .overlap = overlap,
                                      .votes = top[c].votes};
                found = 1;
            }
        }
    }
    return found;
}
