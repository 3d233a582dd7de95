/* Job request validation and canonical form (api/request.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "api/request.h"
#include "common/json.h"
#include "common/mem.h"

static int parse(const char *body, cz_request *r, cz_request_error *e) {
    return cz_request_parse(body, strlen(body), 42, r, e);
}

static void expect_error(const char *body, int status, const char *type, const char *field) {
    cz_request r;
    cz_request_error e;
    assert_int_equal(parse(body, &r, &e), -1);
    assert_int_equal(e.status, status);
    assert_string_equal(e.type, type);
    assert_string_equal(e.field, field);
    assert_true(strlen(e.detail) > 0);
}

static void test_minimal_request_gets_defaults(void **state) {
    (void)state;
    cz_request r;
    cz_request_error e;
    assert_int_equal(parse("{\"prompt\":\"  warm   lo-fi\\n hip hop \"}", &r, &e), 0);
    assert_string_equal(r.json,
                        "{\"controls\":{\"duration_s\":30,\"genre\":\"lofi\",\"moods\":[\"warm\"]},"
                        "\"duration_s\":30,\"ignored\":[],"
                        "\"loudness\":{\"target_lufs\":-14,\"true_peak_dbtp\":-1},"
                        "\"metadata\":{},\"model\":\"composer@1\",\"outputs\":[\"flac\"],"
                        "\"prompt\":\"warm lo-fi hip hop\",\"quality\":\"final\","
                        "\"review\":\"auto\",\"seed\":42,\"stems\":false}");
    assert_string_equal(r.model, "composer@1");
    assert_int_equal(r.seed, 42);
    assert_int_equal(strlen(r.hash), 64);
    cz_request_free(&r);
}

static void test_spelling_does_not_change_the_hash(void **state) {
    (void)state;
    cz_request a, b;
    cz_request_error e;
    assert_int_equal(parse("{\"prompt\":\"jazz trio\",\"seed\":7,\"key\":\"f#m\","
                           "\"outputs\":[\"wav\",\"flac\"],\"loudness\":{\"target_lufs\":-14}}",
                           &a, &e),
                     0);
    assert_int_equal(parse("{\"outputs\":[\"flac\",\"wav\"],\"key\":\"F# minor\",\"seed\":7.0,"
                           "\"prompt\":\" jazz  trio\",\"duration_s\":30}",
                           &b, &e),
                     0);
    assert_string_equal(a.json, b.json);
    assert_string_equal(a.hash, b.hash);
    assert_non_null(strstr(a.json, "\"key\":\"F# minor\""));
    cz_request_free(&a);
    cz_request_free(&b);
}

static void test_malformed_and_shape(void **state) {
    (void)state;
    expect_error("{\"prompt\": ", 400, "malformed-json", "");
    expect_error("", 400, "malformed-json", "");
    expect_error("{\"prompt\":\"a\"} trailing", 400, "malformed-json", "");
    expect_error("[\"prompt\"]", 422, "invalid-body", "");
    expect_error("{}", 422, "missing-field", "prompt");
    expect_error("{\"prompt\":\"a\",\"temperature\":1}", 422, "unknown-field", "temperature");
    expect_error("{\"prompt\":\"a\",\"prompt\":\"b\"}", 422, "invalid-field", "prompt");
}

static void test_field_rules(void **state) {
    (void)state;
    cz_request ok;
    cz_request_error e;
    /* An escaped backslash followed by "u0000" is ordinary text. */
    assert_int_equal(parse("{\"prompt\":\"a\\\\u0000b\"}", &ok, &e), 0);
    assert_string_equal(cz_json_str(ok.canonical, "prompt"), "a\\u0000b");
    cz_request_free(&ok);
    expect_error("{\"prompt\":\"   \"}", 422, "invalid-field", "prompt");
    expect_error("{\"prompt\":5}", 422, "invalid-field", "prompt");
    expect_error("{\"prompt\":\"a\\u0000b\"}", 422, "invalid-field", "");
    expect_error("{\"prompt\":\"\xff\xfe\"}", 422, "invalid-field", "prompt");
    expect_error("{\"prompt\":\"a\",\"duration_s\":0.5}", 422, "invalid-field", "duration_s");
    expect_error("{\"prompt\":\"a\",\"duration_s\":601}", 422, "invalid-field", "duration_s");
    expect_error("{\"prompt\":\"a\",\"duration_s\":\"30\"}", 422, "invalid-field", "duration_s");
    expect_error("{\"prompt\":\"a\",\"tempo_bpm\":400}", 422, "invalid-field", "tempo_bpm");
    expect_error("{\"prompt\":\"a\",\"key\":\"H major\"}", 422, "invalid-field", "key");
    expect_error("{\"prompt\":\"a\",\"seed\":1.5}", 422, "invalid-field", "seed");
    expect_error("{\"prompt\":\"a\",\"seed\":-1}", 422, "invalid-field", "seed");
    /* The model's form only: which models exist is the registry's (test_routing.c). */
    static const char *const bad_models[] = {"Composer",
                                             "neural@",
                                             "@1",
                                             "a@b@c",
                                             "neural@V2",
                                             "9lives",
                                             "neural 1",
                                             "",
                                             "a-name-of-thirty-two-characters-",
                                             "neural@a-version-of-17-ch",
                                             "neural@.1"};
    for (size_t i = 0; i < sizeof bad_models / sizeof *bad_models; i++) {
        char body[128];
        snprintf(body, sizeof body, "{\"prompt\":\"a\",\"model\":\"%s\"}", bad_models[i]);
        expect_error(body, 422, "invalid-field", "model");
    }
    expect_error("{\"prompt\":\"a\",\"model\":7}", 422, "invalid-field", "model");
    expect_error("{\"prompt\":\"a\",\"user\":\"\"}", 422, "invalid-field", "user");
    expect_error("{\"prompt\":\"a\",\"user\":42}", 422, "invalid-field", "user");
    expect_error("{\"prompt\":\"a\",\"user\":\"tab\\there\"}", 422, "invalid-field", "user");
    expect_error("{\"prompt\":\"a\",\"user\":\"bell\\u0007\"}", 422, "invalid-field", "user");
    expect_error("{\"prompt\":\"a\",\"quality\":\"best\"}", 422, "invalid-field", "quality");
    expect_error("{\"prompt\":\"a\",\"outputs\":[]}", 422, "invalid-field", "outputs");
    expect_error("{\"prompt\":\"a\",\"outputs\":[\"flac\",\"flac\"]}", 422, "invalid-field",
                 "outputs");
    expect_error("{\"prompt\":\"a\",\"loudness\":{\"target_lufs\":0}}", 422, "invalid-field",
                 "loudness.target_lufs");
    expect_error("{\"prompt\":\"a\",\"loudness\":{\"gain\":1}}", 422, "unknown-field", "loudness");
    expect_error("{\"prompt\":\"a\",\"stems\":1}", 422, "invalid-field", "stems");
    expect_error("{\"prompt\":\"a\",\"review\":\"never\"}", 422, "invalid-field", "review");
    expect_error("{\"prompt\":\"a\",\"webhook\":{\"url\":\"ftp://x\"}}", 422, "invalid-field",
                 "webhook.url");
    expect_error("{\"prompt\":\"a\",\"webhook\":{\"url\":\"https://x\",\"events\":[\"job.x\"]}}",
                 422, "invalid-field", "webhook.events");
    expect_error("{\"prompt\":\"a\",\"metadata\":[1]}", 422, "invalid-field", "metadata");
    expect_error("{\"prompt\":\"a\",\"instruments\":[\"piano\",7]}", 422, "invalid-field",
                 "instruments[1]");
}

static void test_limits(void **state) {
    (void)state;
    char *big = malloc(CZ_REQUEST_MAX_BODY + 64);
    int n = sprintf(big, "{\"prompt\":\"");
    memset(big + n, 'a', 2001);
    strcpy(big + n + 2001, "\"}");
    expect_error(big, 422, "invalid-field", "prompt");
    memset(big, ' ', CZ_REQUEST_MAX_BODY + 1);
    big[CZ_REQUEST_MAX_BODY + 1] = '\0';
    expect_error(big, 413, "body-too-large", "");
    free(big);
}

static void test_full_request(void **state) {
    (void)state;
    cz_request r;
    cz_request_error e;
    const char *body =
        "{\"prompt\":\"warm lo-fi\",\"duration_s\":45,\"tempo_bpm\":82,\"key\":\"A minor\","
        "\"mood\":\"warm\",\"genre\":\"lo-fi hip hop\",\"instruments\":[\"rhodes\",\"drums\"],"
        "\"seed\":9007199254740991,\"model\":\"composer@1\",\"quality\":\"draft\","
        "\"outputs\":[\"wav\"],\"loudness\":{\"target_lufs\":-16,\"true_peak_dbtp\":-1.5},"
        "\"stems\":true,\"review\":\"always\","
        "\"webhook\":{\"url\":\"https://example.com/hook\",\"events\":[\"job.succeeded\"]},"
        "\"metadata\":{\"order\":17}}";
    assert_int_equal(parse(body, &r, &e), 0);
    assert_true(r.seed == 9007199254740991ULL);
    cJSON *c = r.canonical;
    assert_string_equal(cz_json_str(c, "quality"), "draft");
    assert_true(cz_json_num(cJSON_GetObjectItem(c, "loudness"), "target_lufs", 0) == -16);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(c, "stems")));
    cz_request_free(&r);
}

/* The prompt is read into controls; fields override it; what is not
 * understood is listed; limits are refused naming the field. */
static void test_controls_and_ignored(void **state) {
    (void)state;
    cz_request r;
    cz_request_error e;
    assert_int_equal(parse("{\"prompt\":\"warm lo-fi hip hop with rhodes and vinyl drums, 82 bpm, "
                           "A minor, 45 seconds, zorblax\",\"tempo_bpm\":90}",
                           &r, &e),
                     0);
    const cJSON *c = cJSON_GetObjectItem(r.canonical, "controls");
    assert_non_null(c);
    assert_string_equal(cz_json_str(c, "genre"), "lofi");
    assert_string_equal(cz_json_str(c, "key"), "A minor");
    assert_true(cz_json_num(c, "tempo_bpm", 0) == 90); /* the field wins */
    assert_true(cz_json_num(c, "duration_s", 0) == 45);
    assert_true(cz_json_num(r.canonical, "duration_s", 0) == 45); /* from the prompt */
    const cJSON *ig = cJSON_GetObjectItem(r.canonical, "ignored");
    assert_int_equal(cJSON_GetArraySize(ig), 1);
    assert_string_equal(cJSON_GetArrayItem(ig, 0)->valuestring, "zorblax");
    cz_request_free(&r);

    assert_int_equal(parse("{\"prompt\":\"60 seconds\",\"duration_s\":12}", &r, &e), 0);
    assert_true(cz_json_num(r.canonical, "duration_s", 0) == 12);
    cz_request_free(&r);

    expect_error("{\"prompt\":\"a\",\"instruments\":[\"piano\",\"kazoo\"]}", 422, "invalid-field",
                 "instruments[1]");
    expect_error("{\"prompt\":\"a\",\"duration_s\":0}", 422, "invalid-field", "duration_s");
    expect_error("{\"prompt\":\"a\",\"duration_s\":601}", 422, "invalid-field", "duration_s");
    expect_error("{\"prompt\":\"a\",\"tempo_bpm\":500}", 422, "invalid-field", "tempo_bpm");
    expect_error("{\"prompt\":\"a\",\"controls\":{}}", 422, "unknown-field", "controls");
}

static void test_http_model(void **state) {
    (void)state;
    cz_request r;
    cz_request_error e;
    assert_int_equal(parse("{\"prompt\":\"a\",\"model\":\"http@1\"}", &r, &e), 0);
    assert_string_equal(r.model, "http@1");
    assert_string_equal(r.model_run, "http@1");
    cz_request_free(&r);
}

/* A bare name is kept as asked (the registry routes it: test_routing.c);
 * the user is kept exactly as sent, and is part of the request. */
static void test_model_names_and_users(void **state) {
    (void)state;
    cz_request r, s;
    cz_request_error e;
    assert_int_equal(parse("{\"prompt\":\"a\",\"model\":\"neural\",\"user\":\" Ana \"}", &r, &e),
                     0);
    assert_string_equal(r.model, "neural");
    assert_string_equal(cz_json_str(r.canonical, "user"), " Ana ");
    assert_int_equal(parse("{\"prompt\":\"a\",\"model\":\"neural\",\"user\":\"Bo\"}", &s, &e), 0);
    assert_string_not_equal(r.hash, s.hash);
    cz_request_free(&r);
    cz_request_free(&s);
    char body[400], user[200];
    memset(user, 'u', 128);
    user[128] = '\0';
    snprintf(body, sizeof body, "{\"prompt\":\"a\",\"user\":\"%s\"}", user);
    assert_int_equal(parse(body, &r, &e), 0);
    cz_request_free(&r);
    snprintf(body, sizeof body, "{\"prompt\":\"a\",\"user\":\"%su\"}", user);
    expect_error(body, 422, "invalid-field", "user");
    /* 128 characters, not bytes. */
    snprintf(body, sizeof body, "{\"prompt\":\"a\",\"user\":\"%s\"}",
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9");
    assert_int_equal(parse(body, &r, &e), 0);
    cz_request_free(&r);
    assert_true(cz_request_model_name_valid("a"));
    assert_true(cz_request_model_name_valid("a-name-of-thirty-one-characters"));
    assert_false(cz_request_model_name_valid("a-name-of-thirty-two-characters-"));
    assert_true(cz_request_model_version_valid("2024.1-rc1"));
    assert_false(cz_request_model_version_valid("-1"));
}

/* Parameters: their shape is checked here, and they are part of what
 * shapes the audio (the cache key). Which models take them is the
 * registry's to say (test_routing.c). */
static void test_http2_parameters(void **state) {
    (void)state;
    cz_request r, s;
    cz_request_error e;
    assert_int_equal(parse("{\"prompt\":\"a\",\"model\":\"http@2\",\"seed\":1,"
                           "\"parameters\":{\"temperature\":0.8,\"top_p\":0.9}}",
                           &r, &e),
                     0);
    assert_string_equal(r.model, "http@2");
    const cJSON *p = cJSON_GetObjectItem(r.canonical, "parameters");
    assert_true(cJSON_GetObjectItem(p, "temperature")->valuedouble == 0.8);
    assert_int_equal(parse("{\"prompt\":\"a\",\"model\":\"http@2\",\"seed\":1,"
                           "\"parameters\":{\"temperature\":0.9,\"top_p\":0.9}}",
                           &s, &e),
                     0);
    assert_string_not_equal(r.cache_key, s.cache_key);
    cz_request_free(&r);
    cz_request_free(&s);
    expect_error("{\"prompt\":\"a\",\"model\":\"http@2\",\"parameters\":{\"Top\":1}}", 422,
                 "invalid-field", "parameters");
    expect_error("{\"prompt\":\"a\",\"model\":\"http@2\",\"parameters\":{\"x\":[1]}}", 422,
                 "invalid-field", "parameters.x");
}

/* The cache key: what shapes the audio, only for requests that may reuse. */
static void test_cache_key(void **state) {
    (void)state;
    cz_request a, b;
    cz_request_error e;
    char key[CZ_SHA256_HEX];
    assert_int_equal(parse("{\"prompt\":\"calm piano\",\"seed\":5}", &a, &e), 0);
    assert_int_equal(strlen(a.cache_key), 64); // a seed: deterministic, cacheable
    strcpy(key, a.cache_key);
    cz_request_free(&a);
    // Metadata, webhook and review do not shape the audio; spelling does not count.
    assert_int_equal(parse("{ \"seed\": 5, \"prompt\": \"calm  piano\", \"metadata\": {\"x\": 1},"
                           " \"review\": \"always\"}",
                           &a, &e),
                     0);
    assert_string_equal(a.cache_key, key);
    cz_request_free(&a);
    // The seed, the prompt and the output settings do.
    const char *other[] = {"{\"prompt\":\"calm piano\",\"seed\":6}",
                           "{\"prompt\":\"calm organ\",\"seed\":5}",
                           "{\"prompt\":\"calm piano\",\"seed\":5,\"outputs\":[\"mp3\"]}",
                           "{\"prompt\":\"calm piano\",\"seed\":5,\"duration_s\":31}"};
    for (size_t i = 0; i < sizeof other / sizeof *other; i++) {
        assert_int_equal(parse(other[i], &a, &e), 0);
        assert_string_not_equal(a.cache_key, key);
        cz_request_free(&a);
    }
    // No seed: not cached, unless asked; then any seed will do.
    assert_int_equal(parse("{\"prompt\":\"calm piano\"}", &a, &e), 0);
    assert_string_equal(a.cache_key, "");
    cz_request_free(&a);
    const char *opt_in = "{\"prompt\":\"calm piano\",\"cache\":true}";
    assert_int_equal(cz_request_parse(opt_in, strlen(opt_in), 1, &a, &e), 0);
    assert_int_equal(cz_request_parse(opt_in, strlen(opt_in), 2, &b, &e), 0);
    assert_int_equal(strlen(a.cache_key), 64);
    assert_string_equal(a.cache_key, b.cache_key);
    cz_request_free(&a);
    cz_request_free(&b);
    // "cache": false never.
    assert_int_equal(parse("{\"prompt\":\"calm piano\",\"seed\":5,\"cache\":false}", &a, &e), 0);
    assert_string_equal(a.cache_key, "");
    cz_request_free(&a);
    expect_error("{\"prompt\":\"a\",\"cache\":\"yes\"}", 422, "invalid-field", "cache");
}

static void expect_error_n(const char *body, size_t len, int status, const char *type,
                           const char *field) {
    cz_request r;
    cz_request_error e;
    assert_int_equal(cz_request_parse(body, len, 42, &r, &e), -1);
    assert_int_equal(e.status, status);
    assert_string_equal(e.type, type);
    assert_string_equal(e.field, field);
}

static void test_encoding_and_bytes(void **state) {
    (void)state;
    /* A raw NUL byte inside a string, and one after the value. */
    static const char nul_inside[] = "{\"prompt\":\"a\0b\"}", nul_after[] = "{\"prompt\":\"ab\"}\0";
    expect_error_n(nul_inside, sizeof nul_inside - 1, 400, "malformed-json", "");
    expect_error_n(nul_after, sizeof nul_after, 400, "malformed-json", "");
    /* Invalid UTF-8 anywhere is named by its path, keys included. */
    expect_error("{\"prompt\":\"caf\xc3\"}", 422, "invalid-field", "prompt");
    expect_error("{\"prompt\":\"x\",\"metadata\":{\"a\":[\"ok\",\"\xff\"]}}", 422, "invalid-field",
                 "metadata.a[1]");
    expect_error("{\"prompt\":\"x\",\"metadata\":{\"\xed\xa0\x80\":1}}", 422, "invalid-field",
                 "metadata");
    expect_error("{\"\xc0\xaf\":1}", 422, "invalid-field", "");
    /* An unknown field's name is reported whole, or cut between characters. */
    char body[200];
    snprintf(body, sizeof body, "{\"prompt\":\"x\",\"%s\":1}",
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9"
             "\xc3\xa9");
    cz_request r;
    cz_request_error e;
    assert_int_equal(parse(body, &r, &e), -1);
    assert_string_equal(e.type, "unknown-field");
    assert_int_equal(strlen(e.field), 60);
    /* Deep metadata, huge and non-finite numbers, zero and negative durations. */
    expect_error("{\"prompt\":\"x\",\"metadata\":{\"a\":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]}}", 422,
                 "invalid-field", "metadata");
    expect_error("{\"prompt\":\"x\",\"duration_s\":1e999}", 422, "invalid-field", "duration_s");
    expect_error("{\"prompt\":\"x\",\"seed\":18446744073709551616}", 422, "invalid-field", "seed");
    expect_error("{\"prompt\":\"x\",\"duration_s\":0}", 422, "invalid-field", "duration_s");
    expect_error("{\"prompt\":\"x\",\"duration_s\":-5}", 422, "invalid-field", "duration_s");
    expect_error("{\"prompt\":\"x\",\"duration_s\":\"30\"}", 422, "invalid-field", "duration_s");
}

static void test_idempotency_keys(void **state) {
    (void)state;
    assert_true(cz_request_idempotency_key_valid("order-17/retry 2"));
    assert_false(cz_request_idempotency_key_valid(""));
    assert_false(cz_request_idempotency_key_valid("tab\there"));
    assert_false(cz_request_idempotency_key_valid("caf\xc3\xa9"));
    char long_key[300];
    memset(long_key, 'k', sizeof long_key - 1);
    long_key[sizeof long_key - 1] = '\0';
    assert_false(cz_request_idempotency_key_valid(long_key));
    long_key[255] = '\0';
    assert_true(cz_request_idempotency_key_valid(long_key));
}

int main(void) {
    cz_mem_init(); /* cJSON allocates as the binaries do */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_request_gets_defaults),
        cmocka_unit_test(test_spelling_does_not_change_the_hash),
        cmocka_unit_test(test_malformed_and_shape),
        cmocka_unit_test(test_field_rules),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_full_request),
        cmocka_unit_test(test_controls_and_ignored),
        cmocka_unit_test(test_http_model),
        cmocka_unit_test(test_model_names_and_users),
        cmocka_unit_test(test_http2_parameters),
        cmocka_unit_test(test_cache_key),
        cmocka_unit_test(test_encoding_and_bytes),
        cmocka_unit_test(test_idempotency_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
