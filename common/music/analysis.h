/* Audio analysis: the features of a track (track.h) computed from its audio.
 *
 * One pass over the audio: the loudness (libebur128, every channel at the
 * full rate) and a mono copy decimated to about 11-12 kHz, on which the
 * rest is computed: the tempo (libaubio's beat tracker), onsets (libaubio),
 * and FFT frames (FFTW, single precision) giving a chroma vector for the key
 * and mode, band energies and spectral statistics for the energy, the moods
 * and the embedding. Everything is deterministic: the same samples give the
 * same features, bit for bit, on one build. docs/architecture.md ("Track
 * features") documents every mapping and constant.
 *
 * The post worker analyses every master and puts the result in the QA
 * report (cz_analysis_json); `cadenzactl catalog import` analyses every
 * file it imports (cz_analysis_file). */
#ifndef CZ_ANALYSIS_H
#define CZ_ANALYSIS_H

#include <cjson/cJSON.h>

#include "common/err.h"
#include "common/music/track.h"

/** The range tempos are folded into (octave errors doubled or halved). */
#define CZ_ANALYSIS_TEMPO_MIN 60.0
#define CZ_ANALYSIS_TEMPO_MAX 200.0

/**
 * @brief Folds @p bpm by octaves into [CZ_ANALYSIS_TEMPO_MIN,
 * CZ_ANALYSIS_TEMPO_MAX): doubled while under, halved while at or over.
 * @returns the folded tempo, or 0 for a tempo that is not positive.
 */
double cz_analysis_fold_tempo(double bpm);

/**
 * @brief Analyses @p frames of interleaved float PCM (@p channels at
 * @p rate Hz) into @p out: duration, tempo, key, mode, energy, loudness,
 * moods and embedding. Genres are left empty (they come from the request or
 * the catalogue, not from the audio). Safe to call from several threads.
 * @returns 0, or -1 with @p err filled (bad arguments, libaubio, libebur128 or
 * FFTW failing to start, or audio too short or too quiet to analyse).
 */
int cz_analysis_run(const float *pcm, long frames, int channels, int rate, cz_track_features *out,
                    cz_err *err);

/**
 * @brief cz_analysis_run() for audio whose integrated loudness (BS.1770,
 * every channel) the caller has measured already, as the post worker has
 * its master's: @p loudness_lufs is used as is and the meter is skipped
 * (a third of the work). NAN measures it as cz_analysis_run() does.
 */
int cz_analysis_run_measured(const float *pcm, long frames, int channels, int rate,
                             double loudness_lufs, cz_track_features *out, cz_err *err);

/**
 * @brief Reads an audio file libsndfile can read (streaming it) and analyses
 * it like cz_analysis_run().
 * @returns 0, or -1 with @p err filled.
 */
int cz_analysis_file(const char *path, cz_track_features *out, cz_err *err);

/**
 * @brief The features as the QA report's `analysis` object: tempo_bpm, key
 * ("A"), key_index, mode ("minor"), camelot ("8A"), energy, loudness_lufs,
 * duration_s, moods, genres and embedding (base64 of 32 float32 LE).
 * @returns a new object, which the caller deletes.
 */
cJSON *cz_analysis_json(const cz_track_features *f);

/** @brief Adds @p tag to @p f's genres unless full, empty or already there. */
void cz_analysis_add_genre(cz_track_features *f, const char *tag);

/** @brief The name of pitch class @p key (0 = "C", 1 = "C#" .. 11 = "B"). */
const char *cz_analysis_key_name(int key);

#endif
