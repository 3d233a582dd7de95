/* The job state machine, as data.
 *
 *   queued -> dispatched -> generating -> generated -> postprocessing -> succeeded
 *                                                          \-> in_review -> succeeded | rejected
 *   failed and canceled are reachable from every state that is not terminal.
 *
 * Every change of state is caused by an event: the outbox relay's dispatch, a
 * worker's status event, a curator's decision or a cancel request. Each event
 * names its target state and the set of states it may move a job from. The
 * sets include every earlier state, not only the one just before, because
 * Kafka may deliver a later stage's event before an earlier stage's (two
 * producers, one topic) and the relay may crash after publishing but before
 * recording the dispatch: moving forward is always safe, moving back never.
 * A duplicate or late event finds its job outside the set and is a no-op.
 *
 * The one way back is a retry: a failed attempt sends the job to queued with
 * attempt + 1. Every event names its attempt and the guard matches it, so
 * whatever the earlier attempt still says afterwards is a no-op too.
 *
 * The scheduler turns a transition into `UPDATE jobs ... WHERE state = ANY(from)
 * AND attempt = $n`, so Postgres enforces the same rule under concurrency. */
#ifndef CZ_JOB_STATE_H
#define CZ_JOB_STATE_H

#include <stdbool.h>

typedef enum cz_job_state {
    CZ_JOB_QUEUED,
    CZ_JOB_DISPATCHED,
    CZ_JOB_GENERATING,
    CZ_JOB_GENERATED,
    CZ_JOB_POSTPROCESSING,
    CZ_JOB_IN_REVIEW,
    CZ_JOB_SUCCEEDED,
    CZ_JOB_FAILED,
    CZ_JOB_CANCELED,
    CZ_JOB_REJECTED,
    CZ_JOB_STATE_COUNT
} cz_job_state;

typedef enum cz_job_event {
    CZ_EV_DISPATCHED,   /* relay: the generate message is on Kafka */
    CZ_EV_STARTED,      /* inference worker took the job */
    CZ_EV_PROGRESS,     /* any worker: still alive, n% done (no change of state) */
    CZ_EV_GENERATED,    /* inference worker: raw audio is in the artifact store */
    CZ_EV_POST_STARTED, /* post worker took the job */
    CZ_EV_POST_DONE,    /* post worker: master written, QA passed */
    CZ_EV_NEEDS_REVIEW, /* post worker: master written, a rule flagged it */
    CZ_EV_FAILED,       /* the attempt failed and will not be retried */
    CZ_EV_RETRY,        /* the attempt failed; the next one is queued (attempt + 1) */
    CZ_EV_APPROVED,     /* curator */
    CZ_EV_REJECTED,     /* curator */
    CZ_EV_CANCEL,       /* client */
    CZ_JOB_EVENT_COUNT
} cz_job_event;

/** @brief The wire name of @p s ("queued", ...). */
const char *cz_job_state_name(cz_job_state s);

/** @brief Parses a state name. @returns the state, or -1 if unknown. */
int cz_job_state_parse(const char *name);

/** @brief True for succeeded, failed, canceled and rejected. */
bool cz_job_state_terminal(cz_job_state s);

/** @brief The wire name of @p e ("started", ...). */
const char *cz_job_event_name(cz_job_event e);

/** @brief Parses an event name. @returns the event, or -1 if unknown. */
int cz_job_event_parse(const char *name);

/**
 * @brief Where event @p e takes a job that is in state @p from.
 * @returns the new state (equal to @p from for progress), or -1 when the event
 * does not apply in that state (a duplicate, a late event, a terminal job).
 */
int cz_job_transition(cz_job_state from, cz_job_event e);

/**
 * @brief The state event @p e moves a job to.
 * @returns the target state, or -1 for progress (which changes no state).
 */
int cz_job_event_target(cz_job_event e);

/* Long enough for every state name, comma-separated, in braces. */
#define CZ_STATE_LIST_LEN 160

/**
 * @brief Writes the states event @p e applies in as a Postgres text[] literal
 * such as "{queued,dispatched}" into @p out, for `state = ANY($n::text[])`.
 */
void cz_job_event_from_states(cz_job_event e, char out[CZ_STATE_LIST_LEN]);

#endif
