/* Canonical JSON and small accessors: see json.h.
 *
 * The canonical writer is a recursive walk into a growing buffer. Keys are
 * sorted with strcmp, which orders UTF-8 by code point, so the order does not
 * depend on the order a client happened to send. The same writer, keeping
 * the members' order, replaces cJSON's printer everywhere: cJSON 1.7.15
 * rounds 16-digit integers to 15 digits (its round-trip check allows an
 * error of one there), which changed seeds in what workers wrote. */
#include "common/json.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"

static void put_string(cz_buf *b, const char *s) {
    cz_buf_putc(b, '"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        char esc[8];
        switch (*c) {
        case '"':
            cz_buf_puts(b, "\\\"");
            break;
        case '\\':
            cz_buf_puts(b, "\\\\");
            break;
        case '\b':
            cz_buf_puts(b, "\\b");
            break;
        case '\f':
            cz_buf_puts(b, "\\f");
            break;
        case '\n':
            cz_buf_puts(b, "\\n");
            break;
        case '\r':
            cz_buf_puts(b, "\\r");
            break;
        case '\t':
            cz_buf_puts(b, "\\t");
            break;
        default:
            if (*c < 0x20) {
                snprintf(esc, sizeof esc, "\\u%04x", *c);
                cz_buf_puts(b, esc);
            } else {
                cz_buf_putc(b, (char)*c);
            }
        }
    }
    cz_buf_putc(b, '"');
}

bool cz_json_is_integer(double d) {
    return isfinite(d) && d == floor(d) && fabs(d) <= 9007199254740992.0;
}

static void put_number(cz_buf *b, double d) {
    char tmp[40];
    if (!isfinite(d))
        snprintf(tmp, sizeof tmp, "null"); /* JSON has no NaN or infinity */
    else if (cz_json_is_integer(d))
        snprintf(tmp, sizeof tmp, "%.0f", d);
    else {
        /* Shortest form that reads back to the same double. */
        for (int prec = 15; prec <= 17; prec++) {
            snprintf(tmp, sizeof tmp, "%.*g", prec, d);
            if (strtod(tmp, NULL) == d)
                break;
        }
    }
    cz_buf_puts(b, tmp);
}

static int cmp_keys(const void *a, const void *b) {
    const cJSON *x = *(const cJSON *const *)a, *y = *(const cJSON *const *)b;
    return strcmp(x->string, y->string);
}

static void put_value(cz_buf *b, const cJSON *v, bool sorted) {
    if (cJSON_IsNull(v)) {
        cz_buf_puts(b, "null");
    } else if (cJSON_IsBool(v)) {
        cz_buf_puts(b, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsNumber(v)) {
        put_number(b, v->valuedouble);
    } else if (cJSON_IsString(v)) {
        put_string(b, v->valuestring);
    } else if (cJSON_IsArray(v)) {
        cz_buf_putc(b, '[');
        int i = 0;
        for (const cJSON *e = v->child; e; e = e->next, i++) {
            if (i)
                cz_buf_putc(b, ',');
            put_value(b, e, sorted);
        }
        cz_buf_putc(b, ']');
    } else if (cJSON_IsObject(v)) {
        int n = cJSON_GetArraySize(v);
        const cJSON **members = n ? cz_malloc(sizeof *members * (size_t)n) : NULL;
        int i = 0;
        for (const cJSON *e = v->child; e; e = e->next)
            members[i++] = e;
        if (sorted && n > 1)
            qsort(members, (size_t)n, sizeof *members, cmp_keys);
        cz_buf_putc(b, '{');
        for (i = 0; i < n; i++) {
            if (i)
                cz_buf_putc(b, ',');
            put_string(b, members[i]->string);
            cz_buf_putc(b, ':');
            put_value(b, members[i], sorted);
        }
        cz_buf_putc(b, '}');
        free(members);
    } else {
        cz_buf_puts(b, "null"); /* raw/invalid items never come from the parser */
    }
}

static char *print(const cJSON *v, bool sorted) {
    if (!v)
        return NULL;
    cz_buf b = {0};
    put_value(&b, v, sorted);
    return cz_buf_take(&b);
}

char *cz_json_canonical(const cJSON *v) {
    return print(v, true);
}

char *cz_json_print(const cJSON *v) {
    return print(v, false);
}

const char *cz_json_str(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

double cz_json_num(const cJSON *o, const char *key, double def) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    return cJSON_IsNumber(v) ? v->valuedouble : def;
}

/* Well-formed UTF-8 (no overlongs, no surrogates, nothing past U+10FFFF);
 * when @p text, also no control characters but tab, newline and CR. */
static bool utf8_valid(const char *s, bool text) {
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        unsigned c = *p;
        int n = c < 0x80             ? 0
                : (c & 0xe0) == 0xc0 ? 1
                : (c & 0xf0) == 0xe0 ? 2
                : (c & 0xf8) == 0xf0 ? 3
                                     : -1;
        if (n < 0 || (n == 1 && c < 0xc2) || (n == 3 && c > 0xf4))
            return false;
        if (text && n == 0 && c < 0x20 && c != '\t' && c != '\n' && c != '\r')
            return false;
        if (n == 2 && ((c == 0xe0 && p[1] < 0xa0) || (c == 0xed && p[1] >= 0xa0)))
            return false;
        if (n == 3 && ((c == 0xf0 && p[1] < 0x90) || (c == 0xf4 && p[1] >= 0x90)))
            return false;
        for (int i = 1; i <= n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return false;
        p += n + 1;
    }
    return true;
}

bool cz_json_clean_text(const char *s) {
    return utf8_valid(s, true);
}

bool cz_json_utf8(const char *s) {
    return utf8_valid(s, false);
}
