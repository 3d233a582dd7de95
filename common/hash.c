/* SHA-256 and FNV-1a: see hash.h. */
#include "common/hash.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/ids.h"

uint32_t cz_fnv1a(const char *s, size_t max) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < max && s[i]; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h;
}

void cz_sha256_hex(const void *data, size_t len, char out[CZ_SHA256_HEX]) {
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    cz_hex(md, 32, out);
}

int cz_sha256_file(const char *path, char out[CZ_SHA256_HEX], long long *bytes, cz_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f)
        return cz_err_set(err, "cannot open %s: %s", path, strerror(errno));
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
    unsigned char buf[1 << 16];
    long long total = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        EVP_DigestUpdate(ctx, buf, n);
        total += (long long)n;
    }
    int failed = ferror(f);
    fclose(f);
    unsigned char md[32];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx, md, &len);
    EVP_MD_CTX_free(ctx);
    if (failed)
        return cz_err_set(err, "cannot read %s", path);
    cz_hex(md, 32, out);
    if (bytes)
        *bytes = total;
    return 0;
}

/* Reads the hex digest at the start of the checksum file @p name into @p hex. */
static int read_digest(const char *name, char hex[CZ_SHA256_HEX], cz_err *err) {
    FILE *f = fopen(name, "r");
    if (!f) {
        int e = errno;
        return cz_err_set(
            err, e == ENOENT ? "checksum file %s is missing" : "cannot open checksum file %s: %s",
            name, strerror(e));
    }
    char line[128] = "";
    bool ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    for (int i = 0; ok && i < CZ_SHA256_HEX - 1; i++) {
        ok = isxdigit((unsigned char)line[i]);
        hex[i] = (char)tolower((unsigned char)line[i]);
    }
    hex[CZ_SHA256_HEX - 1] = 0;
    if (!ok || !(line[64] == ' ' || line[64] == '\n' || line[64] == 0))
        return cz_err_set(err, "checksum file %s does not start with a sha256 in hex", name);
    return 0;
}

int cz_sha256_sidecar_check(const char *path, const void *data, size_t len, char got[CZ_SHA256_HEX],
                            cz_err *err) {
    cz_buf name = {0};
    cz_buf_appendf(&name, "%s.sha256", path);
    char want[CZ_SHA256_HEX];
    int rc = read_digest(name.data, want, err);
    if (rc == 0) {
        cz_sha256_hex(data, len, got);
        if (strcmp(want, got))
            rc = cz_err_set(err,
                            "sha256 mismatch, the file is corrupt (%s says %s, the file "
                            "hashes to %s)",
                            name.data, want, got);
    }
    cz_buf_free(&name);
    return rc;
}
