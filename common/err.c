/* Error messages: see err.h. */
#include "common/err.h"

#include <stdarg.h>
#include <stdio.h>

int cz_err_set(cz_err *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void cz_err_clear(cz_err *err) {
    if (err)
        err->msg[0] = '\0';
}
