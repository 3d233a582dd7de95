/* Allocation that cannot fail. Cadenza's out-of-memory policy, as in Redis's
 * zmalloc: an allocation that fails ends the process with one line on stderr
 * naming the size, so no caller ever half-handles it. Every allocation in
 * Cadenza's own code goes through these; cz_mem_init() makes cJSON's go
 * through them too. Memory that libraries allocate for themselves (libpq,
 * libcurl, libsndfile, FFTW, hiredis) keeps their own error paths. */
#ifndef CZ_MEM_H
#define CZ_MEM_H

#include <stddef.h>

/**
 * @brief Installs cz_malloc/free as cJSON's allocator, so cJSON_Create*
 * and cJSON_Add* cannot fail for want of memory. Call it first thing in
 * main(), before any thread starts: cJSON's hooks are process-global.
 */
void cz_mem_init(void);

/** @brief malloc() that never returns NULL. @returns memory the caller frees with free(). */
void *cz_malloc(size_t n);

/** @brief calloc() that never returns NULL, overflow of @p n * @p size included. */
void *cz_calloc(size_t n, size_t size);

/** @brief realloc() that never returns NULL; @p p may be NULL. */
void *cz_realloc(void *p, size_t n);

/** @brief strdup() that never returns NULL. */
char *cz_strdup(const char *s);

/** @brief strndup() that never returns NULL: at most @p n bytes of @p s, NUL-terminated. */
char *cz_strndup(const char *s, size_t n);

#endif
