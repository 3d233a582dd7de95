/* Time helpers: see clock.h. */
#include "common/clock.h"

#include <stdio.h>
#include <time.h>

void cz_now_rfc3339(char out[CZ_RFC3339_LEN]) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, CZ_RFC3339_LEN, "%.19s.%03dZ", date, (int)(ts.tv_nsec / 1000000));
}

int64_t cz_mono_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t cz_mono_ms(void) {
    return cz_mono_us() / 1000;
}
