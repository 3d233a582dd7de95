/* The growable byte buffer: see buf.h. Capacity doubles, so n appends copy
 * O(n) bytes in all; one byte beyond len is always kept for the NUL. */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

/* Makes room for @p n more bytes and the NUL. */
static void reserve(cz_buf *b, size_t n) {
    if (b->len + n + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->len + n + 1)
        cap *= 2;
    b->data = cz_realloc(b->data, cap);
    b->cap = cap;
}

void cz_buf_append(cz_buf *b, const void *data, size_t n) {
    reserve(b, n);
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cz_buf_puts(cz_buf *b, const char *s) {
    cz_buf_append(b, s, strlen(s));
}

void cz_buf_putc(cz_buf *b, char c) {
    cz_buf_append(b, &c, 1);
}

/* Formats into the room there is, and again into more when it did not fit. */
void cz_buf_appendf(cz_buf *b, const char *fmt, ...) {
    size_t room = b->cap - b->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(room ? b->data + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n < 0) {
        if (b->data)
            b->data[b->len] = '\0';
        return;
    }
    if ((size_t)n >= room) {
        reserve(b, (size_t)n);
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    b->len += (size_t)n;
}

void cz_buf_reset(cz_buf *b) {
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *cz_buf_take(cz_buf *b) {
    char *s = b->data ? b->data : cz_strdup("");
    *b = (cz_buf){0};
    return s;
}

void cz_buf_free(cz_buf *b) {
    free(b->data);
    *b = (cz_buf){0};
}
