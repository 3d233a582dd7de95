/* Redis connections (hiredis). Redis is a cache and a signal bus, never the
 * system of record: every caller must cope with it being down. */
#ifndef CZ_REDIS_H
#define CZ_REDIS_H

#include <hiredis/hiredis.h>
#include <stdint.h>

#include "common/err.h"

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
 * A pool of connections shared by threads: a thread borrows one for a few
 * commands and gives it back. Connections open on first need; one that saw
 * an error is closed when given back. While Redis is unreachable, a connect
 * is tried at most once a second and borrowing fails at once in between,
 * so an outage costs callers a flag check, not a timeout each.
 */
typedef struct cz_redis_pool cz_redis_pool;

/**
 * @brief A pool for @p url keeping up to @p idle idle connections, each
 * command bounded by @p timeout_ms. @returns it; free with cz_redis_pool_free.
 */
cz_redis_pool *cz_redis_pool_new(const char *url, int idle, int timeout_ms);

/** @brief A connection, or NULL with @p err filled while Redis is unreachable. */
redisContext *cz_redis_borrow(cz_redis_pool *p, cz_err *err);

/** @brief Returns @p c (NULL-safe); a connection that failed is closed instead. */
void cz_redis_give_back(cz_redis_pool *p, redisContext *c);

/** @brief Closes every idle connection and frees @p p; NULL-safe. */
void cz_redis_pool_free(cz_redis_pool *p);

/**
 * @brief Runs a Lua @p script by EVALSHA (its SHA-1 computed here), loading it
 * with EVAL when Redis does not know it yet. @p argv holds @p nkeys key names
 * and then the other arguments, @p argc in all.
 * @returns the reply (freeReplyObject it), or NULL when the connection failed.
 */
redisReply *cz_redis_script(redisContext *c, const char *script, int nkeys, int argc,
                            const char **argv);

#endif
