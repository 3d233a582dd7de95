/* The playlist service, shared by the API (answers requests) and the
 * scheduler (refreshes the most requested ones ahead of time).
 *
 * It owns an in-memory catalogue (track_index.h) that a thread keeps in
 * step with the `tracks` table, turns a canonical request into an answer
 * (taste from the listener's latest signals, the engine in playlist.h, the
 * JSON a client gets, stored in `playlists`), and keeps answers in Redis:
 *
 *   cz:pl:<hash>          the answer, with a TTL (CADENZA_PLAYLIST_TTL_S)
 *   cz:pl:req:<hash>      "tenant\n canonical request", so it can be remade
 *   cz:pl:popular         a sorted set: requests by recent demand
 *   cz:pl:user:<t>:<u>    the hashes of a listener's answers, dropped when
 *                         they send signals (their taste moved)
 *
 * where <hash> is the SHA-256 of the tenant and the canonical request.
 * Redis is a cache here like everywhere: without it every request is
 * computed, and nothing is lost. */
#ifndef CZ_PLAYLISTS_H
#define CZ_PLAYLISTS_H

#include <cjson/cJSON.h>
#include <hiredis/hiredis.h>
#include <libpq-fe.h>
#include <stdbool.h>

#include "common/err.h"
#include "common/hash.h"
#include "common/playlist/track_index.h"

#define CZ_PLAYLIST_SIGNALS 500 /* latest signals that make a taste */

typedef struct cz_playlists cz_playlists;

/**
 * @brief Starts following `tracks` at @p database_url every @p sync_ms.
 * @returns the service, or NULL with @p err filled.
 */
cz_playlists *cz_playlists_start(const char *database_url, int sync_ms, cz_err *err);

/** @brief Stops the follower and frees everything; NULL-safe. */
void cz_playlists_stop(cz_playlists *p);

/** @brief True once the catalogue has been read in full once. */
bool cz_playlists_ready(cz_playlists *p);

/** Why an answer could not be made. */
typedef enum {
    CZ_PL_OK,
    CZ_PL_UNKNOWN_TRACK, /* a seed track that does not exist for this tenant: the field says which
                          */
    CZ_PL_FAILED,        /* the database, or memory: err says */
} cz_pl_status;

/**
 * @brief Makes the answer to @p request (canonical, validated) for
 * @p tenant: reads the listener's signals on @p c, builds the playlist,
 * stores it in `playlists` and writes its JSON to *@p body (free it).
 * @p field receives the failing field for CZ_PL_UNKNOWN_TRACK.
 */
cz_pl_status cz_playlists_answer(cz_playlists *p, PGconn *c, const char *tenant,
                                 const cJSON *request, char **body, char field[64], cz_err *err);

/** @brief The cache key's hash for @p canonical request of @p tenant. */
void cz_playlists_hash(const char *tenant, const char *canonical, char out[CZ_SHA256_HEX]);

/**
 * @brief The cached answer for @p hash, or NULL (absent, or Redis failed);
 * either way the request is counted towards precomputation.
 */
char *cz_playlists_cached(redisContext *r, const char *hash);

/**
 * @brief Caches @p body under @p hash for @p ttl_s, remembers the request
 * (for refreshing) and the listener's answers (for invalidation). Best
 * effort: a failure only means the next request computes again.
 */
void cz_playlists_cache(redisContext *r, const char *hash, const char *tenant, const char *user,
                        const char *canonical, const char *body, int ttl_s);

/** @brief Drops the cached answers of listener @p user of @p tenant. */
void cz_playlists_forget_user(redisContext *r, const char *tenant, const char *user);

/**
 * @brief Remakes the answers of the @p top most requested requests whose
 * cache entry is missing or has less than @p ahead_s left, then lets the
 * demand decay (halving every few rounds). @returns how many were remade,
 * or -1 when Redis failed.
 */
int cz_playlists_refresh(cz_playlists *p, PGconn *c, redisContext *r, int top, int ttl_s,
                         int ahead_s, cz_err *err);

#endif
