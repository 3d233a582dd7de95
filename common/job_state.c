/* The job state machine: see job_state.h for the rules and why. */
#include "common/job_state.h"

#include <string.h>

static const char *state_names[CZ_JOB_STATE_COUNT] = {
    "queued",    "dispatched", "generating", "generated", "postprocessing",
    "in_review", "succeeded",  "failed",     "canceled",  "rejected",
};

static const char *event_names[CZ_JOB_EVENT_COUNT] = {
    "dispatched",   "started", "progress", "generated", "post_started", "post_done",
    "needs_review", "failed",  "retry",    "approved",  "rejected",     "cancel",
};

#define BIT(s) (1u << (s))
/* The worker stages up to and including stage s, in pipeline order. */
#define UP_TO(s) ((BIT(s) << 1) - 1)
#define RUNNING (BIT(CZ_JOB_GENERATING) | BIT(CZ_JOB_POSTPROCESSING))
#define NOT_TERMINAL (UP_TO(CZ_JOB_POSTPROCESSING) | BIT(CZ_JOB_IN_REVIEW))

/* A target of -1 means "stay where you are" (progress). */
static const struct rule {
    unsigned from;
    int to;
} rules[CZ_JOB_EVENT_COUNT] = {
    [CZ_EV_DISPATCHED] = {BIT(CZ_JOB_QUEUED), CZ_JOB_DISPATCHED},
    [CZ_EV_STARTED] = {UP_TO(CZ_JOB_DISPATCHED), CZ_JOB_GENERATING},
    [CZ_EV_PROGRESS] = {RUNNING, -1},
    [CZ_EV_GENERATED] = {UP_TO(CZ_JOB_GENERATING), CZ_JOB_GENERATED},
    [CZ_EV_POST_STARTED] = {UP_TO(CZ_JOB_GENERATED), CZ_JOB_POSTPROCESSING},
    [CZ_EV_POST_DONE] = {UP_TO(CZ_JOB_POSTPROCESSING), CZ_JOB_SUCCEEDED},
    [CZ_EV_NEEDS_REVIEW] = {UP_TO(CZ_JOB_POSTPROCESSING), CZ_JOB_IN_REVIEW},
    [CZ_EV_FAILED] = {UP_TO(CZ_JOB_POSTPROCESSING), CZ_JOB_FAILED},
    [CZ_EV_RETRY] = {UP_TO(CZ_JOB_POSTPROCESSING), CZ_JOB_QUEUED},
    [CZ_EV_APPROVED] = {BIT(CZ_JOB_IN_REVIEW), CZ_JOB_SUCCEEDED},
    [CZ_EV_REJECTED] = {BIT(CZ_JOB_IN_REVIEW), CZ_JOB_REJECTED},
    [CZ_EV_CANCEL] = {NOT_TERMINAL, CZ_JOB_CANCELED},
};

const char *cz_job_state_name(cz_job_state s) {
    return (unsigned)s < CZ_JOB_STATE_COUNT ? state_names[s] : "unknown";
}

int cz_job_state_parse(const char *name) {
    for (int i = 0; name && i < CZ_JOB_STATE_COUNT; i++)
        if (!strcmp(name, state_names[i]))
            return i;
    return -1;
}

bool cz_job_state_terminal(cz_job_state s) {
    return s == CZ_JOB_SUCCEEDED || s == CZ_JOB_FAILED || s == CZ_JOB_CANCELED ||
           s == CZ_JOB_REJECTED;
}

const char *cz_job_event_name(cz_job_event e) {
    return (unsigned)e < CZ_JOB_EVENT_COUNT ? event_names[e] : "unknown";
}

int cz_job_event_parse(const char *name) {
    for (int i = 0; name && i < CZ_JOB_EVENT_COUNT; i++)
        if (!strcmp(name, event_names[i]))
            return i;
    return -1;
}

int cz_job_transition(cz_job_state from, cz_job_event e) {
    if ((unsigned)from >= CZ_JOB_STATE_COUNT || (unsigned)e >= CZ_JOB_EVENT_COUNT)
        return -1;
    if (!(rules[e].from & BIT(from)))
        return -1;
    return rules[e].to < 0 ? (int)from : rules[e].to;
}

int cz_job_event_target(cz_job_event e) {
    return (unsigned)e < CZ_JOB_EVENT_COUNT ? rules[e].to : -1;
}

void cz_job_event_from_states(cz_job_event e, char out[CZ_STATE_LIST_LEN]) {
    size_t n = 0;
    out[n++] = '{';
    for (int st = 0; (unsigned)e < CZ_JOB_EVENT_COUNT && st < CZ_JOB_STATE_COUNT; st++) {
        if (!(rules[e].from & BIT(st)))
            continue;
        if (n > 1)
            out[n++] = ',';
        size_t len = strlen(state_names[st]);
        memcpy(out + n, state_names[st], len);
        n += len;
    }
    out[n++] = '}';
    out[n] = '\0';
}
