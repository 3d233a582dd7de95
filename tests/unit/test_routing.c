/* Routing a submission to a model version, and its limits (api/routing.c);
 * the cache key of a routed request (api/request.c, cz_request_set_model). */
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
#include "api/routing.h"
#include "common/json.h"
#include "common/mem.h"

static cz_model row(const char *name, const char *version, const char *status, int weight,
                    double max_s, bool stems) {
    cz_model m = {.weight = weight, .max_duration_s = max_s, .stems = stems};
    snprintf(m.name, sizeof m.name, "%s", name);
    snprintf(m.version, sizeof m.version, "%s", version);
    snprintf(m.status, sizeof m.status, "%s", status);
    snprintf(m.backend, sizeof m.backend, "%s", name);
    snprintf(m.tier, sizeof m.tier, "final");
    snprintf(m.pool, sizeof m.pool, "inference");
    return m;
}

/* The registry of these tests: neural split 90/10 between 1 and 2, a
 * shadow 3 and a retired 0; composer and http as seeded. */
static int registry(cz_model *rows) {
    int n = 0;
    rows[n++] = row("composer", "1", "active", 100, 600, true);
    rows[n++] = row("http", "1", "active", 100, 600, false);
    rows[n++] = row("neural", "0", "retired", 0, 600, true);
    rows[n++] = row("neural", "1", "active", 90, 600, true);
    rows[n++] = row("neural", "2", "active", 10, 300, false);
    rows[n++] = row("neural", "3", "shadow", 0, 600, true);
    return n;
}

static const char *route(const cz_model *rows, int n, const char *tenant, const char *user,
                         const char *model) {
    cz_request_error e;
    const cz_model *m = cz_routing_resolve(rows, n, tenant, user, model, &e);
    static char id[CZ_MODEL_ID_MAX];
    if (!m)
        return NULL;
    snprintf(id, sizeof id, "%s@%s", m->name, m->version);
    return id;
}

static void expect_refused(const cz_model *rows, int n, const char *model, const char *says) {
    cz_request_error e;
    assert_null(cz_routing_resolve(rows, n, "acme", "ana", model, &e));
    assert_int_equal(e.status, 422);
    assert_string_equal(e.type, "invalid-field");
    assert_string_equal(e.field, "model");
    if (!strstr(e.detail, says))
        fail_msg("detail \"%s\" does not say \"%s\"", e.detail, says);
    /* What may be asked for is named: active versions and routed names. */
    const char *list = strstr(e.detail, "one of: ");
    assert_non_null(list);
    assert_non_null(strstr(list, "composer@1"));
    assert_non_null(strstr(list, "neural@1"));
    assert_non_null(strstr(list, "neural@2"));
    assert_null(strstr(list, "neural@3"));
    assert_null(strstr(list, "neural@0"));
}

static void test_the_bucket_is_sha256_of_tenant_user_and_name(void **state) {
    (void)state;
    /* python3: int.from_bytes(sha256(b"t\0u\0neural").digest()[:8], "big") % 100 */
    assert_int_equal(cz_routing_bucket("t", "u", "neural"), 21);
    assert_int_equal(cz_routing_bucket("acme", "", "composer"), 94);
}

static void test_pins_and_what_cannot_be_asked_for(void **state) {
    (void)state;
    cz_model rows[8];
    int n = registry(rows);
    assert_string_equal(route(rows, n, "acme", "ana", "neural@2"), "neural@2");
    assert_string_equal(route(rows, n, "acme", "ana", "composer@1"), "composer@1");
    assert_string_equal(route(rows, n, "acme", "", "composer"), "composer@1");
    expect_refused(rows, n, "neural@3", "shadow");
    expect_refused(rows, n, "neural@0", "retired");
    expect_refused(rows, n, "neural@9", "does not exist");
    expect_refused(rows, n, "gpt", "does not exist");
    expect_refused(rows, n, "gpt@4", "does not exist");
    /* A name whose active versions take no traffic can only be pinned. */
    rows[1].weight = 0;
    expect_refused(rows, n, "http", "no version taking traffic");
    assert_string_equal(route(rows, n, "acme", "ana", "http@1"), "http@1");
}

static void test_a_user_keeps_their_version(void **state) {
    (void)state;
    cz_model rows[8];
    int n = registry(rows);
    int on_two = 0;
    for (int i = 0; i < 200; i++) {
        char user[32];
        snprintf(user, sizeof user, "user-%d", i);
        char first[CZ_MODEL_ID_MAX];
        snprintf(first, sizeof first, "%s", route(rows, n, "acme", user, "neural"));
        for (int k = 0; k < 5; k++)
            assert_string_equal(route(rows, n, "acme", user, "neural"), first);
        on_two += !strcmp(first, "neural@2");
    }
    assert_true(on_two > 0 && on_two < 200);
    /* The order of the rows does not matter: versions are ordered by name. */
    cz_model swapped[8];
    memcpy(swapped, rows, sizeof rows);
    swapped[3] = rows[4], swapped[4] = rows[3];
    for (int i = 0; i < 200; i++) {
        char user[32], a[CZ_MODEL_ID_MAX];
        snprintf(user, sizeof user, "user-%d", i);
        snprintf(a, sizeof a, "%s", route(rows, n, "acme", user, "neural"));
        assert_string_equal(route(swapped, n, "acme", user, "neural"), a);
    }
}

/* 90/10 over 10,000 synthetic users: neural@2's share is binomial(10000, 0.1),
 * mean 1000, standard deviation 30; four deviations either side. */
static void test_a_90_10_split_sends_a_tenth(void **state) {
    (void)state;
    cz_model rows[8];
    int n = registry(rows);
    int on_two = 0;
    for (int i = 0; i < 10000; i++) {
        char user[32];
        snprintf(user, sizeof user, "listener-%d", i);
        on_two += !strcmp(route(rows, n, "acme", user, "neural"), "neural@2");
    }
    if (on_two < 880 || on_two > 1120)
        fail_msg("neural@2 got %d of 10000 users, not 1000 +- 120", on_two);
}

/* From 90/10 to 80/20: only users whose bucket changes owner move (from 1
 * to 2, about a tenth of them); nobody on 2 moves back. */
static void test_moving_a_boundary_moves_only_the_users_it_crosses(void **state) {
    (void)state;
    cz_model before[8], after[8];
    int n = registry(before);
    registry(after);
    after[3].weight = 80, after[4].weight = 20;
    int moved = 0;
    for (int i = 0; i < 10000; i++) {
        char user[32], was[CZ_MODEL_ID_MAX];
        snprintf(user, sizeof user, "listener-%d", i);
        snprintf(was, sizeof was, "%s", route(before, n, "acme", user, "neural"));
        const char *now = route(after, n, "acme", user, "neural");
        if (strcmp(was, now)) {
            assert_string_equal(was, "neural@1");
            assert_string_equal(now, "neural@2");
            moved++;
        }
        int bucket = cz_routing_bucket("acme", user, "neural");
        assert_string_equal(now, bucket < 80 ? "neural@1" : "neural@2");
    }
    if (moved < 880 || moved > 1120)
        fail_msg("%d of 10000 users moved, not about 1000", moved);
    /* The same user of another tenant is another bucket. */
    int same = 0;
    for (int i = 0; i < 1000; i++) {
        char user[32];
        snprintf(user, sizeof user, "u%d", i);
        same +=
            cz_routing_bucket("acme", user, "neural") == cz_routing_bucket("zeta", user, "neural");
    }
    assert_true(same < 50);
}

static void expect_limit(const cz_model *m, const char *body, const char *field) {
    cz_request r;
    cz_request_error e;
    assert_int_equal(cz_request_parse(body, strlen(body), 1, &r, &e), 0);
    int rc = cz_routing_check_limits(m, r.canonical, &e);
    cz_request_free(&r);
    if (!field) {
        assert_int_equal(rc, 0);
        return;
    }
    assert_int_equal(rc, -1);
    assert_int_equal(e.status, 422);
    assert_string_equal(e.field, field);
    assert_non_null(strstr(e.detail, m->name));
}

static void test_limits_are_the_versions(void **state) {
    (void)state;
    cz_model rows[8];
    registry(rows);
    const cz_model *composer = &rows[0], *http = &rows[1], *two = &rows[4];
    expect_limit(two, "{\"prompt\":\"a\",\"duration_s\":300}", NULL);
    expect_limit(two, "{\"prompt\":\"a\",\"duration_s\":300.5}", "duration_s");
    expect_limit(composer, "{\"prompt\":\"a\",\"duration_s\":600}", NULL);
    expect_limit(composer, "{\"prompt\":\"a\",\"stems\":true}", NULL);
    expect_limit(http, "{\"prompt\":\"a\",\"stems\":true}", "stems");
    expect_limit(two, "{\"prompt\":\"a\",\"stems\":true}", "stems");
    expect_limit(two, "{\"prompt\":\"a\",\"stems\":false}", NULL);
    /* A duration the prompt names counts like the field. */
    expect_limit(two, "{\"prompt\":\"ambient, 450 seconds\"}", "duration_s");
    /* Parameters only for a version that takes them (http@2's servers). */
    const char *with = "{\"prompt\":\"a\",\"parameters\":{\"temperature\":0.8}}";
    expect_limit(composer, with, "parameters");
    expect_limit(http, with, "parameters");
    cz_model http2 = row("http", "2", "active", 0, 600, false);
    http2.takes_parameters = true;
    expect_limit(&http2, with, NULL);
    expect_limit(&http2, "{\"prompt\":\"a\",\"stems\":true}", "stems");
}

/* The cache never answers with another version's audio; a bare name shares
 * entries with the version it runs on; the request and its hash keep the
 * model as asked. */
static void test_the_cache_key_names_the_version_that_runs(void **state) {
    (void)state;
    const char *bare = "{\"prompt\":\"calm piano\",\"seed\":5,\"model\":\"neural\"}";
    const char *pinned = "{\"prompt\":\"calm piano\",\"seed\":5,\"model\":\"neural@1\"}";
    cz_request a, b, p;
    cz_request_error e;
    assert_int_equal(cz_request_parse(bare, strlen(bare), 1, &a, &e), 0);
    assert_int_equal(cz_request_parse(bare, strlen(bare), 1, &b, &e), 0);
    assert_int_equal(cz_request_parse(pinned, strlen(pinned), 1, &p, &e), 0);
    char hash[CZ_SHA256_HEX], pinned_key[CZ_SHA256_HEX];
    strcpy(hash, a.hash);
    strcpy(pinned_key, p.cache_key);
    cz_request_set_model(&a, "neural@1");
    cz_request_set_model(&b, "neural@2");
    assert_string_equal(a.model_run, "neural@1");
    assert_string_equal(b.model_run, "neural@2");
    assert_string_not_equal(a.cache_key, b.cache_key);
    assert_string_equal(a.cache_key, pinned_key);
    cz_request_set_model(&p, "neural@1"); /* a pin runs as itself: its key is unchanged */
    assert_string_equal(p.cache_key, pinned_key);
    assert_string_equal(a.hash, hash);
    assert_string_equal(cz_json_str(a.canonical, "model"), "neural");
    assert_non_null(strstr(a.json, "\"model\":\"neural\""));
    cz_request_free(&a);
    cz_request_free(&b);
    cz_request_free(&p);
    /* A request that is not cacheable stays so. */
    const char *unseeded = "{\"prompt\":\"calm piano\",\"model\":\"neural\"}";
    assert_int_equal(cz_request_parse(unseeded, strlen(unseeded), 1, &a, &e), 0);
    cz_request_set_model(&a, "neural@2");
    assert_string_equal(a.cache_key, "");
    cz_request_free(&a);
}

int main(void) {
    cz_mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_bucket_is_sha256_of_tenant_user_and_name),
        cmocka_unit_test(test_pins_and_what_cannot_be_asked_for),
        cmocka_unit_test(test_a_user_keeps_their_version),
        cmocka_unit_test(test_a_90_10_split_sends_a_tenth),
        cmocka_unit_test(test_moving_a_boundary_moves_only_the_users_it_crosses),
        cmocka_unit_test(test_limits_are_the_versions),
        cmocka_unit_test(test_the_cache_key_names_the_version_that_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
