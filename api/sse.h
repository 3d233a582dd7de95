/* Live job events: GET /v1/jobs/{id}/events as Server-Sent Events.
 *
 * A job's history in Postgres (job_events: every state change and every
 * progress report, in order, each with an id) is what a stream sends; the
 * SSE id of an event is its row id, so a client that reconnects with
 * Last-Event-ID gets exactly the events after it. A stream opened without
 * Last-Event-ID starts with the job's submission (id 0, state queued).
 *
 * One hub thread per API process serves every stream: it subscribes to the
 * scheduler's announcements on Redis pub/sub (CZ_JOB_CHANNEL<id>) and, when
 * a job is announced, reads that job's new history rows and queues them on
 * its streams; each stream's connection thread (the API runs a thread per
 * connection) waits for queued bytes and sends them. The hub also reads
 * every stream's job every few seconds (changes that were not announced),
 * and every half second while Redis is down, so streams keep flowing on
 * Postgres alone. Idle streams get a comment line every heartbeat interval;
 * a stream ends after the event that puts its job in a terminal state. */
#ifndef CZ_SSE_H
#define CZ_SSE_H

#include "api/http.h"

typedef struct cz_sse cz_sse;

/** @brief Starts the hub thread. @returns the hub, or NULL with @p err filled. */
cz_sse *cz_sse_start(const cz_config *cfg, cz_err *err);

/**
 * @brief Ends every stream so their connections can close, and stops the
 * thread. Call before MHD_stop_daemon; free with cz_sse_free after it.
 */
void cz_sse_stop(cz_sse *hub);

/** @brief Frees the hub after MHD_stop_daemon. NULL-safe. */
void cz_sse_free(cz_sse *hub);

/** @brief GET /v1/jobs/{id}/events. */
enum MHD_Result cz_api_jobs_events_get(cz_api *api, cz_http_req *r, const char *id);

#endif
