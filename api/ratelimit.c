/* Per-key token buckets in Redis: see ratelimit.h.
 *
 * Connections: a stack of at most `conns` idle hiredis contexts under a
 * mutex. A request thread borrows one for its one command; a context that
 * saw an error is freed instead of returned, and the next borrower opens a
 * new one. While Redis is unreachable, connecting is tried at most once a
 * second (down_until_ms); calls in between fail at once. */
#include "ratelimit.h"

#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/clock.h"
#include "../common/redis.h"

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
    char *url;
    int timeout_ms, size, idle;
    int64_t down_until_ms; /* no connecting before this (under lock) */
    char sha[2 * SHA_DIGEST_LENGTH + 1];
    pthread_mutex_t lock;
    redisContext **conns; /* conns[0..idle) are idle */
};

cz_ratelimit *cz_ratelimit_new(const char *redis_url, int conns, int timeout_ms) {
    cz_ratelimit *l = calloc(1, sizeof *l);
    if (!l || !(l->conns = calloc((size_t)conns, sizeof *l->conns)) ||
        !(l->url = strdup(redis_url))) {
        if (l)
            free(l->conns);
        free(l);
        return NULL;
    }
    l->size = conns;
    l->timeout_ms = timeout_ms;
    pthread_mutex_init(&l->lock, NULL);
    unsigned char d[SHA_DIGEST_LENGTH];
    SHA1((const unsigned char *)script, strlen(script), d);
    for (int i = 0; i < SHA_DIGEST_LENGTH; i++)
        snprintf(l->sha + 2 * i, 3, "%02x", d[i]);
    return l;
}

static redisContext *borrow(cz_ratelimit *l, cz_err *err) {
    pthread_mutex_lock(&l->lock);
    redisContext *c = l->idle ? l->conns[--l->idle] : NULL;
    bool wait = !c && cz_mono_ms() < l->down_until_ms;
    pthread_mutex_unlock(&l->lock);
    if (c)
        return c;
    if (wait) {
        cz_err_set(err, "Redis was unreachable less than a second ago");
        return NULL;
    }
    if (!(c = cz_redis_connect(l->url, l->timeout_ms, err))) {
        pthread_mutex_lock(&l->lock);
        l->down_until_ms = cz_mono_ms() + 1000;
        pthread_mutex_unlock(&l->lock);
    }
    return c;
}

static void give_back(cz_ratelimit *l, redisContext *c) {
    pthread_mutex_lock(&l->lock);
    if (c->err || l->idle == l->size) {
        redisFree(c);
    } else {
        l->conns[l->idle++] = c;
    }
    pthread_mutex_unlock(&l->lock);
}

int cz_ratelimit_take(cz_ratelimit *l, long long key_id, double rate, int burst, cz_rate_verdict *v,
                      cz_err *err) {
    redisContext *c = borrow(l, err);
    if (!c)
        return -1;
    char bucket[48], r[32], b[16];
    snprintf(bucket, sizeof bucket, "cadenza:rl:%lld", key_id);
    snprintf(r, sizeof r, "%.17g", rate);
    snprintf(b, sizeof b, "%d", burst);
    redisReply *rep = redisCommand(c, "EVALSHA %s 1 %s %s %s 1", l->sha, bucket, r, b);
    if (rep && rep->type == REDIS_REPLY_ERROR && !strncmp(rep->str, "NOSCRIPT", 8)) {
        freeReplyObject(rep);
        rep = redisCommand(c, "EVAL %s 1 %s %s %s 1", script, bucket, r, b);
    }
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
    give_back(l, c);
    return rc;
}

void cz_ratelimit_free(cz_ratelimit *l) {
    if (!l)
        return;
    for (int i = 0; i < l->idle; i++)
        redisFree(l->conns[i]);
    pthread_mutex_destroy(&l->lock);
    free(l->conns);
    free(l->url);
    free(l);
}
