/* Identifiers. Job ids are UUIDv7 (RFC 9562): time-ordered, so the jobs
 * table's primary key index grows at its right edge and ids sort in
 * submission order. Trace ids follow W3C Trace Context. */
#ifndef CZ_IDS_H
#define CZ_IDS_H

#include <stdbool.h>
#include <stdint.h>

#define CZ_UUID_LEN 37 /* 36 characters and the terminator */

/** @brief Writes a new UUIDv7 in canonical lower-case text form into @p out. */
void cz_uuid7(char out[CZ_UUID_LEN]);

/** @brief Returns true when @p s is a canonical UUID text (any version). */
bool cz_uuid_valid(const char *s);

/** @brief Writes 32 lower-case hex digits of fresh randomness (a trace id). */
void cz_trace_id(char out[33]);

/** @brief Writes a W3C `traceparent` value for @p trace_id with a new span id. */
void cz_traceparent(const char *trace_id, char out[56]);

/** @brief Fills @p buf with @p n cryptographically random bytes. */
void cz_random_bytes(void *buf, int n);

/** @brief Returns a uniformly random 53-bit integer (fits a JSON number exactly). */
uint64_t cz_random_seed(void);

/** @brief Lower-case hex of @p n bytes of @p in into @p out (2n+1 chars). */
void cz_hex(const unsigned char *in, int n, char *out);

#endif
