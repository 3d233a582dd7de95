/* Standard MIDI Files from scores: the composer's MIDI artifact, and what
 * `fluidsynth -F` plays in the benchmark.
 *
 * Format 1 at CZ_SCORE_PPQ ticks per quarter note. Track 1 is the conductor
 * (name, 4/4 time, key signature, tempo); then one track per channel that
 * plays, named after its instrument, which selects its program (on channel
 * 10, its drum kit) and sets volume, pan, reverb send and, where the score
 * shortens it, the release (an SF2 NRPN, see score.h) before its notes.
 * Every track ends at the piece's last tick, so a player stops exactly at
 * the piece's duration. */
#ifndef CZ_MIDI_H
#define CZ_MIDI_H

#include <stddef.h>

#include "common/err.h"
#include "workers/composer/score.h"

/**
 * @brief Encodes @p score as a Standard MIDI File.
 * @returns 0 with *out (caller frees with free()) and *len set, or -1 with
 * @p err filled.
 */
int cz_midi_encode(const cz_score *score, unsigned char **out, size_t *len, cz_err *err);

/**
 * @brief Writes @p score as a Standard MIDI File to exactly @p path.
 * @returns 0, or -1 with @p err filled (a partial file is removed).
 */
int cz_midi_write(const cz_score *score, const char *path, cz_err *err);

#endif
