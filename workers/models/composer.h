/* composer@1, the embedded default model: prompt controls -> algorithmic
 * composition (compose.h) -> a Standard MIDI File (midi.h) -> FluidSynth
 * (render.h): the mix, and one stem per instrument group when the request
 * asks for stems, as 48 kHz stereo float WAV files. Deterministic: the same
 * controls, duration and seed give the same bytes in every file. */
#ifndef CZ_COMPOSER_H
#define CZ_COMPOSER_H

#include "workers/models/backend.h"

/** @brief The composer@1 backend (the SoundFont is CADENZA_SOUNDFONT). */
extern const cz_backend cz_composer_backend;

#endif
