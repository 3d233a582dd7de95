/* In-memory audio and its files. A cz_audio is interleaved 32-bit float PCM;
 * the inference pool renders into one, the post pool reads one back from the
 * artifact store, masters it in place and writes the deliverables. Reading and
 * writing go through libsndfile (WAV, FLAC, MP3 and Opus), resampling through
 * libsoxr; loudness is measured by libebur128. */
#ifndef CZ_AUDIO_H
#define CZ_AUDIO_H

#include <stddef.h>

#include "common/err.h"

typedef struct cz_audio {
    float *samples; /* interleaved, frames * channels values, owned */
    size_t frames;
    unsigned channels;
    unsigned sample_rate;
} cz_audio;

/** Container/codec of an audio file written by cz_audio_write(). */
typedef enum cz_audio_format {
    CZ_AUDIO_WAV_FLOAT, /* raw renders: lossless, no clipping */
    CZ_AUDIO_WAV_24,
    CZ_AUDIO_FLAC_24, /* masters */
    CZ_AUDIO_MP3,     /* MPEG-1 Layer III, 320 kbit/s constant bit rate (LAME) */
    CZ_AUDIO_OPUS,    /* Ogg Opus, about 190 kbit/s for stereo; 8-48 kHz rates only */
} cz_audio_format;

/** EBU R 128 / ITU-R BS.1770 measurements of one signal. */
typedef struct cz_loudness {
    double integrated_lufs; /* -HUGE_VAL for silence */
    double lra_lu;
    double true_peak_dbtp;
    double sample_peak_dbfs;
    double duration_s;
} cz_loudness;

/** @brief Frees the samples of @p a and zeroes it; NULL-safe. */
void cz_audio_free(cz_audio *a);

/**
 * @brief Reads any libsndfile-readable file into @p out (float, all channels).
 * @returns 0, or -1 with @p err filled. The caller frees @p out with cz_audio_free().
 */
int cz_audio_read(const char *path, cz_audio *out, cz_err *err);

/**
 * @brief Writes @p a to exactly @p path in @p fmt (no temp file, no fsync: the
 * artifact store does that). Integer formats clip rather than wrap.
 * @returns 0, or -1 with @p err filled.
 */
int cz_audio_write(const char *path, const cz_audio *a, cz_audio_format fmt, cz_err *err);

/**
 * @brief Resamples @p a in place to @p rate with libsoxr (very high quality,
 * linear phase); does nothing when the rate is already @p rate.
 * @returns 0, or -1 with @p err filled (@p a is unchanged then).
 */
int cz_audio_resample(cz_audio *a, unsigned rate, cz_err *err);

/**
 * @brief Measures integrated loudness, loudness range, true peak and sample
 * peak of @p a with libebur128.
 * @returns 0, or -1 with @p err filled.
 */
int cz_loudness_measure(const cz_audio *a, cz_loudness *out, cz_err *err);

#endif
