/* JSON helpers over cJSON, and the canonical form Cadenza hashes requests
 * with: object keys sorted by their bytes, no insignificant whitespace,
 * integers without a fraction or exponent, strings with minimal escapes.
 * Two requests that mean the same thing canonicalise to the same bytes. */
#ifndef CZ_JSON_H
#define CZ_JSON_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/**
 * @brief Serialises @p v canonically.
 * @returns a string the caller frees with free(), or NULL when @p v is NULL.
 */
char *cz_json_canonical(const cJSON *v);

/**
 * @brief Serialises @p v compactly, members in their order, integers up to
 * 2^53 exactly. Use it instead of cJSON_Print*, which rounds 16-digit
 * integers (seeds) to 15 digits.
 * @returns a string the caller frees with free(), or NULL when @p v is NULL.
 */
char *cz_json_print(const cJSON *v);

/** @brief The string member @p key of object @p o, or NULL if absent or not a string. */
const char *cz_json_str(const cJSON *o, const char *key);

/** @brief The numeric member @p key of @p o, or @p def if absent or not a number. */
double cz_json_num(const cJSON *o, const char *key, double def);

/** @brief True when @p d is an integer that a double represents exactly (|d| <= 2^53). */
bool cz_json_is_integer(double d);

/**
 * @brief True when @p s is well-formed UTF-8 (no overlongs, no surrogates)
 * without control characters but tab, newline and carriage return: text we
 * store, show and pass on.
 */
bool cz_json_clean_text(const char *s);

/**
 * @brief True when @p s is well-formed UTF-8, control characters allowed
 * (for values echoed back as JSON, where they are escaped).
 */
bool cz_json_utf8(const char *s);

#endif
