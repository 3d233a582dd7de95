/* Failure classes and the retry backoff (common/failure.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/failure.h"

static void test_classes(void **state) {
    (void)state;
    const char *retryable[] = {"model_error",         "timeout",     "oom",
                               "backend_unavailable", "worker_lost", "internal"};
    for (size_t i = 0; i < 6; i++) {
        assert_true(cz_failure_class_valid(retryable[i]));
        assert_true(cz_failure_retryable(retryable[i]));
    }
    assert_true(cz_failure_class_valid("invalid_input"));
    assert_false(cz_failure_retryable("invalid_input"));
    assert_false(cz_failure_class_valid("gremlins"));
    assert_true(cz_failure_retryable("gremlins")); /* unknown: as internal */
    assert_false(cz_failure_class_valid(NULL));
}

static void test_backoff_grows_then_caps(void **state) {
    (void)state;
    const uint64_t max = UINT64_MAX; /* the top of the jitter range */
    /* base 1000: ceilings 1000, 2000, 4000, 8000, then the 5000 cap */
    assert_true(cz_failure_backoff_ms(1, 1000, 5000, max) <= 1000);
    assert_true(cz_failure_backoff_ms(3, 1000, 5000, max) <= 4000);
    assert_true(cz_failure_backoff_ms(9, 1000, 5000, max) <= 5000);
    assert_true(cz_failure_backoff_ms(60, 1000, 5000, max) <= 5000); /* no overflow */
    assert_int_equal(cz_failure_backoff_ms(2, 1000, 5000, 2000), 2000);
    assert_int_equal(cz_failure_backoff_ms(2, 1000, 5000, 2001), 0);
    assert_int_equal(cz_failure_backoff_ms(1, 0, 5000, 12345), 0);
}

static void test_backoff_is_full_jitter(void **state) {
    (void)state;
    /* Every value in [0, ceiling] is reachable; nothing above it. */
    int64_t lo = INT64_MAX, hi = 0;
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        int64_t d = cz_failure_backoff_ms(3, 100, 60000, x);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
    }
    assert_true(lo < 20);
    assert_true(hi > 380 && hi <= 400);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_backoff_grows_then_caps),
        cmocka_unit_test(test_backoff_is_full_jitter),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
