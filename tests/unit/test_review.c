/* The review rules (common/review.c) and the curves a curator's page draws
 * from the QA report (workers/master/qa.c: cz_qa_curves). */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/json.h"
#include "common/mem.h"
#include "common/review.h"
#include "workers/master/qa.h"

static const char *rule_at(const cJSON *reasons, int i) {
    const cJSON *r = cJSON_GetArrayItem(reasons, i);
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "rule");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static const char *detail_at(const cJSON *reasons, int i) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(reasons, i), "detail");
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A QA report's verdicts and flags, as qa.c writes them. */
static cJSON *report(void) {
    cJSON *qa = cJSON_CreateObject();
    cJSON_AddObjectToObject(qa, "verdicts");
    cJSON_AddArrayToObject(qa, "flags");
    cJSON_AddStringToObject(qa, "verdict", "pass");
    return qa;
}

static void test_nothing_to_review(void **state) {
    (void)state;
    cJSON *qa = report();
    cz_qa_rule(qa, "loudness", true, "unused");
    cz_qa_rule(qa, "catalog", true, "unused");
    cJSON *r = cz_review_reasons(qa, "auto", false, "acme");
    assert_int_equal(cJSON_GetArraySize(r), 0);
    cJSON_Delete(r);
    r = cz_review_reasons(NULL, NULL, false, NULL); // no report at all
    assert_int_equal(cJSON_GetArraySize(r), 0);
    cJSON_Delete(r);
    cJSON_Delete(qa);
}

static void test_failed_rules_keep_their_flags(void **state) {
    (void)state;
    cJSON *qa = report();
    cz_qa_rule(qa, "loudness", true, "unused");
    cz_qa_rule(qa, "silence", false, "80% of the track is silence");
    cz_qa_rule(qa, "dc_offset", true, "unused");
    cz_qa_rule(qa, "catalog", false, "the master matches catalogue track 7");
    cJSON *r = cz_review_reasons(qa, "auto", false, "acme");
    assert_int_equal(cJSON_GetArraySize(r), 2);
    assert_string_equal(rule_at(r, 0), "silence");
    assert_string_equal(detail_at(r, 0), "80% of the track is silence");
    assert_string_equal(rule_at(r, 1), "catalog");
    assert_string_equal(detail_at(r, 1), "the master matches catalogue track 7");
    cJSON_Delete(r);
    cJSON_Delete(qa);
}

static void test_request_and_tenant_policy(void **state) {
    (void)state;
    cJSON *qa = report();
    cz_qa_rule(qa, "true_peak", false, "over the ceiling");
    cJSON *r = cz_review_reasons(qa, "always", true, "acme");
    assert_int_equal(cJSON_GetArraySize(r), 3);
    assert_string_equal(rule_at(r, 0), "true_peak");
    assert_string_equal(rule_at(r, 1), "requested");
    assert_string_equal(rule_at(r, 2), "tenant_policy");
    assert_non_null(strstr(detail_at(r, 2), "acme"));
    cJSON_Delete(r);
    cJSON_Delete(qa);
    // A failed verdict without its flag still gives a reason.
    qa = cJSON_Parse("{\"verdicts\":{\"silence\":\"fail\"},\"flags\":[]}");
    r = cz_review_reasons(qa, NULL, false, NULL);
    assert_int_equal(cJSON_GetArraySize(r), 1);
    assert_string_equal(detail_at(r, 0), "the QA rule silence failed");
    cJSON_Delete(r);
    cJSON_Delete(qa);
}

static void test_decision_names(void **state) {
    (void)state;
    for (int d = 0; d < 3; d++)
        assert_int_equal(cz_review_decision_parse(cz_review_decision_name(d)), d);
    assert_int_equal(cz_review_decision_parse("maybe"), -1);
    assert_int_equal(cz_review_decision_parse(NULL), -1);
}

/* A stereo sine at @p amp for @p seconds, then as long again of silence. */
static cz_audio tone_then_silence(double seconds, float amp) {
    cz_audio a = {.channels = 2, .sample_rate = 48000};
    a.frames = (size_t)(2 * seconds * a.sample_rate);
    a.samples = calloc(a.frames * 2, sizeof *a.samples);
    for (size_t i = 0; i < a.frames / 2; i++)
        a.samples[2 * i] = a.samples[2 * i + 1] =
            amp * (float)sin(2 * M_PI * 1000.0 * (double)i / a.sample_rate);
    return a;
}

static void test_curves_of_a_tone(void **state) {
    (void)state;
    cz_audio a = tone_then_silence(4, 0.5f); // 8 s in all
    cJSON *qa = cJSON_CreateObject();
    cz_err err;
    assert_int_equal(cz_qa_curves(&a, qa, &err), 0);

    const cJSON *curve = cJSON_GetObjectItemCaseSensitive(qa, "loudness_curve");
    assert_true(cz_json_num(curve, "hop_s", -1) == 0.4);
    const cJSON *lufs = cJSON_GetObjectItemCaseSensitive(curve, "lufs");
    assert_int_equal(cJSON_GetArraySize(lufs), 20); // 8 s / 0.4 s
    // A full-scale 1 kHz sine in one channel measures -3.01 LUFS (BS.1770);
    // in both channels 0; at half scale (-6.02 dB) about -6.0 LUFS.
    double loud = cJSON_GetArrayItem(lufs, 5)->valuedouble;
    assert_true(fabs(loud - (-6.0)) < 0.2);
    assert_true(cJSON_IsNull(cJSON_GetArrayItem(lufs, 19))); // the silence

    const cJSON *w = cJSON_GetObjectItemCaseSensitive(qa, "waveform");
    assert_int_equal((int)cz_json_num(w, "points", -1), CZ_QA_WAVEFORM_POINTS);
    const cJSON *lo = cJSON_GetObjectItemCaseSensitive(w, "min");
    const cJSON *hi = cJSON_GetObjectItemCaseSensitive(w, "max");
    assert_int_equal(cJSON_GetArraySize(lo), CZ_QA_WAVEFORM_POINTS);
    assert_true(fabs(cJSON_GetArrayItem(hi, 10)->valuedouble - 0.5) < 0.011);
    assert_true(fabs(cJSON_GetArrayItem(lo, 10)->valuedouble + 0.5) < 0.011);
    assert_true(cJSON_GetArrayItem(hi, 299)->valuedouble == 0);
    cJSON_Delete(qa);
    cz_audio_free(&a);
}

static void test_long_tracks_keep_the_curve_short(void **state) {
    (void)state;
    cz_audio a = tone_then_silence(300, 0.1f); // 10 minutes
    cJSON *qa = cJSON_CreateObject();
    cz_err err;
    assert_int_equal(cz_qa_curves(&a, qa, &err), 0);
    const cJSON *curve = cJSON_GetObjectItemCaseSensitive(qa, "loudness_curve");
    assert_true(cz_json_num(curve, "hop_s", -1) == 2);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(curve, "lufs")), 300);
    cJSON_Delete(qa);
    cz_audio_free(&a);
    cz_audio empty = {.channels = 2, .sample_rate = 48000};
    qa = cJSON_CreateObject();
    assert_int_equal(cz_qa_curves(&empty, qa, &err), -1);
    cJSON_Delete(qa);
}

int main(void) {
    cz_mem_init(); /* cJSON allocates as the binaries do */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nothing_to_review),
        cmocka_unit_test(test_failed_rules_keep_their_flags),
        cmocka_unit_test(test_request_and_tenant_policy),
        cmocka_unit_test(test_decision_names),
        cmocka_unit_test(test_curves_of_a_tone),
        cmocka_unit_test(test_long_tracks_keep_the_curve_short),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
