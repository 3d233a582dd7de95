/* Per-key rate limits: a token bucket per API key, kept in Redis and
 * updated by one Lua script, so that every API process sees the same
 * bucket and a request costs one round trip.
 *
 * A bucket holds at most `burst` tokens and refills at `rate` tokens per
 * second; each request takes one. The script reads Redis's own clock
 * (TIME), so the API processes' clocks need not agree. It is sent by its
 * SHA-1 (EVALSHA); a Redis that does not know it yet (a restart, a
 * failover, SCRIPT FLUSH) answers NOSCRIPT and gets the script itself once
 * (EVAL, which also caches it).
 *
 * When Redis cannot be asked (down, slow beyond the timeout), the
 * configured behaviour decides (CADENZA_RATE_LIMIT_REDIS_DOWN): fail open
 * (serve without a limit, the default: Redis is a cache, never a reason to
 * refuse paying clients) or fail closed (refuse with 503). After a failed
 * connection the limiter does not try again for a second, so an outage
 * costs requests nothing but a flag check. */
#ifndef CZ_RATELIMIT_H
#define CZ_RATELIMIT_H

#include <stdbool.h>

#include "common/err.h"
#include "common/redis.h"

typedef struct cz_ratelimit cz_ratelimit;

/** One request's verdict, with the figures the RateLimit-* headers carry. */
typedef struct cz_rate_verdict {
    bool allowed;
    int limit;         /* the bucket's size (burst) */
    int remaining;     /* whole tokens left after this request */
    int reset_s;       /* seconds until the bucket is full again */
    int retry_after_s; /* when refused: seconds until a token is there */
} cz_rate_verdict;

/**
 * @brief A limiter using connections from @p redis (each call bounded by
 * the pool's timeout). @returns it; free with cz_ratelimit_free.
 */
cz_ratelimit *cz_ratelimit_new(cz_redis_pool *redis);

/**
 * @brief Takes one token from the bucket of key @p key_id (@p rate per
 * second, @p burst at most). Thread-safe.
 * @returns 0 with @p v filled, or -1 with @p err when Redis could not be
 * asked (the caller applies the configured fail-open/closed behaviour).
 */
int cz_ratelimit_take(cz_ratelimit *l, long long key_id, double rate, int burst, cz_rate_verdict *v,
                      cz_err *err);

/** @brief Frees @p l (not its pool); NULL-safe. */
void cz_ratelimit_free(cz_ratelimit *l);

#endif
