/* The growable byte buffer: text being written (JSON, metrics, literals,
 * HTTP bodies) or bytes (a MIDI file). Appends cannot fail (they allocate
 * with cz_realloc, see mem.h), and the bytes are always followed by a NUL
 * that len does not count, so a text buffer is a C string as it grows. */
#ifndef CZ_BUF_H
#define CZ_BUF_H

#include <stddef.h>

/* Zero-initialised is empty: `cz_buf b = {0};`. data is NULL until the
 * first append. */
typedef struct cz_buf {
    char *data;
    size_t len, cap;
} cz_buf;

/** @brief Appends @p n bytes at @p data (which may hold NULs). */
void cz_buf_append(cz_buf *b, const void *data, size_t n);

/** @brief Appends the string @p s, without its NUL. */
void cz_buf_puts(cz_buf *b, const char *s);

/** @brief Appends one byte. */
void cz_buf_putc(cz_buf *b, char c);

/** @brief Appends printf-style; a format vsnprintf rejects appends nothing. */
void cz_buf_appendf(cz_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** @brief Empties @p b, keeping its memory for the next appends. */
void cz_buf_reset(cz_buf *b);

/**
 * @brief Hands over the bytes and leaves @p b empty.
 * @returns a NUL-terminated string (never NULL; "" when nothing was
 * appended) the caller frees with free().
 */
char *cz_buf_take(cz_buf *b);

/** @brief Frees @p b's memory and leaves it empty. */
void cz_buf_free(cz_buf *b);

#endif
