/* Unit tests for the worker's audio modules: loudness measurement and audio
 * files (workers/master/audio.c) and the mastering step (workers/master/master.c). Pieces
 * to master come from the renderer (its own tests are in test_render.c).
 *
 * The loudness reference is a 997 Hz sine at -30 dBFS peak on both channels of
 * a stereo signal: BS.1770 puts a full-scale 997 Hz sine on one channel at
 * -3.01 LKFS, so on two channels at 0 LKFS, and this one at -30.0 LUFS; ffmpeg's
 * ebur128 filter measures the same signal at -30.006 LUFS. Rendering needs a
 * General MIDI SoundFont, taken from CADENZA_SOUNDFONT or the Debian
 * fluid-soundfont-gm path; it is loaded once for the whole group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <ebur128.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "workers/composer/render.h"
#include "workers/master/audio.h"
#include "workers/master/master.h"

#define RATE 48000u
#define DEFAULT_SOUNDFONT "/usr/share/sounds/sf2/FluidR3_GM.sf2"

typedef struct fixture {
    cz_renderer *r;
    char dir[64];
} fixture;

static int group_setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    const char *sf = getenv("CADENZA_SOUNDFONT");
    cz_err err = {{0}};
    if (!f)
        return -1;
    *state = f;
    f->r = cz_render_open(sf && *sf ? sf : DEFAULT_SOUNDFONT, RATE, &err);
    if (!f->r) {
        fprintf(stderr, "test_audio: %s\n", err.msg);
        return -1;
    }
    strcpy(f->dir, "/tmp/cz_test_audio_XXXXXX");
    return mkdtemp(f->dir) ? 0 : -1;
}

static int group_teardown(void **state) {
    fixture *f = *state;
    if (f) {
        cz_render_close(f->r);
        rmdir(f->dir);
        free(f);
    }
    return 0;
}

static void path_in(const fixture *f, const char *name, char *out, size_t n) {
    snprintf(out, n, "%s/%s", f->dir, name);
}

/* Stereo sine of @p freq Hz at @p peak_dbfs, the same on both channels. */
static cz_audio make_sine(double freq, double peak_dbfs, double seconds) {
    cz_audio a = {.frames = (size_t)(seconds * RATE), .channels = 2, .sample_rate = RATE};
    a.samples = malloc(a.frames * 2 * sizeof(float));
    assert_non_null(a.samples);
    double amp = pow(10.0, peak_dbfs / 20.0);
    for (size_t i = 0; i < a.frames; i++) {
        float v = (float)(amp * sin(2.0 * 3.14159265358979323846 * freq * (double)i / RATE));
        a.samples[2 * i] = a.samples[2 * i + 1] = v;
    }
    return a;
}

static cz_audio render(fixture *f, double seconds, uint64_t seed) {
    cz_render_params p = {.duration_s = seconds, .seed = seed};
    cz_audio a;
    cz_err err = {{0}};
    int rc = cz_render_generate(f->r, &p, NULL, NULL, &a, &err);
    if (rc != 0)
        fail_msg("render failed: %s", err.msg);
    return a;
}

static int same_samples(const cz_audio *a, const cz_audio *b) {
    return a->frames == b->frames && a->channels == b->channels &&
           memcmp(a->samples, b->samples, a->frames * a->channels * sizeof(float)) == 0;
}

/* ---------------------------------------------------------------- loudness */

static void test_loudness_sine_997hz(void **state) {
    (void)state;
    cz_audio a = make_sine(997.0, -30.0, 10.0);
    cz_loudness l;
    cz_err err = {{0}};
    assert_int_equal(cz_loudness_measure(&a, &l, &err), 0);
    assert_true(fabs(l.integrated_lufs - -30.0) < 0.05);
    assert_true(fabs(l.true_peak_dbtp - -30.0) < 0.05);
    assert_true(fabs(l.sample_peak_dbfs - -30.0) < 0.05);
    assert_true(l.lra_lu < 0.5);
    assert_true(fabs(l.duration_s - 10.0) < 1e-9);
    cz_audio_free(&a);
    assert_null(a.samples);
}

static void test_loudness_silence(void **state) {
    (void)state;
    cz_audio a = {.frames = RATE * 3, .channels = 2, .sample_rate = RATE};
    a.samples = calloc(a.frames * 2, sizeof(float));
    cz_loudness l;
    cz_err err = {{0}};
    assert_int_equal(cz_loudness_measure(&a, &l, &err), 0);
    assert_true(isinf(l.integrated_lufs) && l.integrated_lufs < 0);
    assert_true(isinf(l.true_peak_dbtp) && l.true_peak_dbtp < 0);
    cz_audio_free(&a);
}

/* The true peak of every frame by one libebur128 state, the plain way. */
static double whole_true_peak_db(const cz_audio *a) {
    ebur128_state *st = ebur128_init(a->channels, a->sample_rate, EBUR128_MODE_TRUE_PEAK);
    assert_non_null(st);
    assert_int_equal(ebur128_add_frames_float(st, a->samples, a->frames), EBUR128_SUCCESS);
    double tp = 0.0;
    for (unsigned c = 0; c < a->channels; c++) {
        double t;
        assert_int_equal(ebur128_true_peak(st, c, &t), EBUR128_SUCCESS);
        tp = fmax(tp, t);
    }
    ebur128_destroy(&st);
    return 20.0 * log10(tp);
}

/* A signal made to catch a peak meter that skips the wrong parts: noise
 * (faint, or loud enough to matter as history), with short bursts of a quarter-rate tone whose
 * samples fall 45 degrees off its crests (so its true peak is 3 dB over its sample peak), of random
 * loudness, some right at the signal's ends, and one lone sample louder than any burst's samples
 * but quieter than the loudest bursts' true peaks. */
static cz_audio make_bursts(unsigned rate, double seconds, float noise, int bursts, unsigned seed) {
    cz_audio a = {.frames = (size_t)(rate * seconds), .channels = 2, .sample_rate = rate};
    a.samples = calloc(a.frames * 2, sizeof(float));
    assert_non_null(a.samples);
    srand(seed);
    for (size_t i = 0; i < a.frames * 2; i++)
        a.samples[i] = noise * ((float)rand() / RAND_MAX - 0.5f);
    for (int b = 0; b < bursts; b++) {
        size_t len = 2 + (size_t)rand() % 40;
        size_t at = b == 0 ? 0 : b == 1 ? a.frames - len : (size_t)rand() % (a.frames - len);
        float amp = 0.05f + 1.15f * (float)rand() / RAND_MAX;
        unsigned c = (unsigned)rand() % 2;
        for (size_t i = 0; i < len; i++)
            a.samples[(at + i) * 2 + c] += amp * (float)sin(M_PI / 2 * (double)i + M_PI / 4);
    }
    a.samples[(a.frames / 3) * 2 + 1] = 0.9f; // over every burst's samples (< 0.85)
    return a;
}

static void test_true_peak_matches_whole_signal(void **state) {
    (void)state;
    const unsigned rates[] = {44100, 48000, 96000, 192000};
    for (size_t r = 0; r < sizeof rates / sizeof *rates; r++) {
        for (unsigned seed = 1; seed <= 8; seed++) {
            // Sparse bursts, and dense ones (which split the peak work).
            cz_audio a = make_bursts(rates[r], 12.0, seed % 2 ? 0.01f : 0.2f,
                                     seed % 4 < 2 ? 200 : 4000, seed);
            cz_loudness l;
            cz_err err = {{0}};
            assert_int_equal(cz_loudness_measure(&a, &l, &err), 0);
            double want = whole_true_peak_db(&a);
            if (fabs(l.true_peak_dbtp - want) > 1e-9)
                fail_msg("%u Hz, seed %u: true peak %.9f dB, libebur128 over every frame %.9f",
                         rates[r], seed, l.true_peak_dbtp, want);
            cz_audio_free(&a);
        }
    }
}

static void test_true_peak_of_noise(void **state) {
    (void)state;
    cz_audio a = make_bursts(RATE, 12.0, 0.0f, 0, 9);
    for (size_t i = 0; i < a.frames * 2; i++) // loud everywhere: nothing to skip
        a.samples[i] = 0.8f * ((float)rand() / RAND_MAX - 0.5f);
    cz_loudness l;
    cz_err err = {{0}};
    assert_int_equal(cz_loudness_measure(&a, &l, &err), 0);
    assert_true(fabs(l.true_peak_dbtp - whole_true_peak_db(&a)) <= 1e-9);
    cz_audio_free(&a);
}

/* ---------------------------------------------------------------- files */

static void test_audio_flac_roundtrip(void **state) {
    fixture *f = *state;
    char path[128];
    path_in(f, "piece.flac", path, sizeof path);
    cz_audio a = render(f, 8.0, 11);
    cz_master_target t = {-14.0, -1.0};
    cz_master_report rep;
    cz_err err = {{0}};
    assert_int_equal(cz_master_apply(&a, &t, &rep, &err), 0);
    assert_int_equal(cz_audio_write(path, &a, CZ_AUDIO_FLAC_24, &err), 0);

    cz_audio b;
    cz_loudness la, lb;
    assert_int_equal(cz_audio_read(path, &b, &err), 0);
    assert_int_equal(b.frames, a.frames);
    assert_int_equal(b.channels, 2);
    assert_int_equal(b.sample_rate, RATE);
    assert_int_equal(cz_loudness_measure(&a, &la, &err), 0);
    assert_int_equal(cz_loudness_measure(&b, &lb, &err), 0);
    assert_true(fabs(la.integrated_lufs - lb.integrated_lufs) < 0.1);
    assert_true(fabs(la.true_peak_dbtp - lb.true_peak_dbtp) < 0.1);
    cz_audio_free(&a);
    cz_audio_free(&b);
    unlink(path);
}

static void test_audio_wav_float_exact(void **state) {
    fixture *f = *state;
    char path[128];
    path_in(f, "sine.wav", path, sizeof path);
    cz_audio a = make_sine(440.0, -6.0, 1.0), b;
    a.samples[0] = 1.75f; // float WAV keeps overs
    cz_err err = {{0}};
    assert_int_equal(cz_audio_write(path, &a, CZ_AUDIO_WAV_FLOAT, &err), 0);
    assert_int_equal(cz_audio_read(path, &b, &err), 0);
    assert_true(same_samples(&a, &b));
    cz_audio_free(&a);
    cz_audio_free(&b);
    unlink(path);
}

/* An over-full sample must come back as full scale, not wrapped negative. */
static void test_audio_wav24_clips(void **state) {
    fixture *f = *state;
    char path[128];
    path_in(f, "overs.wav", path, sizeof path);
    float s[8] = {1.5f, -1.5f, 0.5f, -0.5f, 2.0f, -2.0f, 0.0f, 0.0f};
    cz_audio a = {.samples = s, .frames = 4, .channels = 2, .sample_rate = RATE}, b;
    cz_err err = {{0}};
    assert_int_equal(cz_audio_write(path, &a, CZ_AUDIO_WAV_24, &err), 0);
    assert_int_equal(cz_audio_read(path, &b, &err), 0);
    assert_int_equal(b.frames, 4);
    assert_true(b.samples[0] > 0.999f && b.samples[4] > 0.999f);
    assert_true(b.samples[1] < -0.999f && b.samples[5] < -0.999f);
    assert_true(fabsf(b.samples[2] - 0.5f) < 1e-6f);
    cz_audio_free(&b);
    unlink(path);
}

static void test_audio_read_missing(void **state) {
    (void)state;
    cz_audio a;
    cz_err err = {{0}};
    assert_int_equal(cz_audio_read("/nonexistent/cz.wav", &a, &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/cz.wav"));
    assert_null(a.samples);
}

/* ---------------------------------------------------------------- master */

static void test_master_rejects_silence(void **state) {
    (void)state;
    cz_audio a = {.frames = RATE * 2, .channels = 2, .sample_rate = RATE};
    a.samples = calloc(a.frames * 2, sizeof(float));
    cz_master_target t = {-14.0, -1.0};
    cz_master_report rep;
    cz_err err = {{0}};
    assert_int_equal(cz_master_apply(&a, &t, &rep, &err), -1);
    assert_non_null(strstr(err.msg, "silent"));
    cz_audio_free(&a);
}

static void test_master_sine_gain_only(void **state) {
    (void)state;
    cz_audio a = make_sine(997.0, -30.0, 5.0);
    cz_master_target t = {-14.0, -1.0};
    cz_master_report rep;
    cz_err err = {{0}};
    assert_int_equal(cz_master_apply(&a, &t, &rep, &err), 0);
    assert_true(fabs(rep.gain_db - 16.0) < 0.05);
    assert_true(fabs(rep.output.integrated_lufs - -14.0) < 0.05);
    // No compression or limiting needed; the DC filter's response to the
    // sine's abrupt start lifts the first cycle by about 0.2 dB.
    assert_true(rep.compressor_db == 0.0 && rep.limiter_db == 0.0);
    assert_true(rep.output.true_peak_dbtp > -14.0 && rep.output.true_peak_dbtp < -13.6);
    cz_audio_free(&a);
}

/* A quiet tone with loud clicks: reaching -14 LUFS needs the peak guard. */
static void test_master_limits_peaks(void **state) {
    (void)state;
    cz_audio a = make_sine(220.0, -30.0, 6.0);
    for (size_t i = 0; i < a.frames; i += RATE / 2)
        a.samples[2 * i] = a.samples[2 * i + 1] = 0.9f;
    cz_master_target t = {-14.0, -1.0};
    cz_master_report rep;
    cz_err err = {{0}};
    assert_int_equal(cz_master_apply(&a, &t, &rep, &err), 0);
    assert_true(rep.input.true_peak_dbtp > -1.5);
    assert_true(fabs(rep.output.integrated_lufs - -14.0) <= 0.5);
    assert_true(rep.output.true_peak_dbtp <= -1.0);
    cz_loudness check;
    assert_int_equal(cz_loudness_measure(&a, &check, &err), 0); // report matches the samples
    assert_true(fabs(check.integrated_lufs - rep.output.integrated_lufs) < 1e-9);
    cz_audio_free(&a);
}

/* A target the ceiling does not allow: the ceiling wins, the report tells. */
static void test_master_prefers_ceiling(void **state) {
    fixture *f = *state;
    cz_audio a = render(f, 6.0, 21);
    cz_master_target t = {-5.0, -10.0};
    cz_master_report rep;
    cz_err err = {{0}};
    assert_int_equal(cz_master_apply(&a, &t, &rep, &err), 0);
    assert_true(rep.output.true_peak_dbtp <= -10.0);
    assert_true(rep.output.integrated_lufs < -5.5);
    cz_loudness check;
    assert_int_equal(cz_loudness_measure(&a, &check, &err), 0);
    assert_true(fabs(check.integrated_lufs - rep.output.integrated_lufs) < 1e-9);
    assert_true(fabs(check.true_peak_dbtp - rep.output.true_peak_dbtp) < 1e-9);
    cz_audio_free(&a);
}

static void test_master_rendered_piece(void **state) {
    fixture *f = *state;
    cz_audio a = render(f, 10.0, 7);
    assert_int_equal(a.frames, 10 * RATE);
    cz_master_target t = {-14.0, -1.0};
    cz_master_report rep;
    cz_err err = {{0}};
    assert_int_equal(cz_master_apply(&a, &t, &rep, &err), 0);
    assert_true(rep.input.sample_peak_dbfs < -3.0); // the render leaves headroom
    assert_true(fabs(rep.output.integrated_lufs - -14.0) <= 0.5);
    assert_true(rep.output.true_peak_dbtp <= -1.0);
    cz_audio_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loudness_sine_997hz),
        cmocka_unit_test(test_loudness_silence),
        cmocka_unit_test(test_true_peak_matches_whole_signal),
        cmocka_unit_test(test_true_peak_of_noise),
        cmocka_unit_test(test_audio_flac_roundtrip),
        cmocka_unit_test(test_audio_wav_float_exact),
        cmocka_unit_test(test_audio_wav24_clips),
        cmocka_unit_test(test_audio_read_missing),
        cmocka_unit_test(test_master_rejects_silence),
        cmocka_unit_test(test_master_sine_gain_only),
        cmocka_unit_test(test_master_limits_peaks),
        cmocka_unit_test(test_master_prefers_ceiling),
        cmocka_unit_test(test_master_rendered_piece),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
