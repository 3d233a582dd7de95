/* SQL for tenants and API keys: see db_keys.h.
 *
 * Why the key is found by prefix and compared in constant time. A lookup
 * WHERE key_hash = $1 lets Postgres compare the presented key's hash with
 * stored ones through a B-tree, in time that depends on how many leading
 * bytes match. Hashing first already makes that leak hard to use (an
 * attacker does not choose the hash's bytes), but it is still a comparison
 * of secret-derived values whose timing the network can observe, and it
 * would become a real leak the day someone "optimises" it into a lookup by
 * the key itself or caches keys in memory. So the database is asked only
 * about the prefix, which is public (it is printed in listings and logs),
 * and the secret part is judged here with CRYPTO_memcmp over the two
 * digests: its time depends on neither. Every candidate with the prefix is
 * compared, so the number of comparisons does not depend on where a match
 * is either. */
#include "common/db/keys.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db/db.h"
#include "common/hash.h"
#include "common/ids.h"
#include "common/mem.h"

int cz_db_key_create(PGconn *c, const char *tenant, const char *role, const cz_key_options *opt,
                     char key[CZ_KEY_LEN], long long *id, cz_err *err) {
    unsigned char raw[20];
    char hex[41], hash[CZ_SHA256_HEX], prefix[CZ_KEY_PREFIX + 1], rate[32] = "", burst[16] = "";
    cz_random_bytes(raw, sizeof raw);
    cz_hex(raw, sizeof raw, hex);
    snprintf(key, CZ_KEY_LEN, "cz_%s", hex);
    cz_sha256_hex(key, strlen(key), hash);
    snprintf(prefix, sizeof prefix, "%.*s", CZ_KEY_PREFIX, key);
    if (opt && opt->rate_per_s > 0)
        snprintf(rate, sizeof rate, "%.17g", opt->rate_per_s);
    if (opt && opt->rate_burst > 0)
        snprintf(burst, sizeof burst, "%d", opt->rate_burst);
    const char *p[] = {tenant, hash, prefix, role, *rate ? rate : NULL, *burst ? burst : NULL};
    PGresult *r =
        cz_db_query(c,
                    "WITH t AS (INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING)"
                    "INSERT INTO api_keys (tenant_id, key_hash, prefix, role, rate_per_s,"
                    "                      rate_burst)"
                    " VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
                    6, p, err);
    if (!r)
        return -1;
    if (id)
        *id = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return 0;
}

/* Hex digits to bytes; the stored hashes are lower-case hex of 32 bytes. */
static int unhex(const char *s, unsigned char out[32]) {
    if (strlen(s) != 64)
        return -1;
    for (int i = 0; i < 32; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (unsigned char)v;
    }
    return 0;
}

int cz_db_key_lookup(PGconn *c, const char *key, cz_key_info *out, cz_err *err) {
    char hash[CZ_SHA256_HEX], prefix[CZ_KEY_PREFIX + 1];
    unsigned char want[32], have[32];
    if (strlen(key) != CZ_KEY_LEN - 1)
        return 0;
    cz_sha256_hex(key, strlen(key), hash);
    unhex(hash, want);
    snprintf(prefix, sizeof prefix, "%.*s", CZ_KEY_PREFIX, key);
    const char *p[] = {prefix};
    PGresult *r = cz_db_query(c,
                              "SELECT k.key_hash, k.id, k.tenant_id, k.role,"
                              "       COALESCE(k.rate_per_s, 0), COALESCE(k.rate_burst, 0),"
                              "       COALESCE(t.monthly_audio_minutes, -1),"
                              "       t.review_policy = 'always'"
                              "  FROM api_keys k JOIN tenants t ON t.id = k.tenant_id"
                              " WHERE k.prefix = $1 AND k.revoked_at IS NULL",
                              1, p, err);
    if (!r)
        return -1;
    int found = 0;
    for (int i = 0; i < PQntuples(r); i++) {
        if (unhex(PQgetvalue(r, i, 0), have) || CRYPTO_memcmp(want, have, sizeof want) || found)
            continue;
        found = 1;
        out->id = atoll(PQgetvalue(r, i, 1));
        snprintf(out->tenant, sizeof out->tenant, "%s", PQgetvalue(r, i, 2));
        snprintf(out->role, sizeof out->role, "%s", PQgetvalue(r, i, 3));
        out->rate_per_s = atof(PQgetvalue(r, i, 4));
        out->rate_burst = atoi(PQgetvalue(r, i, 5));
        out->quota_minutes = atof(PQgetvalue(r, i, 6));
        out->review_always = !strcmp(PQgetvalue(r, i, 7), "t");
    }
    PQclear(r);
    return found;
}

char *cz_db_key_list(PGconn *c, const char *tenant, cz_err *err) {
    const char *p[] = {tenant};
    PGresult *r =
        cz_db_query(c,
                    "SELECT COALESCE(json_agg(json_build_object("
                    "         'id', id, 'prefix', prefix, 'tenant', tenant_id, 'role', role,"
                    "         'rate_per_s', rate_per_s, 'rate_burst', rate_burst,"
                    "         'created_at', cz_ts(created_at), 'revoked_at', cz_ts(revoked_at))"
                    "       ORDER BY id), '[]')::text"
                    "  FROM api_keys WHERE $1::text IS NULL OR tenant_id = $1",
                    1, p, err);
    if (!r)
        return NULL;
    char *out = cz_strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return out;
}

int cz_db_key_revoke(PGconn *c, const char *id_or_prefix, cz_err *err) {
    const char *s = id_or_prefix;
    bool numeric = *s && strspn(s, "0123456789") == strlen(s) && strlen(s) < 19;
    const char *p[] = {numeric ? s : NULL, numeric ? NULL : s};
    /* A prefix that names several keys revokes none: the caller must say which. */
    long n = cz_db_exec(c,
                        "UPDATE api_keys SET revoked_at = now()"
                        " WHERE revoked_at IS NULL AND id = ("
                        "   SELECT CASE WHEN count(*) = 1 THEN min(id) END FROM api_keys"
                        "    WHERE revoked_at IS NULL"
                        "      AND (id = $1::bigint OR prefix = $2::text))",
                        2, p, err);
    if (n != 0)
        return n < 0 ? -1 : 1;
    PGresult *r = cz_db_query(c,
                              "SELECT count(*) FROM api_keys WHERE revoked_at IS NULL"
                              "   AND (id = $1::bigint OR prefix = $2::text)",
                              2, p, err);
    if (!r)
        return -1;
    int many = atoi(PQgetvalue(r, 0, 0)) > 1;
    PQclear(r);
    return many ? 2 : 0;
}

int cz_db_tenant_set_quota(PGconn *c, const char *tenant, double minutes, cz_err *err) {
    char m[32];
    snprintf(m, sizeof m, "%.17g", minutes);
    const char *p[] = {tenant, minutes < 0 ? NULL : m};
    long n =
        cz_db_exec(c, "UPDATE tenants SET monthly_audio_minutes = $2 WHERE id = $1", 2, p, err);
    return n < 0 ? -1 : n > 0;
}

int cz_db_tenant_review_policy(PGconn *c, const char *tenant, bool *always, cz_err *err) {
    const char *p[] = {tenant};
    PGresult *r =
        cz_db_query(c, "SELECT review_policy = 'always' FROM tenants WHERE id = $1", 1, p, err);
    if (!r)
        return -1;
    *always = PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    return 0;
}

int cz_db_tenant_set_review_policy(PGconn *c, const char *tenant, const char *policy, cz_err *err) {
    if (strcmp(policy, "auto") && strcmp(policy, "always"))
        return cz_err_set(err, "the review policy must be auto or always, not %s", policy);
    const char *p[] = {tenant, policy};
    long n = cz_db_exec(c, "UPDATE tenants SET review_policy = $2 WHERE id = $1", 2, p, err);
    return n < 0 ? -1 : n > 0;
}
