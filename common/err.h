/* Error reporting. Every fallible function in Cadenza returns 0 / a pointer on
 * success and a negative value / NULL on failure, and fills a cz_err with a
 * message a person can act on: what failed and, where known, what to do. */
#ifndef CZ_ERR_H
#define CZ_ERR_H

#include <stddef.h>

typedef struct cz_err {
    char msg[512];
} cz_err;

/**
 * @brief Formats a message into @p err (printf-style). A NULL @p err is allowed.
 * @returns -1, so callers can write `return cz_err_set(err, ...);`.
 */
int cz_err_set(cz_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** @brief Clears @p err to the empty message. */
void cz_err_clear(cz_err *err);

#endif
