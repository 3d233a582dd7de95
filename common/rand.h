/* The one pseudo-random generator: splitmix64 (Steele, Lea and Flood), tiny,
 * fast and the same on every platform, so a seed gives the same song, the
 * same synthetic catalogue and the same benchmark data everywhere. The
 * state advances by the golden gamma; the output is the state mixed.
 * Nothing here is for secrets (use OpenSSL's RAND_bytes). */
#ifndef CZ_RAND_H
#define CZ_RAND_H

#include <stdint.h>

#define CZ_SPLITMIX64_GAMMA 0x9E3779B97F4A7C15ull

/**
 * @brief splitmix64's output for the state @p x: x advanced by the gamma,
 * then mixed. Also a good 64-bit hash for deriving seeds.
 * @returns the mixed value.
 */
static inline uint64_t cz_splitmix64_mix(uint64_t x) {
    x += CZ_SPLITMIX64_GAMMA;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
    return x ^ (x >> 31);
}

/**
 * @brief The next number of the splitmix64 stream at *@p state, advancing it.
 * @returns 64 random bits.
 */
static inline uint64_t cz_splitmix64_next(uint64_t *state) {
    uint64_t z = cz_splitmix64_mix(*state);
    *state += CZ_SPLITMIX64_GAMMA;
    return z;
}

/** @brief The top 53 bits of @p x as a double in [0, 1). */
static inline double cz_rand_unit(uint64_t x) {
    return (double)(x >> 11) * 0x1.0p-53;
}

#endif
