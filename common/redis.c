/* Redis connections: see redis.h. */
#include "redis.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"

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

redisContext *cz_redis_link_get(cz_redis_link *l) {
    if (l->c)
        return l->c;
    int64_t now = cz_mono_ms();
    if (now < l->retry_at)
        return NULL;
    cz_err err;
    if (!(l->c = cz_redis_connect(l->url, l->timeout_ms, &err))) {
        cz_log_debug("redis unavailable: %s", err.msg);
        l->retry_at = now + CZ_REDIS_RETRY_MS;
    }
    return l->c;
}

void cz_redis_link_broken(cz_redis_link *l) {
    redisFree(l->c);
    l->c = NULL;
    l->retry_at = cz_mono_ms() + CZ_REDIS_RETRY_MS;
}

void cz_redis_link_close(cz_redis_link *l) {
    redisFree(l->c);
    l->c = NULL;
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
