/* Fingerprint matching benchmark (tests/bench/bench_fingerprint.sh runs it).
 *
 * Builds a synthetic catalogue of N fingerprints in the post worker's own
 * index (common/music/fp_index.c) and times queries against it: half are copies
 * of a random stretch of a catalogue track with a share of their bits
 * flipped (what a lossy re-encode does to a chromaprint fingerprint), half
 * are unrelated. Synthetic items follow chromaprint's habit of changing
 * slowly: each bit of an item flips from the item before with a small
 * probability. Prints the index build time, memory, p50/p99/max per query,
 * and how many copies were found and unrelated queries wrongly matched.
 *
 *   fp_bench [tracks] [track_s] [query_s] [queries] */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/music/fingerprint.h"
#include "common/music/fp_index.h"
#include "common/rand.h"

#define ITEM_S 0.1238
#define DRIFT 4        /* each bit flips from one item to the next with p = 2^-4 */
#define DISTORT 5      /* each bit of a copy is flipped with p = 2^-5 (about 3%) */
#define THRESHOLD 0.75 /* the post pool's default */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t rng(void) {
    return cz_splitmix64_next(&rng_state);
}

/* A 32-bit mask whose bits are each set with probability 2^-k. */
static uint32_t flips(int k) {
    uint32_t m = UINT32_MAX;
    for (int i = 0; i < k; i++)
        m &= (uint32_t)(rng() >> 16);
    return m;
}

static void synth(uint32_t *v, size_t n) {
    v[0] = (uint32_t)rng();
    for (size_t i = 1; i < n; i++)
        v[i] = v[i - 1] ^ flips(DRIFT);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
    size_t tracks = argc > 1 ? strtoul(argv[1], NULL, 10) : 100000;
    double track_s = argc > 2 ? atof(argv[2]) : 180;
    double query_s = argc > 3 ? atof(argv[3]) : 30;
    size_t queries = argc > 4 ? strtoul(argv[4], NULL, 10) : 1000;
    size_t tn = (size_t)(track_s / ITEM_S), qn = (size_t)(query_s / ITEM_S);
    cz_err err;
    cz_fp_index *ix = cz_fp_index_new();
    uint32_t *v = malloc(tn * sizeof *v), *q = malloc(qn * sizeof *q);
    // Keep a few tracks to cut queries from.
    size_t keep = 1000;
    uint32_t *kept = malloc(keep * tn * sizeof *kept);
    if (!ix || !v || !q || !kept || qn > tn) {
        fprintf(stderr, "fp_bench: out of memory or query longer than tracks\n");
        return 1;
    }
    double t0 = now();
    for (size_t i = 0; i < tracks; i++) {
        synth(v, tn);
        if (i % (tracks / keep ? tracks / keep : 1) == 0 &&
            i / (tracks / keep ? tracks / keep : 1) < keep)
            memcpy(kept + (i / (tracks / keep ? tracks / keep : 1)) * tn, v, tn * sizeof *v);
        if (cz_fp_index_add(ix, (int64_t)i + 1, v, tn, &err)) {
            fprintf(stderr, "fp_bench: %s\n", err.msg);
            return 1;
        }
    }
    double build = now() - t0;
    long rss = 0;
    FILE *st = fopen("/proc/self/statm", "r");
    if (st) {
        long pages;
        if (fscanf(st, "%*d %ld", &pages) == 1)
            rss = pages * 4096 / (1024 * 1024);
        fclose(st);
    }

    double *lat = malloc(queries * sizeof *lat);
    size_t found = 0, copies = 0, false_hits = 0;
    for (size_t k = 0; k < queries; k++) {
        bool copy = k % 2 == 0;
        int64_t want = 0;
        if (copy) {
            size_t which = rng() % keep, start = rng() % (tn - qn + 1);
            const uint32_t *src = kept + which * tn;
            for (size_t i = 0; i < qn; i++)
                q[i] = src[start + i] ^ flips(DISTORT);
            want = (int64_t)(which * (tracks / keep ? tracks / keep : 1)) + 1;
            copies++;
        } else {
            synth(q, qn);
        }
        cz_fp_match m;
        double a = now();
        int rc = cz_fp_index_query(ix, q, qn, &m);
        lat[k] = (now() - a) * 1000.0;
        bool hit = rc == 1 && m.score >= THRESHOLD;
        if (copy && hit && m.track_id == want)
            found++;
        if (!copy && hit)
            false_hits++;
    }
    qsort(lat, queries, sizeof *lat, cmp);
    printf("tracks %zu  track_s %.0f  query_s %.0f  queries %zu\n", tracks, track_s, query_s,
           queries);
    printf("build_s %.2f  rss_mb %ld\n", build, rss);
    printf("p50_ms %.3f  p99_ms %.3f  max_ms %.3f\n", lat[queries / 2],
           lat[(size_t)(queries * 0.99)], lat[queries - 1]);
    printf("copies_found %zu/%zu  unrelated_matched %zu/%zu\n", found, copies, false_hits,
           queries - copies);
    cz_fp_index_free(ix);
    free(v);
    free(q);
    free(kept);
    free(lat);
    return found == copies && false_hits == 0 ? 0 : 1;
}
