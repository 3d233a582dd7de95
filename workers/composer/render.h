/* Synthesis: scores become audio with FluidSynth, in-process, one stereo stem
 * per instrument group plus the mix, deterministically.
 *
 * The SoundFont is loaded once per worker (cz_render_open) and shared by
 * every render; each render gets a fresh synthesizer that borrows it. The
 * synthesizer runs with one audio group per instrument group, so
 * fluid_synth_process() writes each group's sound into that group's stem,
 * and one reverb, whose return is a stem of its own ("reverb"), as on a
 * mixing desk: the mix is the sum of the stems. Stems are therefore always
 * rendered, whether or not a job keeps them, and the mix does not depend on
 * it. (A reverb per group would leave each stem wet, at the price of a
 * reverb unit per group: each costs about as much as all the voices of a
 * sparse piece.)
 *
 * Audio reaches the caller block by block through a sink, so a ten-minute
 * piece needs a few hundred kilobytes rather than a gigabyte. */
#ifndef CZ_RENDER_H
#define CZ_RENDER_H

#include <stdint.h>

#include "workers/composer/score.h"
#include "workers/composer/style.h"
#include "workers/master/audio.h"

/** Stems: one per instrument group (style.h), then the reverb return. */
#define CZ_RENDER_REVERB CZ_ROLE_COUNT
#define CZ_RENDER_STEMS (CZ_ROLE_COUNT + 1)

typedef struct cz_renderer cz_renderer;

/**
 * @brief Progress callback, called at least once per second of rendered audio.
 * @returns 0 to go on, non-zero to cancel the render.
 */
typedef int (*cz_render_progress_fn)(void *user, double fraction);

/**
 * @brief Receives one block of audio: for each stem, interleaved stereo
 * samples (NULL for a stem that stays silent), and the mix.
 * @returns 0, or -1 with @p err filled to stop the render.
 */
typedef int (*cz_render_sink_fn)(void *user, const float *const stems[CZ_RENDER_STEMS],
                                 const float *mix, size_t frames, cz_err *err);

/**
 * @brief Creates a renderer at @p sample_rate with the SoundFont at @p soundfont.
 * @returns the renderer (free with cz_render_close), or NULL with @p err filled.
 */
cz_renderer *cz_render_open(const char *soundfont, unsigned sample_rate, cz_err *err);

/**
 * @brief True when stem @p stem sounds in @p score: a group with notes, or
 * the reverb when a part with notes sends to it.
 */
bool cz_render_stem_sounds(const cz_score *score, int stem);

/** @brief The name of stem @p stem: a group's name, or "reverb". */
const char *cz_render_stem_name(int stem);

/**
 * @brief Renders @p score: exactly round(duration_s * rate) frames, faded out
 * over the last moments, handed to @p sink in blocks. Same score, same samples.
 * @returns 0; 1 if @p progress asked to cancel; -1 with @p err filled.
 */
int cz_render_score(cz_renderer *r, const cz_score *score, cz_render_progress_fn progress,
                    void *user, cz_render_sink_fn sink, void *sink_user, cz_err *err);

/** What cz_render_generate() composes: the request's explicit fields. */
typedef struct cz_render_params {
    double duration_s; /* 1..600 */
    double tempo_bpm;  /* 0: the composer's choice */
    const char *key;   /* "A minor", "C#", "Eb major", "F#m"...; NULL: from the seed */
    const char *mood;  /* may be NULL */
    const char *genre; /* may be NULL */
    uint64_t seed;
} cz_render_params;

/**
 * @brief Composes a piece for @p p with composer@1 and renders its mix into
 * @p out (stereo float at the renderer's rate, exactly round(duration_s *
 * rate) frames). For tests and tools that want a piece in memory.
 * @returns 0; 1 if @p progress asked to cancel; -1 with @p err filled.
 */
int cz_render_generate(cz_renderer *r, const cz_render_params *p, cz_render_progress_fn progress,
                       void *user, cz_audio *out, cz_err *err);

/** @brief Frees the renderer and its SoundFont; NULL-safe. */
void cz_render_close(cz_renderer *r);

#endif
