/* Canonical JSON (common/json.c) and event parsing (common/event.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/event.h"
#include "common/json.h"
#include "common/mem.h"

static void expect_canonical(const char *in, const char *want) {
    cJSON *v = cJSON_Parse(in);
    assert_non_null(v);
    char *got = cz_json_canonical(v);
    assert_string_equal(got, want);
    free(got);
    cJSON_Delete(v);
}

static void test_sorts_keys_recursively(void **state) {
    (void)state;
    expect_canonical("{\"b\": 1, \"a\": {\"z\": true, \"m\": null}, \"c\": [3, {\"y\":1,\"x\":2}]}",
                     "{\"a\":{\"m\":null,\"z\":true},\"b\":1,\"c\":[3,{\"x\":2,\"y\":1}]}");
}

static void test_same_meaning_same_bytes(void **state) {
    (void)state;
    cJSON *a = cJSON_Parse("{\"prompt\":\"x\",\"seed\":7,\"duration_s\":30.0}");
    cJSON *b = cJSON_Parse("  {\"duration_s\": 3e1, \"seed\": 7, \"prompt\": \"x\"}  ");
    char *ca = cz_json_canonical(a), *cb = cz_json_canonical(b);
    assert_string_equal(ca, cb);
    free(ca);
    free(cb);
    cJSON_Delete(a);
    cJSON_Delete(b);
}

static void test_numbers(void **state) {
    (void)state;
    expect_canonical("[0, -0, 1.5, 9007199254740991, 0.1, -14, 1e-7]",
                     "[0,-0,1.5,9007199254740991,0.1,-14,1e-07]");
}

/* cz_json_print keeps the members' order, and writes a 16-digit seed as it
 * is (cJSON_PrintUnformatted gives 6211499860674060 for it). */
static void test_print_keeps_order_and_exact_integers(void **state) {
    (void)state;
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "z", 6211499860674059.0);
    cJSON_AddStringToObject(o, "a", "x");
    cJSON_AddNumberToObject(o, "m", 0.25);
    char *got = cz_json_print(o);
    assert_string_equal(got, "{\"z\":6211499860674059,\"a\":\"x\",\"m\":0.25}");
    free(got);
    cJSON_Delete(o);
    assert_null(cz_json_print(NULL));
}

static void test_string_escapes(void **state) {
    (void)state;
    expect_canonical("[\"a\\\"b\\\\c\\n\\t\\u0001\", \"caf\\u00e9\"]",
                     "[\"a\\\"b\\\\c\\n\\t\\u0001\",\"caf\xc3\xa9\"]");
}

static void test_event_parse(void **state) {
    (void)state;
    const char *good = "{\"schema\":1,\"type\":\"post_done\",\"attempt\":2,"
                       "\"job_id\":\"01890a5d-ac96-774b-b9aa-0123456789ab\","
                       "\"compute_ms\":812,\"qa\":{\"integrated_lufs\":-14},"
                       "\"artifacts\":[{\"kind\":\"master\"}],\"future_field\":1}";
    cz_event ev;
    cz_err err;
    assert_int_equal(cz_event_parse(good, strlen(good), &ev, &err), 0);
    assert_int_equal(ev.type, CZ_EV_POST_DONE);
    assert_int_equal(ev.attempt, 2);
    assert_int_equal(ev.compute_ms, 812);
    assert_non_null(ev.qa);
    assert_non_null(ev.artifacts);
    cz_event_free(&ev);

    const char *bad[] = {
        "not json",
        "{\"schema\":2,\"type\":\"started\",\"attempt\":1,"
        "\"job_id\":\"01890a5d-ac96-774b-b9aa-0123456789ab\"}",
        "{\"schema\":1,\"type\":\"exploded\",\"attempt\":1,"
        "\"job_id\":\"01890a5d-ac96-774b-b9aa-0123456789ab\"}",
        "{\"schema\":1,\"type\":\"started\",\"attempt\":0,"
        "\"job_id\":\"01890a5d-ac96-774b-b9aa-0123456789ab\"}",
        "{\"schema\":1,\"type\":\"started\",\"attempt\":1,\"job_id\":\"'; DROP TABLE jobs\"}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        assert_int_equal(cz_event_parse(bad[i], strlen(bad[i]), &ev, &err), -1);
}

int main(void) {
    cz_mem_init(); /* cJSON allocates as the binaries do */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sorts_keys_recursively),
        cmocka_unit_test(test_same_meaning_same_bytes),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_string_escapes),
        cmocka_unit_test(test_print_keeps_order_and_exact_integers),
        cmocka_unit_test(test_event_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
