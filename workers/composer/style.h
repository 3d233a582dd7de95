/* The composer's musical knowledge as data: a style per genre (tempo range,
 * swing, drum kit and patterns, bass and comping patterns, instruments,
 * chord progressions), a shade per mood, and the General MIDI program and
 * role of every instrument the prompt vocabulary knows.
 *
 * Patterns are strings on a grid of sixteen sixteenth notes per 4/4 bar,
 * one character per step, so a groove reads the way a drummer writes it:
 *
 *   drums    'X' accent, 'x' normal, 'o' ghost, '.' rest
 *   bass     'R' root (accented), 'r' root, '3' '5' '6' '7' '8' chord third,
 *            fifth, sixth, seventh, octave, 'a' a step leading to the next
 *            chord's root, '-' holds the note before, '.' rest
 *   comping  'X' chord (accented), 'x' chord, '-' hold, '.' rest
 *   arpeggio '0'..'5' chord tone from the bottom, '-' hold, '.' rest
 *
 * Progressions are Roman numerals relative to the key, one chord per
 * harmonic-rhythm unit: upper case major, lower case minor, 'b'/'#' before
 * the numeral alter its root, and a suffix adds colour: "7" (dominant on
 * upper case, minor seventh on lower case), "maj7", "9", "maj9", "6",
 * "add9", "sus2", "sus4", "7b5", "dim". Example: "ii7 V7 Imaj7 vi7".
 *
 * The tables are read-only and shared by every thread. */
#ifndef CZ_STYLE_H
#define CZ_STYLE_H

#include <stddef.h>

/** Instrument groups: one stem each. MIDI channel c plays in group c % 5. */
typedef enum cz_role {
    CZ_ROLE_HARMONY = 0,
    CZ_ROLE_BASS = 1,
    CZ_ROLE_PAD = 2,
    CZ_ROLE_MELODY = 3,
    CZ_ROLE_DRUMS = 4,
    CZ_ROLE_COUNT = 5,
    CZ_ROLE_NONE = -1
} cz_role;

#define CZ_ROLE_BIT(r) (1u << (r))

/** Drum lanes: General MIDI percussion keys, rows of a drum pattern. */
typedef enum cz_lane {
    CZ_LANE_KICK,
    CZ_LANE_SNARE,
    CZ_LANE_RIM,
    CZ_LANE_CLAP,
    CZ_LANE_HAT,
    CZ_LANE_PEDAL_HAT,
    CZ_LANE_OPEN_HAT,
    CZ_LANE_RIDE,
    CZ_LANE_SHAKER,
    CZ_LANE_CONGA,
    CZ_LANE_COUNT
} cz_lane;

/** A groove: one pattern per lane (NULL: the lane is silent). */
typedef struct cz_groove {
    const char *lane[CZ_LANE_COUNT];
} cz_groove;

/** A genre's way of playing. */
typedef struct cz_style {
    const char *genre;     /* the control token it answers to */
    double bpm_lo, bpm_hi; /* tempo range when none is given */
    double swing8;         /* delay of off-beat eighths, in sixteenths (0.67 = triplet) */
    double swing16;        /* delay of off-beat sixteenths, in sixteenths */
    double laid_back_ms;   /* snare and comping played this late */
    int kit;               /* drum kit (bank 128 program) */
    unsigned roles;        /* roles that play unless the prompt says otherwise */
    int harmony[2], bass[2], pad[2], melody[2]; /* GM programs, the seed picks */
    int guitar, synth, lead, arp;               /* what "guitar", "synth"... mean here */
    const cz_groove *groove[3];                 /* light, main, full */
    const char *bass_line[2];                   /* patterns, or "walk" */
    const char *comp[2];                        /* comping patterns */
    const char *arp_line;                       /* arpeggio pattern */
    int arp_step;                               /* sixteenths per arpeggio note */
    int extensions;                             /* 0 triads, 1 sevenths, 2 ninths */
    int beats_per_chord;                        /* harmonic rhythm: 2, 4 or 8 */
    int section_bars;                           /* 8, or 12 for the blues */
    int melody_density;                         /* 0 sparse, 1 medium, 2 busy */
    int arps;                                   /* an arpeggio joins by default */
    int minor_bias;                             /* +1 leans minor, -1 major */
    int reverb;                                 /* reverb send of melodic parts, 0..127 */
    double trim_db;                             /* evens out loudness across styles */
    const char *const *major;                   /* progressions, NULL-terminated */
    const char *const *minor;
} cz_style;

/** How a mood colours a piece. */
typedef struct cz_mood {
    const char *token;
    double valence; /* -1 sad .. +1 happy */
    double energy;  /* -1 calm .. +1 intense */
    int minor;      /* +1 asks for minor, -1 major, 0 either */
    int reverb;     /* added to the reverb send */
} cz_mood;

/** Instrument flags. */
enum {
    CZ_INS_SUSTAIN = 1, /* long tones only (pads, strings, choir, organ) */
    CZ_INS_KIT = 2,     /* a drum kit (bank 128) */
    CZ_INS_TUNED = 4,   /* tuned percussion on channel 5 (timpani, taiko) */
    CZ_INS_STYLE = 8,   /* program comes from the style ("guitar", "synth"...) */
    CZ_INS_PERC = 16,   /* hand percussion lanes in the kit */
};

/** An instrument of the vocabulary. */
typedef struct cz_instrument {
    const char *token;
    int program;       /* GM program, or kit for CZ_INS_KIT; -1 with CZ_INS_STYLE */
    cz_role role, alt; /* where it plays first, and where when that is taken */
    int lo, hi;        /* the register its melodies use */
    unsigned flags;
} cz_instrument;

/** @brief The style for genre token @p genre; the default style for NULL or "". */
const cz_style *cz_style_find(const char *genre);

/** @brief The mood for token @p token, or NULL. */
const cz_mood *cz_mood_find(const char *token);

/** @brief The instrument for token @p token, or NULL. */
const cz_instrument *cz_instrument_find(const char *token);

/** @brief The first instrument that plays GM @p program, or NULL. */
const cz_instrument *cz_instrument_for_program(int program);

/** @brief The GM program an instrument plays in @p style (resolves "guitar"...). */
int cz_instrument_program(const cz_instrument *ins, const cz_style *style);

/** @brief All styles; @p n gets their number (the last one is the default). */
const cz_style *cz_styles(size_t *n);

/** @brief A short name for General MIDI program @p program ("warm-pad"). */
const char *cz_program_name(int program);

/** @brief The name of role @p r ("harmony", "bass", "pad", "melody", "drums"). */
const char *cz_role_name(cz_role r);

/** @brief The GM key of drum lane @p lane. */
int cz_lane_key(cz_lane lane);

#endif
