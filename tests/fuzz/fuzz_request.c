/* libFuzzer harness over job request parsing and validation (api/request.c).
 *
 * Any byte string is a possible POST /v1/jobs body. Whatever it is, the
 * parser must return without crashing, leaking or tripping a sanitizer,
 * and what it returns must be usable as it stands:
 *   - a refusal has a status the API documents (400, 413, 422), a problem
 *     type, a detail, and a field and detail that are UTF-8 (they go into
 *     the problem+json response);
 *   - an accepted request has canonical JSON that parses, is UTF-8 and
 *     hashes to the hash reported, and a model and seed.
 * The same bytes, NUL-terminated, are also tried as an Idempotency-Key.
 *
 *   make fuzz [FUZZ_SECONDS=300]    corpus seeds: tests/fuzz/corpus/request */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/request.h"
#include "common/hash.h"

static void check(int ok, const char *what) {
    if (!ok) {
        fprintf(stderr, "fuzz_request: invariant broken: %s\n", what);
        abort();
    }
}

static int utf8_ok(const char *s) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1 : (*p & 0xf0) == 0xe0 ? 2 : 3;
        if ((*p & 0xf8) == 0xf8)
            return 0;
        for (int i = 1; i <= n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        p += n + 1;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cz_request req;
    cz_request_error e;
    if (cz_request_parse((const char *)data, size, 1234, &req, &e) == 0) {
        check(req.json && req.canonical && req.model, "accepted without canonical form");
        check(utf8_ok(req.json), "canonical JSON is not UTF-8");
        cJSON *again = cJSON_Parse(req.json);
        check(again && cJSON_IsObject(again), "canonical JSON does not parse");
        cJSON_Delete(again);
        char hash[CZ_SHA256_HEX];
        cz_sha256_hex(req.json, strlen(req.json), hash);
        check(!strcmp(hash, req.hash), "hash is not of the canonical JSON");
        cz_request_free(&req);
    } else {
        check(e.status == 400 || e.status == 413 || e.status == 422, "undocumented status");
        check(e.type && *e.type && e.detail[0], "problem without type or detail");
        check(utf8_ok(e.field) && utf8_ok(e.detail), "problem text is not UTF-8");
    }
    char *key = malloc(size + 1);
    if (key) {
        memcpy(key, data, size);
        key[size] = '\0';
        (void)cz_request_idempotency_key_valid(key);
        free(key);
    }
    return 0;
}
