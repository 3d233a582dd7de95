/* Redis connections (hiredis). Redis is a cache and a signal bus, never the
 * system of record: every caller must cope with it being down. */
#ifndef CZ_REDIS_H
#define CZ_REDIS_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "err.h"

/* The pub/sub channel prefix on which a job's changes are announced (the
 * job id follows); the message itself carries nothing: the history in
 * Postgres is the truth, the message only says "look again". */
#define CZ_JOB_CHANNEL "cz:job:"

/**
 * @brief Connects to a redis://host:port[/db] @p url with @p timeout_ms for
 * connecting and for each command.
 * @returns the context (redisFree it), or NULL with @p err filled.
 */
redisContext *cz_redis_connect(const char *url, int timeout_ms, cz_err *err);

/** @brief Sends PING. @returns 0 on PONG, or -1 with @p err filled. */
int cz_redis_ping(redisContext *c, cz_err *err);

/**
 * A connection opened on first use and reopened after a failure, but not
 * before a pause: while Redis is down, callers get NULL at once instead of
 * paying a connect timeout on every request. One thread uses a link.
 */
typedef struct cz_redis_link {
    const char *url;
    int timeout_ms;   /* for connecting and for each command */
    redisContext *c;  /* NULL while closed */
    int64_t retry_at; /* monotonic ms before which no connect is tried */
} cz_redis_link;

/** @brief The open connection, opening it if the pause is over; NULL while down. */
redisContext *cz_redis_link_get(cz_redis_link *l);

/** @brief Closes a connection that failed a command; the next get waits a second. */
void cz_redis_link_broken(cz_redis_link *l);

/** @brief Closes the link. */
void cz_redis_link_close(cz_redis_link *l);

/**
 * @brief Runs a Lua @p script by EVALSHA (its SHA-1 computed here), loading it
 * with EVAL when Redis does not know it yet. @p argv holds @p nkeys key names
 * and then the other arguments, @p argc in all.
 * @returns the reply (freeReplyObject it), or NULL when the connection failed.
 */
redisReply *cz_redis_script(redisContext *c, const char *script, int nkeys, int argc,
                            const char **argv);

#endif
