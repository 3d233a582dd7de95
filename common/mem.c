/* Allocation that cannot fail: see mem.h. A failed allocation is not an
 * error a caller can act on (the next one fails too, and the code that
 * would report it allocates), so it is not returned: the process says how
 * much it asked for and aborts, and its supervisor starts it again. */
#include "common/mem.h"

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t n) {
    fprintf(stderr, "cadenza: out of memory allocating %zu bytes\n", n);
    abort();
}

void cz_mem_init(void) {
    cJSON_InitHooks(&(cJSON_Hooks){.malloc_fn = cz_malloc, .free_fn = free});
}

/* A zero size asks for one byte: malloc(0) may return NULL, which would
 * read as a failure. */
void *cz_malloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *cz_calloc(size_t n, size_t size) {
    if (size && n > SIZE_MAX / size)
        out_of_memory(SIZE_MAX);
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        out_of_memory(n * size);
    return p;
}

void *cz_realloc(void *p, size_t n) {
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

char *cz_strdup(const char *s) {
    return cz_strndup(s, SIZE_MAX);
}

char *cz_strndup(const char *s, size_t n) {
    size_t len = strnlen(s, n);
    char *d = cz_malloc(len + 1);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}
