/* Redis connections: see redis.h. */
#include "redis.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
