/* SHA-256 digests (OpenSSL EVP), as lower-case hex, of buffers and files. */
#ifndef CZ_HASH_H
#define CZ_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CZ_SHA256_HEX 65

/** @brief FNV-1a of at most @p max bytes of the string @p s: for hash tables in memory. */
uint32_t cz_fnv1a(const char *s, size_t max);

/** @brief Writes the SHA-256 of @p len bytes at @p data as hex into @p out. */
void cz_sha256_hex(const void *data, size_t len, char out[CZ_SHA256_HEX]);

/**
 * @brief Hashes the file at @p path; stores its size in @p bytes when non-NULL.
 * @returns 0, or -1 with @p err filled.
 */
int cz_sha256_file(const char *path, char out[CZ_SHA256_HEX], long long *bytes, cz_err *err);

/**
 * @brief Checks the @p len bytes at @p data, the contents of the file at
 * @p path, against the digest at the start of "<path>.sha256" (what
 * sha256sum writes), and writes their digest to @p got.
 * @returns 0; or -1 with @p err saying which went wrong: the checksum file
 * is missing or unreadable, does not start with a digest, or names
 * another digest than the data's (both given: the file is corrupt).
 */
int cz_sha256_sidecar_check(const char *path, const void *data, size_t len, char got[CZ_SHA256_HEX],
                            cz_err *err);

#endif
