/* The API's OpenAPI 3.1 document, served at GET /openapi.json. Written as
 * api/openapi.yaml; tools/openapi_to_c.py converts it to JSON at build time
 * (build/gen/openapi_json.c), so the served document is the YAML's. */
#ifndef CZ_OPENAPI_H
#define CZ_OPENAPI_H

#include <stddef.h>

/** The document as JSON text (NUL-terminated). */
extern const char cz_openapi_json[];

/** Its length in bytes, without the terminator. */
extern const size_t cz_openapi_json_len;

#endif
