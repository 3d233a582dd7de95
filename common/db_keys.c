/* SQL for tenants and API keys: see db_keys.h. */
#include "db_keys.h"

#include <stdio.h>
#include <string.h>

#include "db.h"
#include "hash.h"
#include "ids.h"

int cz_db_key_create(PGconn *c, const char *tenant, const char *role, char key[CZ_KEY_LEN],
                     cz_err *err) {
    unsigned char raw[20];
    char hex[41], hash[CZ_SHA256_HEX], prefix[12];
    cz_random_bytes(raw, sizeof raw);
    cz_hex(raw, sizeof raw, hex);
    snprintf(key, CZ_KEY_LEN, "cz_%s", hex);
    cz_sha256_hex(key, strlen(key), hash);
    snprintf(prefix, sizeof prefix, "%.11s", key);
    const char *p[] = {tenant, hash, prefix, role};
    long n = cz_db_exec(c,
                        "WITH t AS (INSERT INTO tenants (id) VALUES ($1) ON CONFLICT DO NOTHING)"
                        "INSERT INTO api_keys (tenant_id, key_hash, prefix, role)"
                        " VALUES ($1, $2, $3, $4)",
                        4, p, err);
    return n == 1 ? 0 : -1;
}

int cz_db_key_lookup(PGconn *c, const char *key, char tenant[CZ_TENANT_MAX], char role[CZ_ROLE_MAX],
                     cz_err *err) {
    char hash[CZ_SHA256_HEX];
    cz_sha256_hex(key, strlen(key), hash);
    const char *p[] = {hash};
    PGresult *r = cz_db_query(c,
                              "SELECT tenant_id, role FROM api_keys"
                              " WHERE key_hash = $1 AND revoked_at IS NULL",
                              1, p, err);
    if (!r)
        return -1;
    int found = PQntuples(r) == 1;
    if (found) {
        snprintf(tenant, CZ_TENANT_MAX, "%s", PQgetvalue(r, 0, 0));
        snprintf(role, CZ_ROLE_MAX, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return found;
}
