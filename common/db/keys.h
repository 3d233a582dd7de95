/* SQL for tenants and API keys. A key is "cz_" followed by 40 hex digits of
 * randomness; only its SHA-256 is stored, beside the key's first 11
 * characters (its prefix), which name the key in listings and logs and are
 * how a presented key is found. Each key has a role, and may have its own
 * rate limit; a tenant may have a monthly quota of generated audio, and a
 * review policy (every track reviewed, or only those QA flags). */
#ifndef CZ_DB_KEYS_H
#define CZ_DB_KEYS_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "common/err.h"

#define CZ_KEY_LEN 44    /* "cz_" + 40 hex + NUL */
#define CZ_KEY_PREFIX 11 /* "cz_" + 8 hex: not secret, indexed */
#define CZ_TENANT_MAX 64
#define CZ_ROLE_MAX 16

/** Who a key is, as the API needs it for every request. */
typedef struct cz_key_info {
    long long id;
    char tenant[CZ_TENANT_MAX];
    char role[CZ_ROLE_MAX];
    double rate_per_s;    /* the key's own limit, 0 for the API's default */
    int rate_burst;       /* the key's own burst, 0 for the API's default */
    double quota_minutes; /* the tenant's monthly quota, < 0 for none */
    bool review_always;   /* the tenant has every track reviewed (review_policy) */
} cz_key_info;

/** Options of a new key; zero values take the defaults. */
typedef struct cz_key_options {
    double rate_per_s;
    int rate_burst;
} cz_key_options;

/**
 * @brief Creates a key with @p role for @p tenant (created if new) and writes
 * the secret into @p key and its id into @p id. The secret exists only in
 * @p key from here on.
 * @returns 0, or -1 with @p err filled (e.g. an unknown role).
 */
int cz_db_key_create(PGconn *c, const char *tenant, const char *role, const cz_key_options *opt,
                     char key[CZ_KEY_LEN], long long *id, cz_err *err);

/**
 * @brief Finds an unrevoked @p key: by its prefix, then by comparing the
 * SHA-256 of the whole key with the stored one in constant time.
 * @returns 1 found (with @p out filled), 0 unknown or revoked, -1 with @p err.
 */
int cz_db_key_lookup(PGconn *c, const char *key, cz_key_info *out, cz_err *err);

/**
 * @brief Lists keys (of @p tenant, or all when NULL), oldest first, as a JSON
 * array of {id, prefix, tenant, role, rate_per_s, rate_burst, created_at,
 * revoked_at}. @returns the text (caller frees), or NULL with @p err.
 */
char *cz_db_key_list(PGconn *c, const char *tenant, cz_err *err);

/**
 * @brief Revokes the key named by its numeric id or its prefix. A revoked
 * key is refused from the next request on.
 * @returns 1 revoked, 0 no such unrevoked key, 2 the prefix names several
 * keys (nothing revoked: use the id), -1 with @p err.
 */
int cz_db_key_revoke(PGconn *c, const char *id_or_prefix, cz_err *err);

/**
 * @brief Sets @p tenant's monthly quota of generated audio in minutes; a
 * negative value removes it. @returns 1 set, 0 no such tenant, -1 with @p err.
 */
int cz_db_tenant_set_quota(PGconn *c, const char *tenant, double minutes, cz_err *err);

/**
 * @brief Whether @p tenant has every track reviewed (review_policy 'always').
 * @returns 0 with @p always set (false for an unknown tenant), or -1 with @p err.
 */
int cz_db_tenant_review_policy(PGconn *c, const char *tenant, bool *always, cz_err *err);

/**
 * @brief Sets @p tenant's review policy to @p policy ("auto" or "always").
 * @returns 1 set, 0 no such tenant, -1 with @p err (an unknown policy too).
 */
int cz_db_tenant_set_review_policy(PGconn *c, const char *tenant, const char *policy, cz_err *err);

#endif
