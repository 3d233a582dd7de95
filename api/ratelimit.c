/* Per-key token buckets in Redis: see ratelimit.h. Connections come from
 * the API's Redis pool (common/redis.h), which also spares callers a
 * connect attempt per request while Redis is unreachable. */
#include "api/ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

/* KEYS[1]: the bucket. ARGV: rate (tokens/s), burst, cost.
 * Returns {allowed, remaining tokens, ms until a token, ms until full}.
 * Tokens are fractional; the bucket expires once it would be full anyway,
 * so idle keys leave nothing behind. */
static const char script[] =
    "local rate, burst, cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])\n"
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local b = redis.call('HMGET', KEYS[1], 'tokens', 'ts')\n"
    "local tokens, ts = tonumber(b[1]) or burst, tonumber(b[2]) or now\n"
    "tokens = math.min(burst, tokens + math.max(0, now - ts) * rate / 1000)\n"
    "local allowed, wait = 0, 0\n"
    "if tokens >= cost then\n"
    "  tokens = tokens - cost\n"
    "  allowed = 1\n"
    "else\n"
    "  wait = math.ceil((cost - tokens) * 1000 / rate)\n"
    "end\n"
    "local full = math.ceil((burst - tokens) * 1000 / rate)\n"
    "redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', now)\n"
    "redis.call('PEXPIRE', KEYS[1], full + 1000)\n"
    "return {allowed, math.floor(tokens), wait, full}\n";

struct cz_ratelimit {
    cz_redis_pool *redis;
};

cz_ratelimit *cz_ratelimit_new(cz_redis_pool *redis) {
    cz_ratelimit *l = cz_calloc(1, sizeof *l);
    l->redis = redis;
    return l;
}

int cz_ratelimit_take(cz_ratelimit *l, long long key_id, double rate, int burst, cz_rate_verdict *v,
                      cz_err *err) {
    redisContext *c = cz_redis_borrow(l->redis, err);
    if (!c)
        return -1;
    char bucket[48], r[32], b[16];
    snprintf(bucket, sizeof bucket, "cadenza:rl:%lld", key_id);
    snprintf(r, sizeof r, "%.17g", rate);
    snprintf(b, sizeof b, "%d", burst);
    const char *argv[] = {bucket, r, b, "1"};
    redisReply *rep = cz_redis_script(c, script, 1, 4, argv);
    int rc = -1;
    if (!rep) {
        cz_err_set(err, "Redis: %s", c->errstr);
    } else if (rep->type != REDIS_REPLY_ARRAY || rep->elements != 4) {
        cz_err_set(err, "Redis: unexpected reply to the rate limit script%s%s",
                   rep->type == REDIS_REPLY_ERROR ? ": " : "",
                   rep->type == REDIS_REPLY_ERROR ? rep->str : "");
    } else {
        v->allowed = rep->element[0]->integer == 1;
        v->limit = burst;
        v->remaining = (int)rep->element[1]->integer;
        v->retry_after_s = (int)((rep->element[2]->integer + 999) / 1000);
        v->reset_s = (int)((rep->element[3]->integer + 999) / 1000);
        if (!v->allowed && v->retry_after_s < 1)
            v->retry_after_s = 1;
        rc = 0;
    }
    freeReplyObject(rep);
    cz_redis_give_back(l->redis, c);
    return rc;
}

void cz_ratelimit_free(cz_ratelimit *l) {
    free(l);
}
