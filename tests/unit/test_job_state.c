/* The job state machine's rules (common/job_state.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/job_state.h"

static void test_happy_path(void **state) {
    (void)state;
    int s = CZ_JOB_QUEUED;
    const cz_job_event path[] = {CZ_EV_DISPATCHED, CZ_EV_STARTED,      CZ_EV_PROGRESS,
                                 CZ_EV_GENERATED,  CZ_EV_POST_STARTED, CZ_EV_PROGRESS,
                                 CZ_EV_POST_DONE};
    const int want[] = {CZ_JOB_DISPATCHED, CZ_JOB_GENERATING,     CZ_JOB_GENERATING,
                        CZ_JOB_GENERATED,  CZ_JOB_POSTPROCESSING, CZ_JOB_POSTPROCESSING,
                        CZ_JOB_SUCCEEDED};
    for (size_t i = 0; i < sizeof path / sizeof *path; i++) {
        s = cz_job_transition((cz_job_state)s, path[i]);
        assert_int_equal(s, want[i]);
    }
}

static void test_terminal_states_absorb_everything(void **state) {
    (void)state;
    const cz_job_state terminal[] = {CZ_JOB_SUCCEEDED, CZ_JOB_FAILED, CZ_JOB_CANCELED,
                                     CZ_JOB_REJECTED};
    for (size_t t = 0; t < 4; t++) {
        assert_true(cz_job_state_terminal(terminal[t]));
        for (int e = 0; e < CZ_JOB_EVENT_COUNT; e++)
            assert_int_equal(cz_job_transition(terminal[t], (cz_job_event)e), -1);
    }
}

static void test_never_moves_backwards(void **state) {
    (void)state;
    /* A late `started` after the job was generated, or a duplicate `generated`. */
    assert_int_equal(cz_job_transition(CZ_JOB_GENERATED, CZ_EV_STARTED), -1);
    assert_int_equal(cz_job_transition(CZ_JOB_GENERATED, CZ_EV_GENERATED), -1);
    assert_int_equal(cz_job_transition(CZ_JOB_POSTPROCESSING, CZ_EV_GENERATED), -1);
    assert_int_equal(cz_job_transition(CZ_JOB_DISPATCHED, CZ_EV_DISPATCHED), -1);
}

static void test_skipping_forward_is_allowed(void **state) {
    (void)state;
    /* The relay crashed before recording the dispatch; the worker went on. */
    assert_int_equal(cz_job_transition(CZ_JOB_QUEUED, CZ_EV_STARTED), CZ_JOB_GENERATING);
    /* The post stage's events overtook the inference stage's. */
    assert_int_equal(cz_job_transition(CZ_JOB_GENERATING, CZ_EV_POST_DONE), CZ_JOB_SUCCEEDED);
    assert_int_equal(cz_job_transition(CZ_JOB_DISPATCHED, CZ_EV_POST_STARTED),
                     CZ_JOB_POSTPROCESSING);
}

static void test_progress_only_while_running(void **state) {
    (void)state;
    assert_int_equal(cz_job_transition(CZ_JOB_GENERATING, CZ_EV_PROGRESS), CZ_JOB_GENERATING);
    assert_int_equal(cz_job_transition(CZ_JOB_QUEUED, CZ_EV_PROGRESS), -1);
    assert_int_equal(cz_job_transition(CZ_JOB_GENERATED, CZ_EV_PROGRESS), -1);
    assert_int_equal(cz_job_event_target(CZ_EV_PROGRESS), -1);
}

static void test_review_and_cancel(void **state) {
    (void)state;
    assert_int_equal(cz_job_transition(CZ_JOB_POSTPROCESSING, CZ_EV_NEEDS_REVIEW),
                     CZ_JOB_IN_REVIEW);
    assert_int_equal(cz_job_transition(CZ_JOB_IN_REVIEW, CZ_EV_APPROVED), CZ_JOB_SUCCEEDED);
    assert_int_equal(cz_job_transition(CZ_JOB_IN_REVIEW, CZ_EV_REJECTED), CZ_JOB_REJECTED);
    assert_int_equal(cz_job_transition(CZ_JOB_POSTPROCESSING, CZ_EV_APPROVED), -1);
    /* A worker's failure cannot undo a curator's hold; cancel can. */
    assert_int_equal(cz_job_transition(CZ_JOB_IN_REVIEW, CZ_EV_FAILED), -1);
    for (int s = 0; s < CZ_JOB_STATE_COUNT; s++) {
        int want = cz_job_state_terminal((cz_job_state)s) ? -1 : CZ_JOB_CANCELED;
        assert_int_equal(cz_job_transition((cz_job_state)s, CZ_EV_CANCEL), want);
    }
}

static void test_retry_goes_back_to_queued(void **state) {
    (void)state;
    /* The one move backwards; the attempt number changes with it. */
    assert_int_equal(cz_job_transition(CZ_JOB_GENERATING, CZ_EV_RETRY), CZ_JOB_QUEUED);
    assert_int_equal(cz_job_transition(CZ_JOB_POSTPROCESSING, CZ_EV_RETRY), CZ_JOB_QUEUED);
    assert_int_equal(cz_job_transition(CZ_JOB_IN_REVIEW, CZ_EV_RETRY), -1);
    assert_int_equal(cz_job_transition(CZ_JOB_CANCELED, CZ_EV_RETRY), -1);
}

static void test_from_states_match_transitions(void **state) {
    (void)state;
    /* The SQL guard must list exactly the states the C rules accept. */
    for (int e = 0; e < CZ_JOB_EVENT_COUNT; e++) {
        char list[CZ_STATE_LIST_LEN], want[CZ_STATE_LIST_LEN] = "{";
        cz_job_event_from_states((cz_job_event)e, list);
        for (int s = 0; s < CZ_JOB_STATE_COUNT; s++) {
            if (cz_job_transition((cz_job_state)s, (cz_job_event)e) < 0)
                continue;
            if (want[1])
                strcat(want, ",");
            strcat(want, cz_job_state_name((cz_job_state)s));
        }
        strcat(want, "}");
        assert_string_equal(list, want);
    }
    char list[CZ_STATE_LIST_LEN];
    cz_job_event_from_states(CZ_EV_STARTED, list);
    assert_string_equal(list, "{queued,dispatched}");
}

static void test_names_round_trip(void **state) {
    (void)state;
    for (int s = 0; s < CZ_JOB_STATE_COUNT; s++)
        assert_int_equal(cz_job_state_parse(cz_job_state_name((cz_job_state)s)), s);
    for (int e = 0; e < CZ_JOB_EVENT_COUNT; e++)
        assert_int_equal(cz_job_event_parse(cz_job_event_name((cz_job_event)e)), e);
    assert_int_equal(cz_job_state_parse("running"), -1);
    assert_int_equal(cz_job_event_parse(NULL), -1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_happy_path),
        cmocka_unit_test(test_terminal_states_absorb_everything),
        cmocka_unit_test(test_never_moves_backwards),
        cmocka_unit_test(test_skipping_forward_is_allowed),
        cmocka_unit_test(test_progress_only_while_running),
        cmocka_unit_test(test_review_and_cancel),
        cmocka_unit_test(test_retry_goes_back_to_queued),
        cmocka_unit_test(test_from_states_match_transitions),
        cmocka_unit_test(test_names_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
