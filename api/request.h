/* Job requests: validation and canonical form.
 *
 * A request body is parsed once, every field is checked against the
 * contract in DESIGN.md (types, ranges, enums, lengths, no unknown fields),
 * and the result is a canonical request: prompt whitespace collapsed,
 * defaults filled in, a seed chosen when none was given, and the prompt read
 * into control tokens ("controls", with the words not understood listed in
 * "ignored"; see common/music/prompt.h). The model is checked for its form
 * only (a name, or name@version): which exist, and their limits, are the
 * registry's (api/routing.h). Its canonical JSON
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
#define CZ_REQUEST_MODEL_MAX 49 /* name@version: 31 + 1 + 16 characters and a NUL */
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
    const char *model;             /* as the client asked ("neural" or "neural@1"); in canonical */
    char model_run[CZ_REQUEST_MODEL_MAX]; /* the version that runs it (cz_request_set_model) */
    uint64_t seed;
    bool seeded; /* the client named the seed */
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

/**
 * @brief Records that model version @p model ("neural@2") runs the request,
 * which asked for r->model (the same, or its bare name: api/routing.h). The
 * cache key is made again with @p model in the place of the model asked
 * for, so the cache never answers with another version's audio, and a bare
 * name shares entries with the version it was routed to. The canonical
 * request (and so its hash) keeps the model as asked.
 */
void cz_request_set_model(cz_request *r, const char *model);

/** @brief True when @p s is a model name: ^[a-z][a-z0-9-]{0,30}$. */
bool cz_request_model_name_valid(const char *s);

/** @brief True when @p s is a model version: ^[0-9a-z][0-9a-z.-]{0,15}$. */
bool cz_request_model_version_valid(const char *s);

/** @brief Frees what cz_request_parse() allocated. */
void cz_request_free(cz_request *r);

#endif
