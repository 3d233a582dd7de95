/* Status events on cadenza.jobs.events: the one message schema workers write
 * and the scheduler reads.
 *
 *   {"schema": 1, "type": "generated", "job_id": "...", "attempt": 1,
 *    "at": "2026-11-21T10:00:00.000Z", "worker": "host:pid",
 *    "stage": "render", "percent": 40.0,          -- progress
 *    "compute_ms": 812,                            -- work done by this stage
 *    "artifacts": [{"kind", "name", "format", "uri", "sha256", "bytes", "duration_s"}],
 *    "qa": {...},                                  -- post_done / needs_review
 *    "failure": {"class": "model_error", "detail": "..."}}   -- failed
 *
 * Readers ignore fields they do not know, so fields can be added without a
 * schema bump; removing or changing one needs schema 2. */
#ifndef CZ_EVENT_H
#define CZ_EVENT_H

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/ids.h"
#include "common/job_state.h"

#define CZ_EVENT_SCHEMA 1

typedef struct cz_event {
    cJSON *root; /* the whole message; fields below point into it */
    cz_job_event type;
    char job_id[CZ_UUID_LEN];
    int attempt;
    const char *worker; /* who sent it: host:pid, or the scheduler's own */
    const char *stage;
    double percent;
    long long compute_ms;
    const cJSON *artifacts; /* array or NULL */
    const cJSON *qa;        /* object or NULL */
    const char *failure_class;
    const char *failure_detail;
} cz_event;

/**
 * @brief Starts an event message of @p type for @p job_id / @p attempt, with
 * schema, time and @p worker filled in. Add fields, then print and free it.
 * @returns a new cJSON object the caller frees with cJSON_Delete().
 */
cJSON *cz_event_new(cz_job_event type, const char *job_id, int attempt, const char *worker);

/**
 * @brief Parses and checks an event message.
 * @returns 0 with @p ev filled (free with cz_event_free), or -1 with @p err.
 */
int cz_event_parse(const char *json, size_t len, cz_event *ev, cz_err *err);

/** @brief Frees what cz_event_parse() allocated. */
void cz_event_free(cz_event *ev);

#endif
