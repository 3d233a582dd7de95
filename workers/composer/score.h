/* A score: what the composer writes and both the MIDI writer and the
 * synthesizer read. Notes sit on a tick grid of CZ_SCORE_PPQ ticks per
 * quarter note at one fixed tempo; each MIDI channel has one instrument
 * (a part) with its mix settings. Channel c sounds in instrument group
 * c % CZ_ROLE_COUNT (see style.h), which is also FluidSynth's mapping of
 * channels to audio groups, so one group renders to one stem.
 *
 * A part may shorten its instrument's release with a SoundFont 2.01 NRPN
 * (generator 38, volEnvRelease): pads and strings in General MIDI fonts ring
 * for two seconds after a note ends, so chords changing every bar keep twice
 * the voices sounding. Both the synthesizer and the MIDI file carry the same
 * NRPN, so any player renders the same release. */
#ifndef CZ_SCORE_H
#define CZ_SCORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CZ_SCORE_PPQ 480
#define CZ_SCORE_CHANNELS 16
#define CZ_SCORE_DRUM_CHANNEL 9

/** One note: start and length in ticks. */
typedef struct cz_score_note {
    uint32_t tick, len;
    uint8_t chan, key, vel;
} cz_score_note;

/** The instrument on one MIDI channel and its mix. */
typedef struct cz_score_part {
    bool used;
    int bank, program;       /* bank 128 is the drum kits */
    int volume, pan, reverb; /* CC 7, 10, 91 */
    int release_tc;          /* release time offset in timecents (SF2 NRPN), 0: as sampled */
    char instrument[24];     /* the instrument token, for provenance */
} cz_score_part;

typedef struct cz_score {
    double bpm;        /* quarter notes per minute, constant */
    double duration_s; /* exact length of the piece */
    uint32_t end_tick; /* duration in ticks, rounded up */
    int key_root;      /* pitch class of the tonic, for the key signature */
    int minor;
    double gain; /* synthesizer master gain */
    cz_score_part parts[CZ_SCORE_CHANNELS];
    cz_score_note *notes; /* sorted by tick once composed */
    size_t n, cap;
} cz_score;

/**
 * @brief Adds a note (clipped to the piece's end; silent keys are dropped).
 */
void cz_score_add(cz_score *s, uint32_t tick, uint32_t len, int chan, int key, int vel);

/** @brief Sorts the notes by tick, channel and key: a stable, total order. */
void cz_score_sort(cz_score *s);

/** @brief The sample frame of @p tick at @p rate (ticks to seconds at the score's tempo). */
uint64_t cz_score_frame(const cz_score *s, uint64_t tick, unsigned rate);

/** @brief True when channel @p chan has at least one note. */
bool cz_score_channel_sounds(const cz_score *s, int chan);

/**
 * @brief The four controller changes (CC 99, 98, 38, 6) of the SF2 NRPN that
 * offsets the release of a part by @p timecents; written to @p cc as
 * {controller, value} pairs.
 */
void cz_score_release_nrpn(int timecents, int cc[4][2]);

/** @brief Frees the notes and zeroes the score; NULL-safe. */
void cz_score_free(cz_score *s);

#endif
