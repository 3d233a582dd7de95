/* Audio fingerprints (libchromaprint) and their comparison.
 *
 * A fingerprint is chromaprint's raw form: one 32-bit value per item, an
 * item every ~0.124 s of audio, each bit a coarse comparison of energy in
 * chroma bands over time. Two recordings of the same music give values that
 * mostly agree bit for bit, whatever their level or codec; unrelated music
 * agrees on about half the bits, like random data. The post worker
 * fingerprints every master; `cadenzactl catalog import` fingerprints the
 * catalogue's files; fp_index.h finds one in the other. */
#ifndef CZ_FINGERPRINT_H
#define CZ_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

typedef struct cz_fp {
    uint32_t *v; /* items, owned */
    size_t n;
    double duration_s; /* of the audio fingerprinted */
} cz_fp;

/** @brief Seconds of audio per fingerprint item (chromaprint's default algorithm). */
double cz_fp_item_s(void);

/**
 * @brief Fingerprints @p frames of interleaved float audio.
 * @returns 0 with @p out filled (free with cz_fp_free), or -1 with @p err.
 */
int cz_fp_compute(const float *samples, size_t frames, unsigned channels, unsigned rate, cz_fp *out,
                  cz_err *err);

/**
 * @brief Fingerprints an audio file that libsndfile reads (WAV, FLAC, Ogg
 * Vorbis/Opus, MP3, ...), streaming it.
 * @returns 0 with @p out filled (free with cz_fp_free), or -1 with @p err.
 */
int cz_fp_compute_file(const char *path, cz_fp *out, cz_err *err);

/** @brief Frees @p fp's items and zeroes it; NULL-safe. */
void cz_fp_free(cz_fp *fp);

#endif
