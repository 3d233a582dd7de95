/* The prompt cache: see cache.h. */
#include "common/cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "common/redis.h"

/* KEYS[1] the model's version key, ARGV model, key. */
static const char lookup_lua[] =
    "local v = redis.call('GET', KEYS[1]) or ''\n"
    "local id = redis.call('GET', 'cz:cache:' .. ARGV[1] .. ':' .. v .. ':' .. ARGV[2])\n"
    "redis.call('HINCRBY', 'cz:cache:stats', id and 'hits' or 'misses', 1)\n"
    "return id\n";

/* KEYS[1] the model's version key, ARGV model, version, key, job id, ttl s,
 * max entries, now ms. An unknown model takes the version given. */
static const char store_lua[] =
    "local cur = redis.call('GET', KEYS[1])\n"
    "if cur and cur ~= ARGV[2] then return 0 end\n"
    "if not cur then redis.call('SET', KEYS[1], ARGV[2]) end\n"
    "local name = 'cz:cache:' .. ARGV[1] .. ':' .. ARGV[2] .. ':' .. ARGV[3]\n"
    "local ttl, max, now = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])\n"
    "redis.call('SET', name, ARGV[4], 'EX', ttl)\n"
    "redis.call('ZADD', 'cz:cache:index', now, name)\n"
    "redis.call('ZREMRANGEBYSCORE', 'cz:cache:index', '-inf', now - ttl * 1000)\n"
    "local extra = redis.call('ZCARD', 'cz:cache:index') - max\n"
    "if extra > 0 then\n"
    "  local old = redis.call('ZPOPMIN', 'cz:cache:index', extra)\n"
    "  for i = 1, #old, 2 do redis.call('DEL', old[i]) end\n"
    "end\n"
    "redis.call('HINCRBY', 'cz:cache:stats', 'stored', 1)\n"
    "return 1\n";

/* KEYS[1] the model's version key, ARGV model, version. */
static const char announce_lua[] =
    "if redis.call('GET', KEYS[1]) == ARGV[2] then return 0 end\n"
    "redis.call('SET', KEYS[1], ARGV[2])\n"
    "local prefix = 'cz:cache:' .. ARGV[1] .. ':'\n"
    "local keep = prefix .. ARGV[2] .. ':'\n"
    "local n = 0\n"
    "for _, name in ipairs(redis.call('ZRANGE', 'cz:cache:index', 0, -1)) do\n"
    "  if name:sub(1, #prefix) == prefix and name:sub(1, #keep) ~= keep then\n"
    "    redis.call('DEL', name)\n"
    "    redis.call('ZREM', 'cz:cache:index', name)\n"
    "    n = n + 1\n"
    "  end\n"
    "end\n"
    "redis.call('HINCRBY', 'cz:cache:stats', 'invalidated', n)\n"
    "return n\n";

/* Names may not hold the separator: a version "1:2" would read as two parts. */
static void clean(char *out, size_t n, const char *in) {
    snprintf(out, n, "%s", in ? in : "");
    for (char *p = out; *p; p++)
        if (*p == ':' || *p == ' ')
            *p = '_';
}

static void version_key(char *out, size_t n, const char *model) {
    snprintf(out, n, "cz:model-version:%s", model);
}

int cz_cache_lookup(redisContext *c, const char *model, const char *key, char *job_id, size_t n) {
    char m[128], vkey[160];
    clean(m, sizeof m, model);
    version_key(vkey, sizeof vkey, m);
    const char *argv[] = {vkey, m, key};
    redisReply *r = cz_redis_script(c, lookup_lua, 1, 3, argv);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        return -1;
    }
    int hit = r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < n;
    if (hit)
        snprintf(job_id, n, "%s", r->str);
    freeReplyObject(r);
    return hit;
}

static long integer_reply(redisReply *r) {
    long v = r && r->type == REDIS_REPLY_INTEGER ? (long)r->integer : -1;
    freeReplyObject(r);
    return v;
}

int cz_cache_store(redisContext *c, const char *model, const char *version, const char *key,
                   const char *job_id, int ttl_s, long max_entries) {
    char m[128], v[128], vkey[160], ttl[16], max[24], now[24];
    clean(m, sizeof m, model);
    clean(v, sizeof v, version);
    version_key(vkey, sizeof vkey, m);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    snprintf(max, sizeof max, "%ld", max_entries);
    snprintf(now, sizeof now, "%lld", (long long)tv.tv_sec * 1000 + tv.tv_usec / 1000);
    const char *argv[] = {vkey, m, v, key, job_id, ttl, max, now};
    return (int)integer_reply(cz_redis_script(c, store_lua, 1, 8, argv));
}

long cz_cache_announce(redisContext *c, const char *model, const char *version) {
    char m[128], v[128], vkey[160];
    clean(m, sizeof m, model);
    clean(v, sizeof v, version);
    version_key(vkey, sizeof vkey, m);
    const char *argv[] = {vkey, m, v};
    return integer_reply(cz_redis_script(c, announce_lua, 1, 3, argv));
}

int cz_cache_count(redisContext *c, const char *what) {
    redisReply *r = redisCommand(c, "HINCRBY cz:cache:stats %s 1", what);
    return integer_reply(r) < 0 ? -1 : 0;
}

cJSON *cz_cache_stats(redisContext *c) {
    static const char *const names[] = {"hits", "misses", "coalesced", "stored", "invalidated"};
    redisReply *r =
        redisCommand(c, "HMGET cz:cache:stats hits misses coalesced stored invalidated");
    redisReply *z = r ? redisCommand(c, "ZCARD cz:cache:index") : NULL;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 5 || !z ||
        z->type != REDIS_REPLY_INTEGER) {
        freeReplyObject(r);
        freeReplyObject(z);
        return NULL;
    }
    cJSON *o = cJSON_CreateObject();
    for (size_t i = 0; i < 5; i++)
        cJSON_AddNumberToObject(
            o, names[i],
            r->element[i]->type == REDIS_REPLY_STRING ? strtod(r->element[i]->str, NULL) : 0);
    cJSON_AddNumberToObject(o, "entries", (double)z->integer);
    freeReplyObject(r);
    freeReplyObject(z);
    return o;
}
