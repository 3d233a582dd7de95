/* The FluidSynth renderer behind the inference pool: turns generation
 * parameters into stereo audio with a General MIDI SoundFont, in-process,
 * deterministically for a given seed. The SoundFont is loaded once per
 * worker (cz_render_open) and reused for every job. */
#ifndef CZ_RENDER_H
#define CZ_RENDER_H

#include <stdint.h>

#include "audio.h"

typedef struct cz_renderer cz_renderer;

typedef struct cz_render_params {
    double duration_s; /* 1..600 */
    double tempo_bpm;  /* 0: chosen from the seed */
    const char *key;   /* "A minor", "C#", "Eb major", "F#m"...; NULL: from the seed */
    const char *mood;  /* may be NULL */
    const char *genre; /* may be NULL */
    uint64_t seed;
} cz_render_params;

/**
 * @brief Progress callback, called at least once per second of rendered audio.
 * @returns 0 to go on, non-zero to cancel the render.
 */
typedef int (*cz_render_progress_fn)(void *user, double fraction);

/**
 * @brief Creates a renderer at @p sample_rate with the SoundFont at @p soundfont.
 * @returns the renderer (free with cz_render_close), or NULL with @p err filled.
 */
cz_renderer *cz_render_open(const char *soundfont, unsigned sample_rate, cz_err *err);

/**
 * @brief Renders a piece for @p p into @p out (stereo float at the renderer's
 * rate, exactly round(duration_s * rate) frames). Same params and seed give
 * bit-identical samples.
 * @returns 0; 1 if @p progress asked to cancel; -1 with @p err filled.
 */
int cz_render_generate(cz_renderer *r, const cz_render_params *p, cz_render_progress_fn progress,
                       void *user, cz_audio *out, cz_err *err);

/** @brief Frees the renderer and its synth; NULL-safe. */
void cz_render_close(cz_renderer *r);

#endif
