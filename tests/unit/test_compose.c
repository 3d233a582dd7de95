/* The composer (workers/composer/compose.c, parts.c, style.c): every token of the
 * vocabulary has its style, mood or instrument; the form fills the duration
 * exactly; a given tempo and key are kept; asked-for instruments play in
 * their groups; solo and "no drums" hold; the same seed gives the same score
 * and another seed another one; notes stay in range and in the piece. */
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

#include "common/json.h"
#include "common/mem.h"
#include "common/music/prompt.h"
#include "workers/composer/compose.h"
#include "workers/composer/style.h"

static cz_controls controls_of(const char *prompt) {
    cz_prompt_fields f = {.prompt = prompt, .n_instruments = -1};
    cz_controls c;
    cz_err err = {{0}};
    if (cz_prompt_controls(&f, &c, NULL, &err) != 0)
        fail_msg("%s: %s", prompt, err.msg);
    return c;
}

static cJSON *compose(const char *prompt, double seconds, uint64_t seed, cz_score *s) {
    cz_controls c = controls_of(prompt);
    cJSON *plan = NULL;
    cz_err err = {{0}};
    if (cz_compose(&c, seconds, seed, s, &plan, &err) != 0)
        fail_msg("%s: %s", prompt, err.msg);
    return plan;
}

static bool plan_has_group(const cJSON *plan, const char *group) {
    const cJSON *groups = cJSON_GetObjectItem(plan, "groups");
    for (const cJSON *g = groups ? groups->child : NULL; g; g = g->next)
        if (!strcmp(g->valuestring, group))
            return true;
    return false;
}

static bool plan_has_instrument(const cJSON *plan, const char *group, const char *instrument) {
    const cJSON *list = cJSON_GetObjectItem(plan, "instruments");
    for (const cJSON *i = list ? list->child : NULL; i; i = i->next)
        if (!strcmp(cz_json_str(i, "group"), group) &&
            !strcmp(cz_json_str(i, "instrument"), instrument))
            return true;
    return false;
}

/* Every genre, mood and instrument the prompt reader knows, the composer
 * plays; every style parses its progressions. */
static void test_vocabulary_is_playable(void **state) {
    (void)state;
    size_t n;
    const cz_vocab_entry *v = cz_prompt_vocabulary(&n);
    for (size_t i = 0; i < n; i++) {
        if (v[i].kind == CZ_VOCAB_GENRE && !strcmp(cz_style_find(v[i].token)->genre, ""))
            fail_msg("genre %s has no style", v[i].token);
        if (v[i].kind == CZ_VOCAB_MOOD && !cz_mood_find(v[i].token))
            fail_msg("mood %s has no shade", v[i].token);
        if (v[i].kind == CZ_VOCAB_INSTRUMENT && !cz_instrument_find(v[i].token))
            fail_msg("instrument %s is not in the composer's table", v[i].token);
    }
    size_t ns;
    const cz_style *st = cz_styles(&ns);
    for (size_t i = 0; i < ns; i++) {
        for (int mode = 0; mode < 2; mode++) {
            cz_controls c = controls_of(st[i].genre);
            c.mode = mode;
            cz_score s;
            cz_err err = {{0}};
            if (cz_compose(&c, 40, 1 + i, &s, NULL, &err) != 0)
                fail_msg("style %s: %s", st[i].genre, err.msg);
            assert_true(s.n > 0);
            cz_score_free(&s);
        }
    }
}

/* Whole bars plus a tail of at least two seconds (half of a short piece)
 * and under one more bar fill the duration exactly. */
static void test_form_fits_duration(void **state) {
    (void)state;
    const double durations[] = {1, 3.3, 7, 20, 45, 61.7, 180, 600};
    const char *prompts[] = {"lofi 82 bpm", "blues", "techno 131 bpm", "ambient", "jazz, fast"};
    for (size_t p = 0; p < sizeof prompts / sizeof prompts[0]; p++)
        for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
            cz_score s;
            cJSON *plan = compose(prompts[p], durations[i], 7 + i, &s);
            double bpm = cz_json_num(plan, "tempo_bpm", 0), bar = 240.0 / bpm;
            double bars = cz_json_num(plan, "bars", -1), tail = cz_json_num(plan, "tail_s", -1);
            double min_tail = durations[i] < 4 ? durations[i] / 2 : 2.0;
            assert_true(fabs(bars * bar + tail - durations[i]) < 0.002);
            assert_true(tail >= min_tail - 0.002 && tail < min_tail + bar + 0.002);
            int sum = 0;
            const cJSON *form = cJSON_GetObjectItem(plan, "form");
            for (const cJSON *sec = form->child; sec; sec = sec->next)
                sum += (int)cz_json_num(sec, "bars", 0);
            assert_int_equal(sum, (int)bars);
            assert_true(s.duration_s == durations[i]);
            for (size_t k = 0; k < s.n; k++)
                assert_true(s.notes[k].tick + s.notes[k].len <= s.end_tick);
            cJSON_Delete(plan);
            cz_score_free(&s);
        }
}

static void test_tempo_and_key_are_kept(void **state) {
    (void)state;
    cz_score s;
    cJSON *plan = compose("house in F# minor, 123.5 bpm", 60, 3, &s);
    assert_true(cz_json_num(plan, "tempo_bpm", 0) == 123.5);
    assert_string_equal(cz_json_str(plan, "key"), "F# minor");
    assert_true(s.bpm == 123.5);
    // Most pitched notes belong to F# natural minor (chords add colour tones).
    static const int scale[7] = {6, 8, 9, 11, 1, 2, 4};
    size_t in = 0, pitched = 0;
    for (size_t k = 0; k < s.n; k++) {
        if (s.notes[k].chan == 9)
            continue;
        pitched++;
        for (int d = 0; d < 7; d++)
            in += s.notes[k].key % 12 == scale[d];
    }
    assert_true(pitched > 100 && in >= pitched * 85 / 100);
    cJSON_Delete(plan);
    cz_score_free(&s);

    // A chosen tempo stays within the style's range, nudged at most 6%.
    plan = compose("lofi", 45, 11, &s);
    double bpm = cz_json_num(plan, "tempo_bpm", 0);
    assert_true(bpm >= 70 * 0.94 && bpm <= 90 * 1.06);
    cJSON_Delete(plan);
    cz_score_free(&s);
}

static void test_instruments_land_in_groups(void **state) {
    (void)state;
    cz_score s;
    cJSON *plan = compose("ambient with sax, timpani and upright bass", 40, 5, &s);
    assert_true(plan_has_instrument(plan, "melody", "sax"));
    assert_true(plan_has_instrument(plan, "drums", "timpani"));
    assert_true(plan_has_instrument(plan, "bass", "upright-bass"));
    assert_true(plan_has_group(plan, "melody") && plan_has_group(plan, "drums") &&
                plan_has_group(plan, "bass"));
    cJSON_Delete(plan);
    cz_score_free(&s);

    plan = compose("solo piano", 30, 5, &s);
    assert_true(plan_has_group(plan, "harmony") && plan_has_group(plan, "melody"));
    assert_false(plan_has_group(plan, "drums") || plan_has_group(plan, "bass") ||
                 plan_has_group(plan, "pad"));
    cJSON_Delete(plan);
    cz_score_free(&s);

    plan = compose("rock with no drums", 30, 5, &s);
    assert_false(plan_has_group(plan, "drums"));
    for (size_t k = 0; k < s.n; k++)
        assert_true(s.notes[k].chan != 9);
    cJSON_Delete(plan);
    cz_score_free(&s);
}

static bool same_score(const cz_score *a, const cz_score *b) {
    return a->n == b->n && a->bpm == b->bpm &&
           memcmp(a->notes, b->notes, a->n * sizeof *a->notes) == 0 &&
           memcmp(a->parts, b->parts, sizeof a->parts) == 0;
}

static void test_seeds(void **state) {
    (void)state;
    cz_score a, b, c;
    cJSON *pa = compose("jazzy hip hop with vibes", 50, 42, &a);
    cJSON *pb = compose("jazzy hip hop with vibes", 50, 42, &b);
    cJSON *pc = compose("jazzy hip hop with vibes", 50, 43, &c);
    assert_true(same_score(&a, &b));
    assert_false(same_score(&a, &c));
    char *ja = cJSON_PrintUnformatted(pa), *jb = cJSON_PrintUnformatted(pb);
    assert_string_equal(ja, jb);
    assert_string_equal(cz_json_str(pa, "style"), "hiphop");
    assert_string_equal(cz_json_str(pa, "flavor"), "jazz");
    free(ja);
    free(jb);
    cJSON_Delete(pa);
    cJSON_Delete(pb);
    cJSON_Delete(pc);
    cz_score_free(&a);
    cz_score_free(&b);
    cz_score_free(&c);
}

/* The melody is made of repeated motifs: its rhythm recurs bar after bar. */
static void test_melody_repeats_its_motif(void **state) {
    (void)state;
    cz_score s;
    cJSON *plan = compose("pop with flute, 120 bpm", 60, 9, &s);
    const uint32_t bar = 4 * CZ_SCORE_PPQ;
    // Onset patterns of each bar of the tune, at sixteenth resolution.
    uint32_t onsets[64] = {0};
    for (size_t k = 0; k < s.n; k++)
        if (s.notes[k].chan == 3) {
            uint32_t b = s.notes[k].tick / bar, step = (s.notes[k].tick % bar + 60) / 120 % 16;
            if (b < 64)
                onsets[b] |= 1u << step;
        }
    int repeats = 0, bars = 0;
    for (int b = 0; b < 64; b++)
        for (int c = b + 1; c < 64 && onsets[b]; c++)
            if (onsets[c] == onsets[b]) {
                repeats++;
                break;
            }
    for (int b = 0; b < 64; b++)
        bars += onsets[b] != 0;
    assert_true(bars >= 12);
    assert_true(repeats >= bars / 3);
    cJSON_Delete(plan);
    cz_score_free(&s);
}

static void test_refuses_bad_input(void **state) {
    (void)state;
    cz_controls c = controls_of("lofi");
    cz_score s;
    cz_err err = {{0}};
    assert_int_equal(cz_compose(&c, 0.5, 1, &s, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "duration"));
    assert_int_equal(cz_compose(&c, 601, 1, &s, NULL, &err), -1);
    c.tempo_bpm = 500;
    assert_int_equal(cz_compose(&c, 10, 1, &s, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "tempo"));
}

int main(void) {
    cz_mem_init(); /* cJSON allocates as the binaries do */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vocabulary_is_playable),
        cmocka_unit_test(test_form_fits_duration),
        cmocka_unit_test(test_tempo_and_key_are_kept),
        cmocka_unit_test(test_instruments_land_in_groups),
        cmocka_unit_test(test_seeds),
        cmocka_unit_test(test_melody_repeats_its_motif),
        cmocka_unit_test(test_refuses_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
