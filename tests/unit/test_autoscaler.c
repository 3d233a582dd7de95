/* The autoscaler's formula (scheduler/autoscaler.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "scheduler/autoscaler.h"

static void test_ceil_of_lag_per_target(void **state) {
    (void)state;
    assert_int_equal(cz_autoscale_target(8, 4, 1, 8), 2);
    assert_int_equal(cz_autoscale_target(9, 4, 1, 8), 3); /* a part-replica rounds up */
    assert_int_equal(cz_autoscale_target(1, 4, 0, 8), 1);
}

static void test_clamped_to_min_and_max(void **state) {
    (void)state;
    assert_int_equal(cz_autoscale_target(0, 4, 1, 8), 1); /* idle: min */
    assert_int_equal(cz_autoscale_target(0, 4, 0, 8), 0); /* a pool may scale to zero */
    assert_int_equal(cz_autoscale_target(1000, 4, 1, 8), 8);
    assert_int_equal(cz_autoscale_target(1LL << 40, 1, 2, 3), 3); /* no overflow */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ceil_of_lag_per_target),
        cmocka_unit_test(test_clamped_to_min_and_max),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
