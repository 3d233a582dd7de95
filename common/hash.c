/* SHA-256 and FNV-1a: see hash.h. */
#include "common/hash.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

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
