/* A short-lived in-process cache of authenticated keys.
 *
 * Every request presents a key, and looking it up costs a Postgres round
 * trip and a query: at submission rates, as much database work as storing
 * the job. The cache keeps what a successful lookup found for a short time
 * (CADENZA_API_KEY_CACHE_MS, default 1000 ms; 0 turns it off), so a busy
 * key is looked up about once per period. The price is that revoking a key,
 * changing its limits or its tenant's quota takes effect in each API process
 * within that period rather than at once. Unknown keys are never cached:
 * a new key works at once, and garbage keys cannot fill the cache.
 *
 * Entries are found by the key's prefix (not secret) and accepted only when
 * the SHA-256 of the whole presented key equals the cached digest, compared
 * with CRYPTO_memcmp, for the reason given in common/db/keys.c. */
#ifndef CZ_KEYCACHE_H
#define CZ_KEYCACHE_H

#include "common/db/keys.h"

typedef struct cz_keycache cz_keycache;

/** @brief A cache keeping entries for @p ttl_ms. @returns it; free with cz_keycache_free. */
cz_keycache *cz_keycache_new(int ttl_ms);

/** @brief Fills @p out for @p key if a fresh entry matches. @returns 1 hit, 0 miss. */
int cz_keycache_get(cz_keycache *kc, const char *key, cz_key_info *out);

/** @brief Remembers that @p key is @p info (after a successful lookup). */
void cz_keycache_put(cz_keycache *kc, const char *key, const cz_key_info *info);

/** @brief Frees @p kc; NULL-safe. */
void cz_keycache_free(cz_keycache *kc);

#endif
