/* Identifiers: see ids.h. Randomness comes from OpenSSL's CSPRNG. */
#include "common/ids.h"

#include <ctype.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void cz_random_bytes(void *buf, int n) {
    if (RAND_bytes(buf, n) != 1)
        abort(); /* no entropy: nothing safe can be done */
}

void cz_hex(const unsigned char *in, int n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

void cz_uuid7(char out[CZ_UUID_LEN]) {
    unsigned char b[16];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    cz_random_bytes(b + 6, 10);
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (b[6] & 0x0f)); /* version 7 */
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f)); /* RFC 9562 variant */
    char hex[33];
    cz_hex(b, 16, hex);
    snprintf(out, CZ_UUID_LEN, "%.8s-%.4s-%.4s-%.4s-%.12s", hex, hex + 8, hex + 12, hex + 16,
             hex + 20);
}

bool cz_uuid_valid(const char *s) {
    if (!s || strlen(s) != 36)
        return false;
    for (int i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!isxdigit((unsigned char)s[i]) || isupper((unsigned char)s[i])) {
            return false;
        }
    }
    return true;
}

void cz_trace_id(char out[33]) {
    unsigned char b[16];
    cz_random_bytes(b, 16);
    cz_hex(b, 16, out);
}

void cz_traceparent(const char *trace_id, char out[56]) {
    unsigned char span[8];
    char span_hex[17];
    cz_random_bytes(span, 8);
    cz_hex(span, 8, span_hex);
    snprintf(out, 56, "00-%.32s-%s-01", trace_id, span_hex);
}

uint64_t cz_random_seed(void) {
    uint64_t v;
    cz_random_bytes(&v, sizeof v);
    return v & ((UINT64_C(1) << 53) - 1);
}
