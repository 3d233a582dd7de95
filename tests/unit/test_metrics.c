/* The metrics registry and its exposition text (common/metrics.c). */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/metrics.h"

static void test_same_series_for_same_name_and_labels(void **state) {
    (void)state;
    cz_metric *a = cz_metric_counter("cadenza_t_total", "help", "k=\"a\"");
    cz_metric *b = cz_metric_counter("cadenza_t_total", "other help", "k=\"a\"");
    cz_metric *c = cz_metric_counter("cadenza_t_total", "help", "k=\"b\"");
    assert_ptr_equal(a, b);
    assert_ptr_not_equal(a, c);
    cz_metric_add(a, 2);
    cz_metric_add(b, 0.5);
    cz_metric_add(a, -1); /* a counter never goes down */
    assert_true(cz_metric_value(a) == 2.5);
    cz_metric_add(NULL, 1); /* NULL-safe */
}

static void test_exposition_text(void **state) {
    (void)state;
    cz_metric_set(cz_metric_gauge("cadenza_t_gauge", "a gauge", ""), -3);
    const double b[] = {1, 5};
    cz_metric *h = cz_metric_histogram("cadenza_t_seconds", "a histogram", "stage=\"x\"", b, 2);
    cz_metric_observe(h, 0.5);
    cz_metric_observe(h, 1); /* on a bound: counted in it (le) */
    cz_metric_observe(h, 3);
    cz_metric_observe(h, 100); /* only in +Inf */
    char *text = cz_metrics_render();
    assert_non_null(text);
    assert_non_null(strstr(text, "# HELP cadenza_t_total help\n# TYPE cadenza_t_total counter\n"
                                 "cadenza_t_total{k=\"a\"} 2.5\ncadenza_t_total{k=\"b\"} 0\n"));
    assert_non_null(strstr(text, "# TYPE cadenza_t_gauge gauge\ncadenza_t_gauge -3\n"));
    assert_non_null(strstr(text, "# TYPE cadenza_t_seconds histogram\n"
                                 "cadenza_t_seconds_bucket{stage=\"x\",le=\"1\"} 2\n"
                                 "cadenza_t_seconds_bucket{stage=\"x\",le=\"5\"} 3\n"
                                 "cadenza_t_seconds_bucket{stage=\"x\",le=\"+Inf\"} 4\n"
                                 "cadenza_t_seconds_sum{stage=\"x\"} 104.5\n"
                                 "cadenza_t_seconds_count{stage=\"x\"} 4\n"));
    /* One HELP/TYPE per name, however many series. */
    char *first = strstr(text, "# TYPE cadenza_t_total");
    assert_null(strstr(first + 1, "# TYPE cadenza_t_total"));
    free(text);
}

static void *adder(void *arg) {
    for (int i = 0; i < 100000; i++) {
        cz_metric_add(arg, 1);
        cz_metric_observe(cz_metric_histogram("cadenza_t_race_seconds", "", "",
                                              cz_metrics_latency_buckets,
                                              cz_metrics_latency_nbuckets),
                          0.01);
    }
    return NULL;
}

static void test_concurrent_updates_are_not_lost(void **state) {
    (void)state;
    cz_metric *m = cz_metric_counter("cadenza_t_race_total", "", "");
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&t[i], NULL, adder, m);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    assert_true(cz_metric_value(m) == 400000);
    char *text = cz_metrics_render();
    assert_non_null(strstr(text, "cadenza_t_race_seconds_count 400000\n"));
    free(text);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_same_series_for_same_name_and_labels),
        cmocka_unit_test(test_exposition_text),
        cmocka_unit_test(test_concurrent_updates_are_not_lost),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
