/* Time: wall-clock timestamps for messages and logs, monotonic milliseconds
 * for measuring durations. */
#ifndef CZ_CLOCK_H
#define CZ_CLOCK_H

#include <stdint.h>

#define CZ_RFC3339_LEN 32

/** @brief Writes the current UTC time as "2026-11-21T10:00:00.123Z" into @p out. */
void cz_now_rfc3339(char out[CZ_RFC3339_LEN]);

/** @brief Milliseconds on the monotonic clock (for durations only). */
int64_t cz_mono_ms(void);

/** @brief Microseconds on the monotonic clock (for durations only). */
int64_t cz_mono_us(void);

#endif
