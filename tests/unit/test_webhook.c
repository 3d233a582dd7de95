/* Webhook signing, the retry schedule, jitter, Retry-After and what an
 * attempt's outcome means (common/webhook.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/webhook.h"

/* The Standard Webhooks reference vector, as its libraries test it: the
 * only check that says a receiver's stock library accepts what we send. */
static void test_sign_matches_the_standard_webhooks_vector(void **state) {
    (void)state;
    const char body[] = "{\"test\": 2432232314}";
    char sig[CZ_WEBHOOK_SIG_LEN];
    assert_int_equal(cz_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
                                     sig),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* The prefix is optional, as in the reference implementations. */
    assert_int_equal(cz_webhook_sign("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, strlen(body),
                                     sig),
                     0);
    assert_string_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    /* Any change to id, time or body changes the signature. */
    assert_int_equal(cz_webhook_sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
                                     "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265331, body, strlen(body),
                                     sig),
                     0);
    assert_string_not_equal(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
}

static void test_secrets(void **state) {
    (void)state;
    char a[CZ_WEBHOOK_SECRET_MAX], b[CZ_WEBHOOK_SECRET_MAX];
    cz_webhook_secret_new(a);
    cz_webhook_secret_new(b);
    assert_int_equal(strncmp(a, "whsec_", 6), 0);
    assert_int_equal(strlen(a), 6 + 44);
    assert_string_not_equal(a, b);
    unsigned char key[64];
    assert_int_equal(cz_webhook_secret_key(a, key, sizeof key), 32);
    assert_int_equal(cz_webhook_secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", key, 64), 24);
    assert_int_equal(cz_webhook_secret_key("whsec_not*base64!", key, sizeof key), -1);
    assert_int_equal(cz_webhook_secret_key("whsec_", key, sizeof key), -1);
    assert_int_equal(cz_webhook_secret_key("whsec_abc", key, sizeof key), -1); /* length */
    assert_int_equal(cz_webhook_secret_key(a, key, 16), -1);                   /* too long */
    char sig[CZ_WEBHOOK_SIG_LEN];
    assert_int_equal(cz_webhook_sign("whsec_!!!!", "id", 1, "{}", 2, sig), -1);
}

static void test_schedule_default_is_the_documented_one(void **state) {
    (void)state;
    cz_webhook_schedule s;
    cz_err err;
    assert_int_equal(cz_webhook_schedule_parse(CZ_WEBHOOK_DEFAULT_SCHEDULE, &s, &err), 0);
    const int64_t want[] = {0, 5000, 300000, 1800000, 7200000, 18000000, 36000000, 36000000};
    assert_int_equal(s.n, 8);
    for (int i = 0; i < 8; i++)
        assert_int_equal(s.delay_ms[i], want[i]);
    assert_int_equal(cz_webhook_schedule_parse("0, 250ms, 1, 2s", &s, &err), 0);
    assert_int_equal(s.n, 4);
    assert_int_equal(s.delay_ms[1], 250);
    assert_int_equal(s.delay_ms[2], 1000); /* no unit: seconds */
    assert_int_equal(s.delay_ms[3], 2000);
}

static void test_schedule_refuses_nonsense(void **state) {
    (void)state;
    cz_webhook_schedule s;
    cz_err err;
    assert_int_equal(cz_webhook_schedule_parse("", &s, &err), -1);
    assert_int_equal(cz_webhook_schedule_parse("5s,10s", &s, &err), -1); /* first must be 0 */
    assert_non_null(strstr(err.msg, "first"));
    assert_int_equal(cz_webhook_schedule_parse("0,5x", &s, &err), -1);
    assert_int_equal(cz_webhook_schedule_parse("0,-5s", &s, &err), -1);
    assert_int_equal(cz_webhook_schedule_parse("0,200h", &s, &err), -1); /* over a week */
    assert_int_equal(cz_webhook_schedule_parse("0,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1", &s, &err), -1);
}

static void test_jitter_stays_within_twenty_percent(void **state) {
    (void)state;
    assert_int_equal(cz_webhook_jitter_ms(0, UINT64_MAX), 0); /* immediately is immediately */
    assert_int_equal(cz_webhook_jitter_ms(5000, 0), 4000);
    assert_int_equal(cz_webhook_jitter_ms(5000, UINT64_MAX), 6000);
    int64_t lo = INT64_MAX, hi = 0;
    uint64_t x = 88172645463325252ULL;
    double sum = 0;
    for (int i = 0; i < 10000; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17; /* xorshift64 */
        int64_t d = cz_webhook_jitter_ms(300000, x);
        lo = d < lo ? d : lo;
        hi = d > hi ? d : hi;
        sum += (double)d;
    }
    assert_true(lo >= 240000 && lo < 242000);
    assert_true(hi <= 360000 && hi > 358000);
    assert_true(sum / 10000 > 297000 && sum / 10000 < 303000); /* centred on the nominal */
}

static void test_retry_after(void **state) {
    (void)state;
    time_t now = 1445412480; /* Wed, 21 Oct 2015 07:28:00 GMT */
    assert_int_equal(cz_webhook_retry_after_ms("120", now), 120000);
    assert_int_equal(cz_webhook_retry_after_ms(" 5 ", now), 5000);
    assert_int_equal(cz_webhook_retry_after_ms("0", now), 0);
    assert_int_equal(cz_webhook_retry_after_ms("Wed, 21 Oct 2015 07:28:30 GMT", now), 30000);
    assert_int_equal(cz_webhook_retry_after_ms("Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
    assert_int_equal(cz_webhook_retry_after_ms("99999999999", now), CZ_WEBHOOK_RETRY_AFTER_CAP_MS);
    assert_int_equal(cz_webhook_retry_after_ms(NULL, now), -1);
    assert_int_equal(cz_webhook_retry_after_ms("soon", now), -1);
    assert_int_equal(cz_webhook_retry_after_ms("-5", now), -1);
    assert_int_equal(cz_webhook_retry_after_ms("5 seconds", now), -1);
}

static void test_decide(void **state) {
    (void)state;
    cz_webhook_schedule s;
    cz_err err;
    assert_int_equal(cz_webhook_schedule_parse(CZ_WEBHOOK_DEFAULT_SCHEDULE, &s, &err), 0);
    int64_t d;
    const uint64_t mid = UINT64_MAX / 2; /* jitter factor 1.0 */
    assert_int_equal(cz_webhook_decide(&s, 1, 200, -1, mid, &d), CZ_WEBHOOK_SUCCEEDED);
    assert_int_equal(cz_webhook_decide(&s, 1, 204, -1, mid, &d), CZ_WEBHOOK_SUCCEEDED);
    assert_int_equal(cz_webhook_decide(&s, 1, 410, -1, mid, &d), CZ_WEBHOOK_GONE);
    /* After the first attempt fails, the second comes about 5 s later... */
    assert_int_equal(cz_webhook_decide(&s, 1, 500, -1, mid, &d), CZ_WEBHOOK_RETRY);
    assert_true(d >= 4999 && d <= 5001);
    /* ...no response at all (timeout, refused) is retried the same way... */
    assert_int_equal(cz_webhook_decide(&s, 2, 0, -1, mid, &d), CZ_WEBHOOK_RETRY);
    assert_true(d >= 299990 && d <= 300010);
    /* ...a redirect is not followed, so it is a failure... */
    assert_int_equal(cz_webhook_decide(&s, 1, 302, -1, mid, &d), CZ_WEBHOOK_RETRY);
    /* ...and after the eighth there is no ninth. */
    assert_int_equal(cz_webhook_decide(&s, 7, 503, -1, mid, &d), CZ_WEBHOOK_RETRY);
    assert_true(d >= 35999000 && d <= 36001000);
    assert_int_equal(cz_webhook_decide(&s, 8, 503, -1, mid, &d), CZ_WEBHOOK_EXHAUSTED);
    /* Retry-After wins when it asks for longer, never for shorter. */
    assert_int_equal(cz_webhook_decide(&s, 1, 429, 60000, mid, &d), CZ_WEBHOOK_RETRY);
    assert_int_equal(d, 60000);
    assert_int_equal(cz_webhook_decide(&s, 2, 503, 1000, mid, &d), CZ_WEBHOOK_RETRY);
    assert_true(d > 200000);
    assert_int_equal(cz_webhook_decide(&s, 1, 503, INT64_MAX, mid, &d), CZ_WEBHOOK_RETRY);
    assert_int_equal(d, CZ_WEBHOOK_RETRY_AFTER_CAP_MS);
    /* A Retry-After does not buy attempts the schedule does not have. */
    assert_int_equal(cz_webhook_decide(&s, 8, 429, 1000, mid, &d), CZ_WEBHOOK_EXHAUSTED);
    assert_string_equal(cz_webhook_verdict_state(CZ_WEBHOOK_RETRY), "pending");
    assert_string_equal(cz_webhook_verdict_state(CZ_WEBHOOK_GONE), "failed");
    assert_string_equal(cz_webhook_verdict_state(CZ_WEBHOOK_SUCCEEDED), "succeeded");
}

static void test_events(void **state) {
    (void)state;
    assert_string_equal(cz_webhook_event_for_state(CZ_JOB_SUCCEEDED), "job.succeeded");
    assert_string_equal(cz_webhook_event_for_state(CZ_JOB_FAILED), "job.failed");
    assert_string_equal(cz_webhook_event_for_state(CZ_JOB_CANCELED), "job.canceled");
    assert_string_equal(cz_webhook_event_for_state(CZ_JOB_IN_REVIEW), "job.in_review");
    assert_string_equal(cz_webhook_event_for_state(CZ_JOB_REJECTED), "job.rejected");
    assert_string_equal(cz_webhook_event_for_state(CZ_JOB_GENERATING), "job.started");
    assert_null(cz_webhook_event_for_state(CZ_JOB_QUEUED));
    assert_null(cz_webhook_event_for_state(CZ_JOB_POSTPROCESSING));
    assert_true(cz_webhook_event_valid("job.progress"));
    assert_false(cz_webhook_event_valid("job.exploded"));
    assert_false(cz_webhook_event_valid(NULL));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_matches_the_standard_webhooks_vector),
        cmocka_unit_test(test_secrets),
        cmocka_unit_test(test_schedule_default_is_the_documented_one),
        cmocka_unit_test(test_schedule_refuses_nonsense),
        cmocka_unit_test(test_jitter_stays_within_twenty_percent),
        cmocka_unit_test(test_retry_after),
        cmocka_unit_test(test_decide),
        cmocka_unit_test(test_events),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
