/* Synthesis (workers/composer/render.c): exact lengths, determinism whatever was
 * rendered before, progress and cancellation, stems that sum to the mix, a
 * mix that does not depend on whether stems are kept, and clear errors. The
 * SoundFont comes from CADENZA_SOUNDFONT or the Debian fluid-soundfont-gm
 * path and is loaded once for the group. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/music/prompt.h"
#include "workers/composer/compose.h"
#include "workers/composer/render.h"

#define RATE 48000u
#define DEFAULT_SOUNDFONT "/usr/share/sounds/sf2/FluidR3_GM.sf2"

static int group_setup(void **state) {
    const char *sf = getenv("CADENZA_SOUNDFONT");
    cz_err err = {{0}};
    cz_renderer *r = cz_render_open(sf && *sf ? sf : DEFAULT_SOUNDFONT, RATE, &err);
    if (!r) {
        fprintf(stderr, "test_render: %s\n", err.msg);
        return -1;
    }
    *state = r;
    return 0;
}

static int group_teardown(void **state) {
    cz_render_close(*state);
    return 0;
}

static cz_audio render(cz_renderer *r, double seconds, uint64_t seed) {
    cz_render_params p = {.duration_s = seconds, .seed = seed};
    cz_audio a;
    cz_err err = {{0}};
    if (cz_render_generate(r, &p, NULL, NULL, &a, &err) != 0)
        fail_msg("render failed: %s", err.msg);
    return a;
}

static int same_samples(const cz_audio *a, const cz_audio *b) {
    return a->frames == b->frames && a->channels == b->channels &&
           memcmp(a->samples, b->samples, a->frames * a->channels * sizeof(float)) == 0;
}

static int cancel_after_two(void *user, double fraction) {
    (void)fraction;
    return ++*(int *)user >= 2;
}

/* Same seed, same samples, whatever was rendered (or canceled) in between. */
static void test_render_deterministic(void **state) {
    cz_renderer *r = *state;
    cz_audio a = render(r, 6.0, 1);
    cz_audio odd = render(r, 3.377, 99); // leaves the synth mid-block
    cz_audio b = render(r, 6.0, 2);
    cz_render_params p = {.duration_s = 9.0, .seed = 5};
    cz_audio canceled;
    int calls = 0;
    cz_err err = {{0}};
    assert_int_equal(cz_render_generate(r, &p, cancel_after_two, &calls, &canceled, &err), 1);
    cz_audio c = render(r, 6.0, 1);
    assert_true(same_samples(&a, &c));
    assert_int_equal(a.frames, b.frames);
    assert_false(same_samples(&a, &b));
    cz_audio_free(&a);
    cz_audio_free(&b);
    cz_audio_free(&c);
    cz_audio_free(&odd);
}

static void test_render_duration_exact(void **state) {
    cz_renderer *r = *state;
    const double durations[] = {1.0, 2.345, 10.0, 33.3333};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        cz_audio a = render(r, durations[i], 3 + i);
        assert_int_equal(a.frames, (size_t)llround(durations[i] * RATE));
        assert_int_equal(a.channels, 2);
        assert_int_equal(a.sample_rate, RATE);
        assert_true(a.samples[2 * a.frames - 1] == 0.0f); // faded out, not cut off
        float peak = 0;
        for (size_t k = 0; k < 2 * a.frames; k++)
            peak = fmaxf(peak, fabsf(a.samples[k]));
        assert_true(peak > 0.01f && peak < 1.0f); // music, with headroom
        cz_audio_free(&a);
    }
}

typedef struct progress_log {
    int calls;
    double last;
} progress_log;

static int log_progress(void *user, double fraction) {
    progress_log *l = user;
    l->calls++;
    l->last = fraction;
    return 0;
}

static void test_render_progress_and_cancel(void **state) {
    cz_renderer *r = *state;
    cz_render_params p = {.duration_s = 12.5, .seed = 4};
    progress_log log = {0};
    cz_audio a;
    cz_err err = {{0}};
    assert_int_equal(cz_render_generate(r, &p, log_progress, &log, &a, &err), 0);
    assert_true(log.calls >= 12); /* once per second of audio */
    assert_true(log.last == 1.0);
    cz_audio_free(&a);

    int calls = 0;
    assert_int_equal(cz_render_generate(r, &p, cancel_after_two, &calls, &a, &err), 1);
    assert_int_equal(calls, 2);
    assert_null(a.samples);
}

static void test_render_keys_and_moods(void **state) {
    cz_renderer *r = *state;
    const char *keys[] = {"F#m", "Eb major", "a minor", "C#", "Bb min"};
    cz_audio a, b;
    cz_err err = {{0}};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        cz_render_params p = {.duration_s = 3.0, .key = keys[i], .mood = "sad", .seed = 9};
        if (cz_render_generate(r, &p, NULL, NULL, &a, &err) != 0)
            fail_msg("key %s: %s", keys[i], err.msg);
        cz_audio_free(&a);
    }
    cz_render_params p = {.duration_s = 4.0, .key = "C major", .genre = "lofi", .seed = 9};
    assert_int_equal(cz_render_generate(r, &p, NULL, NULL, &a, &err), 0);
    p.key = "F#m";
    assert_int_equal(cz_render_generate(r, &p, NULL, NULL, &b, &err), 0);
    assert_false(same_samples(&a, &b));
    cz_audio_free(&a);
    cz_audio_free(&b);

    p.key = "H minor";
    assert_int_equal(cz_render_generate(r, &p, NULL, NULL, &a, &err), -1);
    assert_non_null(strstr(err.msg, "H minor"));
    p.key = NULL;
    p.duration_s = 0.5;
    assert_int_equal(cz_render_generate(r, &p, NULL, NULL, &a, &err), -1);
}

/* A sink that keeps the mix and every stem. */
typedef struct capture {
    float *mix, *stem[CZ_RENDER_STEMS];
    bool got[CZ_RENDER_STEMS];
    size_t frames, cap;
} capture;

static int capture_block(void *user, const float *const stems[CZ_RENDER_STEMS], const float *mix,
                         size_t frames, cz_err *err) {
    (void)err;
    capture *c = user;
    assert_true(c->frames + frames <= c->cap);
    memcpy(c->mix + 2 * c->frames, mix, 2 * frames * sizeof(float));
    for (int g = 0; g < CZ_RENDER_STEMS; g++)
        if (stems[g]) {
            c->got[g] = true;
            memcpy(c->stem[g] + 2 * c->frames, stems[g], 2 * frames * sizeof(float));
        }
    c->frames += frames;
    return 0;
}

static void capture_free(capture *c) {
    free(c->mix);
    for (int g = 0; g < CZ_RENDER_STEMS; g++)
        free(c->stem[g]);
}

static void compose(const char *prompt, double seconds, uint64_t seed, cz_score *out) {
    cz_prompt_fields f = {.prompt = prompt, .n_instruments = -1};
    cz_controls c;
    cz_err err = {{0}};
    assert_int_equal(cz_prompt_controls(&f, &c, NULL, &err), 0);
    if (cz_compose(&c, seconds, seed, out, NULL, &err) != 0)
        fail_msg("compose: %s", err.msg);
}

/* Each group is a stem, and so is the reverb return; the stems add up to
 * the mix (the same additions in the same order), and every group that has
 * notes sounds. */
static void test_render_stems_sum_to_mix(void **state) {
    cz_renderer *r = *state;
    cz_score s;
    compose("lofi hip hop with rhodes, bass, pad, flute and drums, 84 bpm", 8.0, 3, &s);
    capture c = {.cap = 8 * RATE};
    c.mix = calloc(2 * c.cap, sizeof(float));
    for (int g = 0; g < CZ_RENDER_STEMS; g++)
        c.stem[g] = calloc(2 * c.cap, sizeof(float));
    cz_err err = {{0}};
    assert_int_equal(cz_render_score(r, &s, NULL, NULL, capture_block, &c, &err), 0);
    assert_int_equal(c.frames, c.cap);
    assert_true(c.got[CZ_RENDER_REVERB]);
    for (int g = 0; g < CZ_RENDER_STEMS; g++) {
        assert_true(c.got[g] == cz_render_stem_sounds(&s, g));
        if (!c.got[g])
            continue;
        double energy = 0;
        for (size_t k = 0; k < 2 * c.frames; k++)
            energy += (double)c.stem[g][k] * c.stem[g][k];
        if (!(energy > 1e-3))
            fail_msg("stem %s is silent", cz_render_stem_name(g));
    }
    for (size_t k = 0; k < 2 * c.frames; k++) {
        float sum = 0;
        for (int g = 0; g < CZ_RENDER_STEMS; g++)
            if (c.got[g])
                sum += c.stem[g][k];
        assert_true(sum == c.mix[k]);
    }
    capture_free(&c);
    cz_score_free(&s);
}

static void test_render_errors(void **state) {
    cz_err err = {{0}};
    assert_null(cz_render_open("/nonexistent/gm.sf2", RATE, &err));
    assert_non_null(strstr(err.msg, "/nonexistent/gm.sf2"));
    assert_null(cz_render_open(DEFAULT_SOUNDFONT, 8000, &err));
    assert_non_null(strstr(err.msg, "8000"));
    cz_score empty = {0};
    assert_int_equal(cz_render_score(*state, &empty, NULL, NULL, capture_block, NULL, &err), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_deterministic),
        cmocka_unit_test(test_render_duration_exact),
        cmocka_unit_test(test_render_progress_and_cancel),
        cmocka_unit_test(test_render_keys_and_moods),
        cmocka_unit_test(test_render_stems_sum_to_mix),
        cmocka_unit_test(test_render_errors),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
