/* A piece being composed, shared by the planner (compose.c) and the part
 * writers (parts.c). compose.c fills in the plan; parts.c turns it into
 * notes; song.c holds the helpers both call (random streams, chord lookups),
 * so the calls go compose.c -> parts.c -> song.c and never back. Given
 * material (material.h) is read into the composer's terms by material.c,
 * which compose.c and parts.c call and which calls neither. Not for other
 * modules: they call cz_compose() or cz_compose_material() (compose.h). */
#ifndef CZ_SONG_H
#define CZ_SONG_H

#include <stdbool.h>
#include <stdint.h>

#include "workers/composer/material.h"
#include "workers/composer/score.h"
#include "workers/composer/style.h"

#define CZ_MAX_SECTIONS 768 /* 600 s at 300 BPM is 750 bars: one-bar given sections fit */
#define CZ_MAX_CHORDS 16
#define CZ_MAX_MOTIF 16

/* ---------------------------------------------------------------- random */

/** A splitmix64 stream (common/rand.h). */
typedef struct cz_rng {
    uint64_t s;
} cz_rng;

/** @brief Advances @p r. @returns the next 64 random bits. */
uint64_t cz_rng_next(cz_rng *r);

/** @brief A uniform integer. @returns 0 .. n-1, or 0 when @p n is 0. */
unsigned cz_rng_below(cz_rng *r, unsigned n);

/** @brief A uniform real. @returns a value in [0, 1). */
double cz_rng_unit(cz_rng *r);

/** @brief A roughly normal real. @returns about N(0, 1), within +-3.5. */
double cz_rng_gauss(cz_rng *r);

/* ---------------------------------------------------------------- harmony */

/** A chord: root as semitones above the tonic, intervals above the root. */
typedef struct cz_chord {
    int root;
    int n;
    int iv[6]; /* ascending, iv[0] == 0 */
} cz_chord;

typedef struct cz_prog {
    int n;
    cz_chord ch[CZ_MAX_CHORDS];
    char text[128]; /* as written in style.c, for the plan */
} cz_prog;

/* ---------------------------------------------------------------- form */

typedef enum cz_section_kind {
    CZ_SEC_INTRO,
    CZ_SEC_VERSE,
    CZ_SEC_CHORUS,
    CZ_SEC_BRIDGE,
    CZ_SEC_BREAK,
    CZ_SEC_OUTRO
} cz_section_kind;

struct cz_given_section; /* given material, below */

typedef struct cz_section {
    cz_section_kind kind;
    int start_bar, bars;
    int prog;       /* 0 verse, 1 chorus, 2 bridge */
    int groove;     /* -1 no drums, 0 light, 1 main, 2 full */
    int occurrence; /* how many sections of this kind came before */
    unsigned roles; /* groups that play (CZ_ROLE_BIT) */
    double energy;  /* 0.5 .. 1: scales velocities */
    /* the given section it plays (or borrows chords from); NULL: planned */
    const struct cz_given_section *given;
} cz_section;

/** A one-bar melodic idea: onsets and lengths in sixteenths, and the
 * contour as scale steps from the note before. */
typedef struct cz_motif {
    int n;
    int start[CZ_MAX_MOTIF], len[CZ_MAX_MOTIF], step[CZ_MAX_MOTIF];
} cz_motif;

/** The instrument in one slot of a group. */
typedef struct cz_slot {
    bool on;
    int chan, bank, program, lo, hi;
    unsigned flags; /* CZ_INS_* */
    char token[24];
} cz_slot;

typedef struct cz_song {
    /* the plan (compose.c) */
    const cz_style *style;  /* rhythm, groove, instruments */
    const cz_style *flavor; /* harmony: the style's own, or a second genre's */
    double bpm, duration_s, valence, energy;
    int tonic, minor;
    cz_prog prog[3];
    cz_slot slot[CZ_ROLE_COUNT][2]; /* [group][0 main, 1 second] */
    int bars;                       /* bars before the final chord */
    cz_section sec[CZ_MAX_SECTIONS];
    int n_sec;
    bool percussion, vinyl;
    int reverb; /* send of the melodic parts */
    cz_motif motif[3];
    const struct cz_given *given; /* the material played, or NULL */
    /* writing (parts.c) */
    int given_shift; /* semitones the given tune moves into the melody's range */
    cz_score *score;
    cz_rng rng, human;
    double ticks_per_ms;
    int melody_prev;
    int voicing[2][6], n_voicing[2]; /* last comp and pad voicings */
} cz_song;

/* ---------------------------------------------------------------- given material */

/** A given note: onset and length in sixteenths from its section's start. */
typedef struct cz_given_note {
    int step, len, pitch;
} cz_given_note;

/** A section of given material in the composer's terms: 4/4 bars, chords
 * relative to the tonic, one chord index per sixteenth. */
typedef struct cz_given_section {
    int index;            /* in the material, for the plan */
    cz_section_kind kind; /* verse, chorus or bridge */
    int bars;
    cz_chord *chords; /* in time order */
    int n_chords;
    int *chord_at;        /* bars * 16 entries: the chord sounding at each step */
    cz_given_note *notes; /* by onset */
    int n_notes;
} cz_given_section;

typedef struct cz_given {
    int tonic, minor;
    double bpm; /* 0: the plan chooses */
    char meter[8];
    int bars; /* all sections' 4/4 bars */
    cz_given_section *sec;
    int n_sec;
} cz_given;

/**
 * @brief Checks @p m (cz_material_check) and reads it into the composer's
 * terms (material.c).
 * @returns 0 with *out set (free with cz_given_free), or -1 with @p err filled.
 */
int cz_given_read(const cz_material *m, cz_given **out, cz_err *err);

/**
 * @brief How far to move the given tune so that as many of its notes as
 * possible lie in [lo, hi]: the smallest such move, none when it fits.
 * @returns the shift in semitones, a multiple of 12.
 */
int cz_given_octaves(const cz_given *g, int lo, int hi);

/** @brief Frees @p g; NULL-safe. */
void cz_given_free(cz_given *g);

/* ---------------------------------------------------------------- chords and parts */

/** @brief The chord at sixteenth @p step of section @p sec. @returns it (not to be freed). */
const cz_chord *cz_song_chord(const cz_song *s, const cz_section *sec, int step);

/**
 * @brief Chord tone @p i of @p ch, counting up through octaves; *octave (when
 * not NULL) gets how many octaves above the chord's root it lies.
 * @returns its absolute pitch class, 0..11.
 */
int cz_chord_tone(const cz_song *s, const cz_chord *ch, int i, int *octave);

/**
 * @brief Writes every part of every section and the final chord into the
 * score.
 */
void cz_parts_write(cz_song *s);

#endif
