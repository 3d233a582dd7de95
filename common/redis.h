/* Redis connections (hiredis). Redis is a cache and a signal bus, never the
 * system of record: every caller must cope with it being down. */
#ifndef CZ_REDIS_H
#define CZ_REDIS_H

#include <hiredis/hiredis.h>

#include "err.h"

/**
 * @brief Connects to a redis://host:port[/db] @p url with @p timeout_ms for
 * connecting and for each command.
 * @returns the context (redisFree it), or NULL with @p err filled.
 */
redisContext *cz_redis_connect(const char *url, int timeout_ms, cz_err *err);

/** @brief Sends PING. @returns 0 on PONG, or -1 with @p err filled. */
int cz_redis_ping(redisContext *c, cz_err *err);

#endif
