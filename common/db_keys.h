/* SQL for tenants and API keys. A key is "cz_" followed by 40 hex digits of
 * randomness; only its SHA-256 is stored. Lookups go by the hash, so the
 * database never compares secrets and the time a lookup takes tells nothing
 * about the key (the index orders hashes, not keys). */
#ifndef CZ_DB_KEYS_H
#define CZ_DB_KEYS_H

#include <libpq-fe.h>

#include "err.h"

#define CZ_KEY_LEN 44 /* "cz_" + 40 hex + NUL */
#define CZ_TENANT_MAX 64
#define CZ_ROLE_MAX 16

/**
 * @brief Creates a key with @p role for @p tenant (created if new) and writes
 * the secret into @p key. The secret exists only in @p key from here on.
 * @returns 0, or -1 with @p err filled (e.g. an unknown role).
 */
int cz_db_key_create(PGconn *c, const char *tenant, const char *role, char key[CZ_KEY_LEN],
                     cz_err *err);

/**
 * @brief Finds the tenant and role of an unrevoked @p key.
 * @returns 1 found, 0 unknown or revoked, -1 with @p err filled.
 */
int cz_db_key_lookup(PGconn *c, const char *key, char tenant[CZ_TENANT_MAX], char role[CZ_ROLE_MAX],
                     cz_err *err);

#endif
