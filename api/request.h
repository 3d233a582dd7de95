/* Job requests: validation and canonical form.
 *
 * A request body is parsed once, every field is checked against the
 * contract in DESIGN.md (types, ranges, enums, lengths, no unknown fields),
 * and the result is a canonical request: prompt whitespace collapsed,
 * defaults filled in, a seed chosen when none was given, and the prompt read
 * into control tokens ("controls", with the words not understood listed in
 * "ignored"; see common/music/prompt.h). Its canonical JSON
 * is what the job stores and what the request hash is computed over, so the
 * same request always hashes the same however a client spelled it.
 * Pure: no I/O, so the rules are unit-tested without a server. */
#ifndef CZ_REQUEST_H
#define CZ_REQUEST_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/hash.h"

#define CZ_REQUEST_MAX_BODY (64 * 1024)
#define CZ_DEFAULT_MODEL "composer@1"
#define CZ_NEURAL_MODEL "neural@1" /* our own transformer, see docs/models/neural-1.md */
#define CZ_HTTP_MODEL "http@1"     /* a remote model server, see docs/composer.md */
#define CZ_HTTP2_MODEL "http@2"    /* a remote GPU server, asynchronous, see docs/http2.md */

/** Why a request was refused, ready to become a problem+json response. */
typedef struct cz_request_error {
    int status;       /* 400 malformed, 422 invalid */
    const char *type; /* problem type slug, e.g. "invalid-field" */
    char field[64];   /* JSON path of the offending field, "" for the body */
    char detail[256]; /* what is wrong and what is allowed */
} cz_request_error;

typedef struct cz_request {
    cJSON *canonical; /* the canonical request object (owned) */
    char *json;       /* its canonical JSON text (owned) */
    char hash[CZ_SHA256_HEX];
    char cache_key[CZ_SHA256_HEX]; /* what shapes the audio; "" when not cacheable */
    const char *model;             /* points into canonical */
    uint64_t seed;
} cz_request;

/**
 * @brief Parses and validates a job request body; fills in defaults. When the
 * body has no seed, @p fallback_seed is used (the caller passes randomness).
 * @returns 0 with @p out filled (free with cz_request_free), or -1 with @p e.
 */
int cz_request_parse(const char *body, size_t len, uint64_t fallback_seed, cz_request *out,
                     cz_request_error *e);

/**
 * @brief Parses a body that must be one JSON object, with the checks every
 * body gets: size, raw NUL bytes, syntax and trailing data (400), UTF-8
 * strings and field names, no \u0000, an object (422).
 * @returns 0 with the object in @p object (caller frees), or -1 with @p e.
 */
int cz_request_read_object(const char *body, size_t len, cJSON **object, cz_request_error *e);

/**
 * @brief True when @p key is a usable Idempotency-Key: 1 to 255 printable
 * ASCII characters (Stripe's rule).
 */
bool cz_request_idempotency_key_valid(const char *key);

/** @brief Frees what cz_request_parse() allocated. */
void cz_request_free(cz_request *r);

#endif
