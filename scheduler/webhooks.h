/* The webhook dispatcher: delivers due webhook deliveries over HTTP. */
#ifndef CZ_WEBHOOKS_H
#define CZ_WEBHOOKS_H

#include <stdatomic.h>

#include "common/config.h"
#include "common/err.h"

typedef struct cz_webhooks cz_webhooks;

/**
 * @brief Checks the webhook settings in @p cfg (allow-list, schedule) and
 * prepares a dispatcher. Call once, before any thread starts (it
 * initialises libcurl).
 * @returns the dispatcher (free with cz_webhooks_free), or NULL with @p err
 * saying which setting is wrong.
 */
cz_webhooks *cz_webhooks_new(const cz_config *cfg, cz_err *err);

/**
 * @brief Delivers until @p *stop is set: takes due deliveries from Postgres
 * (one active dispatcher at a time, by advisory lock), sends them through
 * libcurl's multi interface with bounded concurrency overall and per
 * receiver, and records every attempt. On stop, attempts in flight get two
 * seconds; any still running are abandoned unrecorded and will be sent
 * again.
 */
void cz_webhooks_run(cz_webhooks *w, atomic_bool *stop);

/** @brief Frees the dispatcher; NULL-safe. */
void cz_webhooks_free(cz_webhooks *w);

#endif
