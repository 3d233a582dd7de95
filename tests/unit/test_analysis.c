/* Unit tests for track analysis (common/music/analysis.c) on synthesised audio:
 * drum patterns at known tempos, chord progressions in known keys, a loud
 * dense signal against a quiet sparse one, and embeddings that must place
 * two takes of the same material closer than different material. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/mem.h"
#include "common/music/analysis.h"

#define RATE 44100

/* A deterministic noise source (an LCG), -1..1. */
static double noise(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (double)(*s >> 8) / (double)(1u << 23) - 1.0;
}

static void add_drums(float *s, long frames, double bpm, double gain, bool busy, uint32_t seed);

static float *alloc_stereo(double seconds, long *frames) {
    *frames = (long)(seconds * RATE);
    float *s = calloc((size_t)*frames * 2, sizeof *s);
    assert_non_null(s);
    return s;
}

/* Adds a drum kit at @p bpm: kick on beats 1 and 3 (on every beat when
 * @p four), snare on 2 and 4, closed hats on every eighth (every
 * sixteenth when @p busy). */
static void add_kit(float *s, long frames, double bpm, double gain, bool busy, bool four,
                    uint32_t seed) {
    double beat = 60.0 / bpm, step = beat / (busy ? 4 : 2);
    long nsteps = (long)((double)frames / RATE / step);
    for (long k = 0; k < nsteps; k++) {
        long at = (long)(k * step * RATE);
        int per_beat = busy ? 4 : 2;
        bool on_beat = k % per_beat == 0;
        long b = k / per_beat;
        for (long i = 0; i < (long)(0.25 * RATE) && at + i < frames; i++) {
            double t = (double)i / RATE, v = 0;
            if (on_beat && (four || b % 2 == 0)) // kick: a falling sine
                v += 0.9 * sin(2 * M_PI * (50 + 80 * exp(-t * 30)) * t) * exp(-t * 12);
            if (on_beat && b % 2 == 1) // snare: noise and a tone
                v += (0.5 * noise(&seed) + 0.3 * sin(2 * M_PI * 190 * t)) * exp(-t * 20);
            v += 0.25 * noise(&seed) * exp(-t * 90); // hat
            s[2 * (at + i)] += (float)(gain * v);
            s[2 * (at + i) + 1] += (float)(gain * v);
        }
    }
}

/* A metronome: a 1 kHz click on every beat, 2 kHz on the first of four. */
static void add_clicks(float *s, long frames, double bpm, double gain) {
    for (long b = 0; (double)b * 60.0 / bpm * RATE < (double)frames; b++) {
        long at = (long)(b * 60.0 / bpm * RATE);
        double f = b % 4 ? 1000 : 2000;
        for (long i = 0; i < RATE / 50 && at + i < frames; i++) {
            double t = (double)i / RATE, v = gain * sin(2 * M_PI * f * t) * exp(-t * 200);
            s[2 * (at + i)] += (float)v;
            s[2 * (at + i) + 1] += (float)v;
        }
    }
}

static void add_drums(float *s, long frames, double bpm, double gain, bool busy, uint32_t seed) {
    add_kit(s, frames, bpm, gain, busy, false, seed);
}

/* A note with a few harmonics, as a plucked or struck instrument. */
static void add_note(float *s, long frames, double start, double len, double midi, double gain) {
    double f = 440.0 * pow(2.0, (midi - 69) / 12.0);
    long at = (long)(start * RATE), n = (long)(len * RATE);
    for (long i = 0; i < n && at + i < frames; i++) {
        double t = (double)i / RATE, env = fmin(1.0, t * 200) * exp(-t * 1.5);
        double v =
            sin(2 * M_PI * f * t) + 0.4 * sin(4 * M_PI * f * t) + 0.15 * sin(6 * M_PI * f * t);
        s[2 * (at + i)] += (float)(gain * env * v);
        s[2 * (at + i) + 1] += (float)(gain * env * v);
    }
}

/* Triads (and the root an octave down) on the scale degrees of a cadence
 * in @p key: I IV V I in major, i iv V i (harmonic minor) in minor, one
 * chord a second, followed by the scale up and down. */
static void add_cadence(float *s, long frames, int key, int mode, double gain, double seconds) {
    static const int major_roots[4] = {0, 5, 7, 0}, minor_roots[4] = {0, 5, 7, 0};
    static const int major_scale[8] = {0, 2, 4, 5, 7, 9, 11, 12};
    static const int minor_scale[8] = {0, 2, 3, 5, 7, 8, 11, 12};
    double t = 0;
    while (t + 1 <= seconds) {
        for (int c = 0; c < 4 && t + 1 <= seconds; c++, t += 1) {
            int root = 60 + key + (mode ? major_roots[c] : minor_roots[c]);
            // The dominant is major in both modes; i and iv are minor in minor.
            int third = mode || c == 2 ? 4 : 3;
            add_note(s, frames, t, 1.0, root - 12, gain);
            add_note(s, frames, t, 1.0, root, gain * 0.6);
            add_note(s, frames, t, 1.0, root + third, gain * 0.6);
            add_note(s, frames, t, 1.0, root + 7, gain * 0.6);
        }
        for (int i = 0; i < 8 && t + 0.25 <= seconds; i++, t += 0.25)
            add_note(s, frames, t, 0.25, 72 + key + (mode ? major_scale : minor_scale)[i], gain);
    }
}

static cz_track_features analyse(const float *s, long frames) {
    cz_track_features f;
    cz_err err = {{0}};
    int rc = cz_analysis_run(s, frames, 2, RATE, &f, &err);
    if (rc)
        fail_msg("analysis failed: %s", err.msg);
    return f;
}

static double dot(const cz_track_features *a, const cz_track_features *b) {
    double d = 0;
    for (int i = 0; i < CZ_EMBED_DIM; i++)
        d += (double)a->embedding[i] * b->embedding[i];
    return d;
}

static void assert_unit(const cz_track_features *f) {
    double n = dot(f, f);
    if (fabs(n - 1.0) > 1e-4)
        fail_msg("embedding length^2 %.6f, want 1", n);
}

/* ---------------------------------------------------------------- tests */

static void test_tempo_of_drum_patterns(void **state) {
    (void)state;
    // A backbeat at 90 and 110, four on the floor at 124 and 128, a click
    // track at 75 and 140. (Tempos well over 150 may read at half time,
    // the octave the prior prefers: see docs/architecture.md.)
    static const double bpms[] = {90, 110, 124, 128, 75, 140};
    static const int kind[] = {0, 0, 1, 1, 2, 2};
    for (size_t i = 0; i < sizeof bpms / sizeof *bpms; i++) {
        long n;
        float *s = alloc_stereo(20, &n);
        if (kind[i] < 2)
            add_kit(s, n, bpms[i], 0.5, false, kind[i] == 1, 7);
        else
            add_clicks(s, n, bpms[i], 0.4);
        cz_track_features f = analyse(s, n);
        if (fabs(f.tempo_bpm - bpms[i]) > 0.02 * bpms[i])
            fail_msg("drums at %.0f bpm read as %.2f bpm", bpms[i], f.tempo_bpm);
        assert_true(f.tempo_bpm >= CZ_ANALYSIS_TEMPO_MIN && f.tempo_bpm < CZ_ANALYSIS_TEMPO_MAX);
        assert_true(fabs(f.duration_s - 20.0) < 0.01);
        assert_unit(&f);
        free(s);
    }
}

static void test_tempo_folding(void **state) {
    (void)state;
    assert_true(cz_analysis_fold_tempo(120) == 120);
    assert_true(cz_analysis_fold_tempo(60) == 60);
    assert_true(cz_analysis_fold_tempo(45) == 90);
    assert_true(cz_analysis_fold_tempo(25) == 100);
    assert_true(cz_analysis_fold_tempo(200) == 100);
    assert_true(cz_analysis_fold_tempo(199) == 199);
    assert_true(cz_analysis_fold_tempo(420) == 105);
    assert_true(cz_analysis_fold_tempo(0) == 0);
    assert_true(cz_analysis_fold_tempo(-5) == 0);
}

static void test_key_and_mode_of_cadences(void **state) {
    (void)state;
    static const struct { int key, mode; } keys[] = {{0, 1}, {9, 0}, {7, 1}, {6, 0}, {2, 0}};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++) {
        long n;
        float *s = alloc_stereo(12, &n);
        add_cadence(s, n, keys[i].key, keys[i].mode, 0.15, 12);
        cz_track_features f = analyse(s, n);
        if (f.key != keys[i].key || f.mode != keys[i].mode)
            fail_msg("%s %s read as %s %s", cz_analysis_key_name(keys[i].key),
                     keys[i].mode ? "major" : "minor", cz_analysis_key_name(f.key),
                     f.mode ? "major" : "minor");
        free(s);
    }
}

static void test_energy_loud_dense_over_quiet_sparse(void **state) {
    (void)state;
    long n;
    float *loud = alloc_stereo(15, &n), *quiet = alloc_stereo(15, &n);
    add_drums(loud, n, 150, 0.8, true, 3);
    add_cadence(loud, n, 4, 0, 0.2, 15);
    for (double t = 0; t + 3 <= 15; t += 3) // a soft low note every three seconds
        add_note(quiet, n, t, 3, 48, 0.02);
    cz_track_features a = analyse(loud, n), b = analyse(quiet, n);
    if (!(a.energy > b.energy + 0.2))
        fail_msg("loud dense energy %.3f, quiet sparse %.3f", a.energy, b.energy);
    assert_true(a.energy >= 0 && a.energy <= 1 && b.energy >= 0 && b.energy <= 1);
    assert_true(a.loudness_lufs > b.loudness_lufs + 20);
    // The moods follow: energetic, and calm.
    bool energetic = false, calm = false;
    for (int i = 0; i < a.n_moods; i++)
        energetic |= !strcmp(a.moods[i], "energetic");
    for (int i = 0; i < b.n_moods; i++)
        calm |= !strcmp(b.moods[i], "calm");
    assert_true(energetic);
    assert_true(calm);
    free(loud);
    free(quiet);
}

static void test_embedding_similarity(void **state) {
    (void)state;
    long n;
    float *a = alloc_stereo(15, &n), *a2 = alloc_stereo(15, &n), *b = alloc_stereo(15, &n);
    float *c = alloc_stereo(15, &n);
    // Material A: drums at 124 bpm and a C major cadence. A2: the same
    // played 6 dB softer, other hats, and a little noise. B: a slow
    // sparse F# minor cadence with no drums. C: A's cadence alone, in
    // A's key but without its drums (the chroma alone cannot tell them).
    add_drums(a, n, 124, 0.5, false, 11);
    add_cadence(a, n, 0, 1, 0.12, 15);
    add_drums(a2, n, 124, 0.25, false, 99);
    add_cadence(a2, n, 0, 1, 0.06, 15);
    uint32_t seed = 5;
    for (long i = 0; i < 2 * n; i++)
        a2[i] += (float)(0.002 * noise(&seed));
    add_cadence(b, n, 6, 0, 0.05, 15);
    add_cadence(c, n, 0, 1, 0.12, 15);
    cz_track_features fa = analyse(a, n), fa2 = analyse(a2, n), fb = analyse(b, n);
    cz_track_features fc = analyse(c, n);
    assert_unit(&fa);
    assert_unit(&fa2);
    assert_unit(&fb);
    double same = dot(&fa, &fa2), other = dot(&fa, &fb), other2 = dot(&fa2, &fb);
    if (!(same > other + 0.2 && same > other2 + 0.2))
        fail_msg("dot(A, A') %.3f is not above dot(A, B) %.3f and dot(A', B) %.3f", same, other,
                 other2);
    if (!(same > dot(&fa, &fc) + 0.2))
        fail_msg("dot(A, A') %.3f is not above dot(A, C) %.3f", same, dot(&fa, &fc));
    free(a);
    free(a2);
    free(b);
    free(c);
}

static void test_deterministic_and_json(void **state) {
    (void)state;
    long n;
    float *s = alloc_stereo(10, &n);
    add_drums(s, n, 100, 0.4, false, 1);
    add_cadence(s, n, 9, 0, 0.1, 10);
    cz_track_features f1 = analyse(s, n), f2 = analyse(s, n);
    assert_memory_equal(&f1, &f2, sizeof f1);
    // With the loudness measured by the caller: the same features.
    cz_track_features f3;
    cz_err err;
    assert_int_equal(cz_analysis_run_measured(s, n, 2, RATE, f1.loudness_lufs, &f3, &err), 0);
    assert_true(f3.loudness_lufs == f1.loudness_lufs && f3.tempo_bpm == f1.tempo_bpm);
    assert_true(f3.key == f1.key && f3.mode == f1.mode && fabsf(f3.energy - f1.energy) < 1e-5f);
    assert_true(dot(&f1, &f3) > 0.9999);
    cz_analysis_add_genre(&f1, "lofi");
    cz_analysis_add_genre(&f1, "lofi");
    cz_analysis_add_genre(&f1, "");
    assert_int_equal(f1.n_genres, 1);
    cJSON *j = cz_analysis_json(&f1);
    assert_non_null(j);
    assert_string_equal(cJSON_GetObjectItem(j, "key")->valuestring, "A");
    assert_int_equal(cJSON_GetObjectItem(j, "key_index")->valueint, 9);
    assert_string_equal(cJSON_GetObjectItem(j, "mode")->valuestring, "minor");
    assert_string_equal(cJSON_GetObjectItem(j, "camelot")->valuestring, "8A");
    assert_int_equal(strlen(cJSON_GetObjectItem(j, "embedding")->valuestring), 172);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(j, "genres")), 1);
    cJSON_Delete(j);
    // The stored bytes are little-endian float32.
    unsigned char bytes[4 * CZ_EMBED_DIM];
    cz_track_embedding_bytes(&f1, bytes);
    uint32_t u = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 |
                 (uint32_t)bytes[3] << 24;
    float e0;
    memcpy(&e0, &u, sizeof e0);
    assert_true(e0 == f1.embedding[0]);
    free(s);
}

static void test_refuses_silence_and_bad_input(void **state) {
    (void)state;
    long n;
    float *s = alloc_stereo(5, &n);
    cz_track_features f;
    cz_err err;
    assert_int_equal(cz_analysis_run(s, n, 2, RATE, &f, &err), -1);
    assert_non_null(strstr(err.msg, "silent"));
    add_drums(s, n, 120, 0.5, false, 2);
    assert_int_equal(cz_analysis_run(s, RATE / 4, 2, RATE, &f, &err), -1);
    assert_non_null(strstr(err.msg, "too short"));
    assert_int_equal(cz_analysis_run(s, n, 0, RATE, &f, &err), -1);
    assert_int_equal(cz_analysis_run(NULL, n, 2, RATE, &f, &err), -1);
    assert_int_equal(cz_analysis_file("/nonexistent.wav", &f, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent.wav"));
    free(s);
}

int main(void) {
    cz_mem_init(); /* cJSON allocates as the binaries do */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tempo_of_drum_patterns),
        cmocka_unit_test(test_tempo_folding),
        cmocka_unit_test(test_key_and_mode_of_cadences),
        cmocka_unit_test(test_energy_loud_dense_over_quiet_sparse),
        cmocka_unit_test(test_embedding_similarity),
        cmocka_unit_test(test_deterministic_and_json),
        cmocka_unit_test(test_refuses_silence_and_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
