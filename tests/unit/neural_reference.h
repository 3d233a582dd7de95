/* What test_neural.c and test_neural_cuda.c share: reading a file whole,
 * and the reference logits the training tool exported (docs/models/format.md,
 * "Logits fixtures"). Static functions, for the two test programs only;
 * include it after cmocka.h, whose assertions it uses. */
#ifndef CZ_TEST_NEURAL_REFERENCE_H
#define CZ_TEST_NEURAL_REFERENCE_H

#include <cjson/cJSON.h>
#include <stdio.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"

static char *read_all(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    cz_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        cz_buf_append(&b, chunk, n);
    fclose(f);
    if (len)
        *len = b.len;
    return cz_buf_take(&b);
}

/* The reference: sequences, and logits [seq][pos][vocab]. */
typedef struct reference {
    int n_seq;
    int len[8];
    int tokens[8][512];
    float *logits[8]; /* len * vocab each */
    double tol;
} reference;

static void reference_load(const char *path, int vocab, reference *r) {
    memset(r, 0, sizeof *r);
    char *text = read_all(path, NULL);
    cJSON *j = cJSON_Parse(text);
    free(text);
    assert_non_null(j);
    const cJSON *toks = cJSON_GetObjectItem(j, "tokens"), *lg = cJSON_GetObjectItem(j, "logits");
    r->tol = cJSON_GetObjectItem(j, "tolerance")->valuedouble;
    r->n_seq = cJSON_GetArraySize(toks);
    assert_in_range(r->n_seq, 1, 8);
    assert_int_equal(cJSON_GetArraySize(lg), r->n_seq);
    for (int s = 0; s < r->n_seq; s++) {
        const cJSON *t = cJSON_GetArrayItem(toks, s), *rows = cJSON_GetArrayItem(lg, s);
        r->len[s] = cJSON_GetArraySize(t);
        assert_in_range(r->len[s], 1, 512);
        assert_int_equal(cJSON_GetArraySize(rows), r->len[s]);
        r->logits[s] = cz_malloc((size_t)r->len[s] * vocab * sizeof(float));
        for (int i = 0; i < r->len[s]; i++) {
            r->tokens[s][i] = cJSON_GetArrayItem(t, i)->valueint;
            const cJSON *row = cJSON_GetArrayItem(rows, i);
            assert_int_equal(cJSON_GetArraySize(row), vocab);
            int v = 0;
            for (const cJSON *x = row->child; x; x = x->next)
                r->logits[s][(size_t)i * vocab + v++] = (float)x->valuedouble;
        }
    }
    cJSON_Delete(j);
}

static void reference_free(reference *r) {
    for (int s = 0; s < r->n_seq; s++)
        free(r->logits[s]);
}

#endif
