/* The prompt cache in Redis: which succeeded job a repeated request can
 * reuse.
 *
 * An entry maps a request's cache key (see api/request.c: a hash of the
 * tenant and of every field that shapes the audio) to the first job that
 * produced it, under the model and the model version that made it:
 *   cz:cache:<model>:<version>:<key>  ->  job id        (expires after a TTL)
 * The current version of each model is cz:model-version:<model>; a lookup
 * reads only entries of that version, so a new version invalidates every
 * older entry at once (and cz_cache_announce() deletes them). The sorted
 * set cz:cache:index orders entries by age and bounds their number; the
 * hash cz:cache:stats counts hits, misses, coalesced requests, stores and
 * invalidations. Each operation is one Lua script, so it is atomic and one
 * round trip.
 *
 * Redis is only a cache: the job rows in Postgres stay the truth, and every
 * caller treats an error as a miss. */
#ifndef CZ_CACHE_H
#define CZ_CACHE_H

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <stddef.h>

#define CZ_CACHE_DEFAULT_TTL_S (7 * 24 * 3600)
#define CZ_CACHE_DEFAULT_MAX_ENTRIES 100000

/**
 * @brief Looks up @p key for @p model at the model's current version; counts
 * a hit or a miss.
 * @returns 1 with the source job's id in @p job_id, 0 on a miss, -1 when
 * Redis failed (the connection should be dropped).
 */
int cz_cache_lookup(redisContext *c, const char *model, const char *key, char *job_id, size_t n);

/**
 * @brief Remembers that @p job_id, made by @p model at @p version, answers
 * @p key, for @p ttl_s seconds, keeping at most @p max_entries entries (the
 * oldest go first). Nothing is stored when @p version is older than the
 * model's current one.
 * @returns 1 stored, 0 not stored, -1 when Redis failed.
 */
int cz_cache_store(redisContext *c, const char *model, const char *version, const char *key,
                   const char *job_id, int ttl_s, long max_entries);

/**
 * @brief Records that @p model now answers as @p version; when that is a
 * change, deletes the model's entries of every other version.
 * @returns how many entries were invalidated, or -1 when Redis failed.
 */
long cz_cache_announce(redisContext *c, const char *model, const char *version);

/** @brief Adds one to the counter @p what ("coalesced", ...). @returns 0, or -1. */
int cz_cache_count(redisContext *c, const char *what);

/**
 * @brief The counters and the number of entries, as a JSON object
 * {"hits":..,"misses":..,"coalesced":..,"stored":..,"invalidated":..,"entries":..}.
 * @returns the object (caller frees), or NULL when Redis failed.
 */
cJSON *cz_cache_stats(redisContext *c);

#endif
