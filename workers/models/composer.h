/* composer@1, the embedded default model: prompt controls -> algorithmic
 * composition (compose.h) -> a Standard MIDI File (midi.h) -> FluidSynth
 * (render.h): the mix, and one stem per instrument group when the request
 * asks for stems, as 48 kHz stereo float WAV files. Deterministic: the same
 * controls, duration and seed give the same bytes in every file. */
#ifndef CZ_COMPOSER_H
#define CZ_COMPOSER_H

#include "workers/composer/score.h"
#include "workers/models/backend.h"

/** @brief The composer@1 backend (the SoundFont is CADENZA_SOUNDFONT). */
extern const cz_backend cz_composer_backend;

/**
 * @brief Writes @p score as a job's files: the MIDI score, the mix and, when
 * req->stems, one stem per instrument group that plays, rendered with @p r.
 * Progress goes from @p from (the share of the job done before) to 1.
 * Shared by every backend that ends in a score (composer@1, neural@1).
 * @returns 0; 1 canceled; -1 with @p err and out->failure_class.
 */
int cz_composer_write(cz_renderer *r, const cz_score *score, const cz_gen_request *req,
                      const cz_gen_hooks *hooks, double from, cz_gen_result *out, cz_err *err);

#endif
