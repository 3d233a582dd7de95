/* Unit tests for fingerprints (common/music/fingerprint.c) and the catalogue index
 * (common/music/fp_index.c): chromaprint on generated audio, scores, and lookups
 * that must find a shifted, damaged copy and must not match unrelated ones. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/music/fingerprint.h"
#include "common/music/fp_index.h"

#define RATE 44100u

/* A few seconds of chord changes, different for each @p seed. */
static float *music(unsigned seed, double seconds, size_t *frames) {
    *frames = (size_t)(seconds * RATE);
    float *s = malloc(*frames * 2 * sizeof *s);
    assert_non_null(s);
    for (size_t i = 0; i < *frames; i++) {
        double t = (double)i / RATE;
        // Each half second a pitch drawn from a hash of (step, seed).
        uint32_t h = ((uint32_t)(t * 2) + 1) * 2654435761u ^ (seed + 1) * 2246822519u;
        h ^= h >> 15;
        h *= 2654435761u;
        double f = 110 * pow(2, (h >> 8) % 36 / 12.0);
        double v = 0.3 * sin(2 * M_PI * f * t) + 0.2 * sin(2 * M_PI * f * 1.5 * t);
        s[2 * i] = s[2 * i + 1] = (float)(v * exp(-2 * fmod(t, 0.5)));
    }
    return s;
}

static void test_fingerprint_is_stable_and_level_free(void **state) {
    (void)state;
    size_t n;
    float *s = music(1, 20, &n);
    cz_fp a, b;
    cz_err err;
    assert_int_equal(cz_fp_compute(s, n, 2, RATE, &a, &err), 0);
    for (size_t i = 0; i < n * 2; i++)
        s[i] *= 0.25f; // 12 dB quieter
    assert_int_equal(cz_fp_compute(s, n, 2, RATE, &b, &err), 0);
    assert_true(a.n > 100 && a.n == b.n);
    assert_true(fabs(a.duration_s - 20) < 1e-9);
    assert_true(cz_fp_score(a.v, a.n, b.v, b.n, 0, NULL) > 0.95);
    assert_true(fabs(cz_fp_item_s() - 0.1238) < 0.001);
    cz_fp_free(&a);
    cz_fp_free(&b);
    free(s);
}

static void test_score(void **state) {
    (void)state;
    uint32_t a[4] = {0xffffffffu, 0, 0xf0f0f0f0u, 1}, b[2] = {0, 0xf0f0f0f0u};
    size_t overlap;
    assert_true(cz_fp_score(a, 4, b, 2, 1, &overlap) == 1.0 && overlap == 2);
    assert_true(fabs(cz_fp_score(a, 4, b, 2, 0, &overlap) - 0.25) < 1e-9); // 48 of 64 bits differ
    assert_true(cz_fp_score(a, 4, b, 2, 9, &overlap) == 0.0 && overlap == 0);
}

static void test_index_finds_a_shifted_copy(void **state) {
    (void)state;
    cz_err err;
    cz_fp_index *ix = cz_fp_index_new();
    assert_non_null(ix);
    cz_fp fps[4];
    for (unsigned k = 0; k < 4; k++) {
        size_t n;
        float *s = music(10 + k, 30, &n);
        assert_int_equal(cz_fp_compute(s, n, 2, RATE, &fps[k], &err), 0);
        assert_int_equal(cz_fp_index_add(ix, 100 + k, fps[k].v, fps[k].n, &err), 0);
        free(s);
    }
    assert_int_equal(cz_fp_index_tracks(ix), 4);
    // Ten seconds from the middle of track 102, a few bits damaged.
    size_t start = 60, len = 80;
    uint32_t *q = malloc(len * sizeof *q);
    for (size_t i = 0; i < len; i++)
        q[i] = fps[2].v[start + i] ^ (i % 3 == 0 ? 1u << (i % 32) : 0);
    cz_fp_match m;
    assert_int_equal(cz_fp_index_query(ix, q, len, &m), 1);
    assert_int_equal(m.track_id, 102);
    assert_int_equal(m.offset, (long)start);
    assert_true(m.score > 0.95 && m.overlap == len);
    // Unrelated music scores like random bits.
    size_t n;
    float *s = music(99, 10, &n);
    cz_fp other;
    assert_int_equal(cz_fp_compute(s, n, 2, RATE, &other, &err), 0);
    int rc = cz_fp_index_query(ix, other.v, other.n, &m);
    assert_true(rc == 0 || m.score < 0.75);
    free(s);
    free(q);
    cz_fp_free(&other);
    for (unsigned k = 0; k < 4; k++)
        cz_fp_free(&fps[k]);
    cz_fp_index_free(ix);
}

static void test_file_errors(void **state) {
    (void)state;
    cz_fp fp;
    cz_err err;
    assert_int_equal(cz_fp_compute_file("/nonexistent/x.flac", &fp, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/x.flac"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fingerprint_is_stable_and_level_free),
        cmocka_unit_test(test_score),
        cmocka_unit_test(test_index_finds_a_shifted_copy),
        cmocka_unit_test(test_file_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
