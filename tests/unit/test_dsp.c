/* Unit tests for the post chain's signal processing (workers/master/dsp.c), its
 * QA scan (workers/master/qa.c) and presets (workers/master/master.c). Reference figures
 * come from libebur128, which the chain's fast meter must agree with. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "workers/master/dsp.h"
#include "workers/master/master.h"
#include "workers/master/qa.h"

#define RATE 48000u
#define PI 3.14159265358979323846

static cz_audio stereo(double seconds) {
    cz_audio a = {.frames = (size_t)(seconds * RATE), .channels = 2, .sample_rate = RATE};
    a.samples = calloc(a.frames * 2, sizeof(float));
    assert_non_null(a.samples);
    return a;
}

/* A sine at a quarter of the sample rate, phased so every sample falls 45
 * degrees off the crests: samples peak at amp * cos(pi/4), the waveform at amp. */
static void test_true_peak_between_samples(void **state) {
    (void)state;
    cz_audio a = stereo(1.0);
    for (size_t i = 0; i < a.frames; i++)
        a.samples[2 * i] = a.samples[2 * i + 1] = (float)(0.5 * sin(PI / 2 * i + PI / 4));
    float *tp = malloc(a.frames * sizeof *tp);
    cz_dsp_true_peaks(&a, tp);
    float m = 0;
    for (size_t i = 100; i < a.frames - 100; i++)
        m = tp[i] > m ? tp[i] : m;
    assert_true(fabs(m - 0.5) < 0.01);                      // found the crest
    assert_true(fabs(a.samples[2 * 1000]) < 0.5 * 0.7072f); // the samples miss it
    free(tp);
    cz_audio_free(&a);
}

static void test_highpass_removes_dc(void **state) {
    (void)state;
    cz_audio a = stereo(3.0);
    for (size_t i = 0; i < a.frames * 2; i++)
        a.samples[i] = 0.3f + 0.1f * (float)sin(2 * PI * 1000 * (i / 2) / RATE);
    cz_dsp_highpass(&a, 20.0);
    cz_qa_stats s;
    cz_audio tail = a;
    tail.samples += RATE * 2; // after the filter settles
    tail.frames -= RATE;
    cz_qa_scan(&tail, &s);
    assert_true(fabs(s.dc_offset) < 1e-3);
    cz_audio_free(&a);
}

static void test_fast_meter_agrees_with_libebur128(void **state) {
    (void)state;
    cz_audio a = stereo(8.0);
    for (size_t i = 0; i < a.frames; i++) {
        double t = (double)i / RATE, env = 0.3 + 0.7 * fabs(sin(2 * PI * 0.25 * t));
        a.samples[2 * i] = (float)(0.2 * env * sin(2 * PI * 220 * t));
        a.samples[2 * i + 1] = (float)(0.1 * env * sin(2 * PI * 3000 * t));
    }
    float *e = malloc(a.frames * sizeof *e);
    cz_dsp_k_energy(&a, e);
    cz_loudness ref;
    cz_err err;
    assert_int_equal(cz_loudness_measure(&a, &ref, &err), 0);
    double fast = cz_dsp_loudness(e, NULL, a.frames, RATE, 1.0);
    assert_true(fabs(fast - ref.integrated_lufs) < 0.02);
    double plus6 = cz_dsp_loudness(e, NULL, a.frames, RATE, 2.0);
    assert_true(fabs(plus6 - fast - 6.0206) < 1e-6);
    free(e);
    cz_audio_free(&a);
}

/* The limiter's promise: no frame's scaled peak ends above the threshold,
 * and frames far from any peak are left alone. */
static void test_limiter_holds_threshold(void **state) {
    (void)state;
    size_t n = RATE * 2;
    float *tp = malloc(n * sizeof *tp), *g = malloc(n * sizeof *g);
    for (size_t i = 0; i < n; i++)
        tp[i] = 0.3f;
    tp[RATE / 2] = 0.9f;
    tp[RATE] = 1.2f;
    tp[RATE + 5] = 0.95f;
    double gain = 1.5, thr = 0.8;
    double worst = cz_dsp_limiter_gain(tp, n, RATE, gain, thr, 0.0015, 0.1, g);
    assert_true(worst > 0);
    for (size_t i = 0; i < n; i++)
        assert_true(tp[i] * gain * g[i] <= thr * (1 + 1e-6));
    assert_true(g[100] == 1.0f);    // before any peak: untouched
    assert_true(g[n - 1] > 0.999f); // a second after the last one: released
    assert_true(fabs(worst - 20 * log10(1.2 * 1.5 / 0.8)) < 1e-3);
    free(tp);
    free(g);
}

static void test_compressor_is_gentle(void **state) {
    (void)state;
    cz_audio a = stereo(4.0);
    for (size_t i = 0; i < a.frames; i++) {
        float v = (float)((i < a.frames / 2 ? 0.05 : 0.8) * sin(2 * PI * 440 * i / RATE));
        a.samples[2 * i] = a.samples[2 * i + 1] = v;
    }
    cz_comp_params p = {-20, 2, 6, 10, 200, 6};
    float *c = malloc(a.frames * sizeof *c);
    double worst = cz_dsp_compressor_gain(&a, &p, c);
    assert_true(c[RATE] == 1.0f);             // quiet half untouched
    assert_true(worst > 5.9 && worst <= 6.0); // loud half capped at 6 dB
    assert_true(c[a.frames - 1] < 0.55f);
    free(c);
    cz_audio_free(&a);
}

static void test_presets(void **state) {
    (void)state;
    const cz_master_preset *p = cz_master_preset_find("broadcast");
    assert_non_null(p);
    assert_true(p->target_lufs == -23.0 && p->true_peak_dbtp == -1.0);
    assert_true(cz_master_preset_find("podcast")->target_lufs == -16.0);
    assert_true(cz_master_preset_find("streaming")->target_lufs == -14.0);
    assert_null(cz_master_preset_find("loud"));
    assert_null(cz_master_preset_find(NULL));
}

static void test_qa_scan(void **state) {
    (void)state;
    cz_audio a = stereo(2.0);
    for (size_t i = 0; i < a.frames / 2; i++) { // one second of clipped square, then silence
        float v = (i / 24) % 2 ? 1.0f : -1.0f;
        a.samples[2 * i] = v;
        a.samples[2 * i + 1] = -v;
    }
    cz_qa_stats s;
    cz_qa_scan(&a, &s);
    assert_true(s.clipped_samples > RATE * 2 * 9 / 10);
    assert_true(fabs(s.silence_ratio - 0.5) < 0.05);
    assert_true(s.correlation < -0.99);
    cz_audio_free(&a);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_true_peak_between_samples),
        cmocka_unit_test(test_highpass_removes_dc),
        cmocka_unit_test(test_fast_meter_agrees_with_libebur128),
        cmocka_unit_test(test_limiter_holds_threshold),
        cmocka_unit_test(test_compressor_is_gentle),
        cmocka_unit_test(test_presets),
        cmocka_unit_test(test_qa_scan),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
