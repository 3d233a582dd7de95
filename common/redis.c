/* Redis connections: see redis.h. */
#include "common/redis.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/mem.h"

#define CZ_REDIS_RETRY_MS 1000 /* pause after a failure before reconnecting */

redisContext *cz_redis_connect(const char *url, int timeout_ms, cz_err *err) {
    char host[256] = "127.0.0.1";
    int port = 6379, db = 0;
    if (strncmp(url, "redis://", 8)) {
        cz_err_set(err, "redis url must start with redis://: %s", url);
        return NULL;
    }
    if (sscanf(url + 8, "%255[^:/]:%d/%d", host, &port, &db) < 1) {
        cz_err_set(err, "cannot parse redis url %s", url);
        return NULL;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    redisContext *c = redisConnectWithTimeout(host, port, tv);
    if (!c || c->err) {
        cz_err_set(err, "cannot connect to Redis at %s:%d: %s", host, port,
                   c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    if (db) {
        redisReply *r = redisCommand(c, "SELECT %d", db);
        int bad = !r || r->type == REDIS_REPLY_ERROR;
        freeReplyObject(r);
        if (bad) {
            cz_err_set(err, "redis SELECT %d failed", db);
            redisFree(c);
            return NULL;
        }
    }
    return c;
}

int cz_redis_ping(redisContext *c, cz_err *err) {
    redisReply *r = redisCommand(c, "PING");
    int ok = r && r->type == REDIS_REPLY_STATUS && !strcmp(r->str, "PONG");
    freeReplyObject(r);
    if (!ok)
        return cz_err_set(err, "redis PING failed: %s", c->err ? c->errstr : "unexpected reply");
    return 0;
}

struct cz_redis_pool {
    char *url;
    int timeout_ms, size, idle;
    int64_t down_until; /* monotonic ms; no connecting before it (under lock) */
    pthread_mutex_t lock;
    redisContext **conns; /* conns[0..idle) are idle */
};

cz_redis_pool *cz_redis_pool_new(const char *url, int idle, int timeout_ms) {
    cz_redis_pool *p = cz_calloc(1, sizeof *p);
    p->conns = cz_calloc((size_t)idle, sizeof *p->conns);
    p->url = cz_strdup(url);
    p->size = idle;
    p->timeout_ms = timeout_ms;
    pthread_mutex_init(&p->lock, NULL);
    return p;
}

redisContext *cz_redis_borrow(cz_redis_pool *p, cz_err *err) {
    pthread_mutex_lock(&p->lock);
    redisContext *c = p->idle ? p->conns[--p->idle] : NULL;
    bool wait = !c && cz_mono_ms() < p->down_until;
    pthread_mutex_unlock(&p->lock);
    if (c)
        return c;
    if (wait) {
        cz_err_set(err, "Redis was unreachable less than a second ago");
        return NULL;
    }
    if (!(c = cz_redis_connect(p->url, p->timeout_ms, err))) {
        pthread_mutex_lock(&p->lock);
        p->down_until = cz_mono_ms() + CZ_REDIS_RETRY_MS;
        pthread_mutex_unlock(&p->lock);
    }
    return c;
}

void cz_redis_give_back(cz_redis_pool *p, redisContext *c) {
    if (!c)
        return;
    pthread_mutex_lock(&p->lock);
    if (c->err || p->idle == p->size)
        redisFree(c);
    else
        p->conns[p->idle++] = c;
    pthread_mutex_unlock(&p->lock);
}

void cz_redis_pool_free(cz_redis_pool *p) {
    if (!p)
        return;
    for (int i = 0; i < p->idle; i++)
        redisFree(p->conns[i]);
    pthread_mutex_destroy(&p->lock);
    free(p->conns);
    free(p->url);
    free(p);
}

redisReply *cz_redis_script(redisContext *c, const char *script, int nkeys, int argc,
                            const char **argv) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    char sha[41], keys[12];
    EVP_Digest(script, strlen(script), md, &n, EVP_sha1(), NULL);
    for (unsigned i = 0; i < n && i < 20; i++)
        snprintf(sha + 2 * i, 3, "%02x", md[i]);
    snprintf(keys, sizeof keys, "%d", nkeys);
    const char *args[3 + argc];
    args[0] = "EVALSHA", args[1] = sha, args[2] = keys;
    for (int i = 0; i < argc; i++)
        args[3 + i] = argv[i];
    redisReply *r = redisCommandArgv(c, 3 + argc, args, NULL);
    if (r && r->type == REDIS_REPLY_ERROR && !strncmp(r->str, "NOSCRIPT", 8)) {
        freeReplyObject(r);
        args[0] = "EVAL", args[1] = script;
        r = redisCommandArgv(c, 3 + argc, args, NULL);
    }
    return r;
}
