/* Given material: a melody and its chords, written by someone other than the
 * composer (a learned model such as neural@1, a person, a file), for the
 * composer's arranger to orchestrate (cz_compose_material in compose.h).
 *
 * Material is a key, a meter, an optional tempo and a list of sections in
 * the order they are played. Each section has a kind (verse, chorus or
 * bridge; a tune's A, B and C parts are the same three), a length in bars,
 * chords and melody notes. Positions count sixteenth notes from the start
 * of a bar, so a note at bar 2, position 4 starts on the second beat of the
 * third bar of its section. A chord sounds from its position until the next
 * chord of the section; the steps before a section's first chord take that
 * chord too.
 *
 * Meters. The arranger's patterns are 4/4 bars of sixteen sixteenths. A
 * 2/2 bar is the same sixteen sixteenths; two 2/4 bars make one 4/4 bar,
 * so a 2/4 section needs an even number of bars. 3/4 and 6/8 (and any
 * other meter) are refused: their grooves, bass lines and comping would be
 * new patterns in every style.
 *
 * The caller owns every array; nothing here allocates. */
#ifndef CZ_MATERIAL_H
#define CZ_MATERIAL_H

#include "common/err.h"

#define CZ_MATERIAL_MAX_SECTIONS 64
#define CZ_MATERIAL_MAX_BARS 1024 /* bars of one section, in its own meter */

/** What a section is; it sets the groove and energy it is played with. */
typedef enum cz_material_kind {
    CZ_MATERIAL_VERSE,  /* the main groove; a tune's A part */
    CZ_MATERIAL_CHORUS, /* the full groove, a little louder; a B part */
    CZ_MATERIAL_BRIDGE, /* the main groove; a C part */
} cz_material_kind;

#define CZ_MATERIAL_A CZ_MATERIAL_VERSE
#define CZ_MATERIAL_B CZ_MATERIAL_CHORUS
#define CZ_MATERIAL_C CZ_MATERIAL_BRIDGE

/** A chord's quality. */
typedef enum cz_material_quality {
    CZ_MATERIAL_MAJOR,      /* 0 4 7 */
    CZ_MATERIAL_MINOR,      /* 0 3 7 */
    CZ_MATERIAL_DIMINISHED, /* 0 3 6 */
    CZ_MATERIAL_DOMINANT7,  /* 0 4 7 10 */
} cz_material_quality;

/** A melody note: onset and length in sixteenths; pitch a MIDI key (0..127). */
typedef struct cz_material_note {
    int bar, pos, pitch, dur;
} cz_material_note;

/** A chord from its position on: root a pitch class (0 C .. 11 B), not
 * relative to the key. */
typedef struct cz_material_chord {
    int bar, pos, root;
    cz_material_quality quality;
} cz_material_chord;

typedef struct cz_material_section {
    cz_material_kind kind;
    int bars; /* in the material's meter */
    const cz_material_chord *chords;
    int n_chords; /* at least one; at most one per position */
    const cz_material_note *notes;
    int n_notes; /* none is allowed: the section is accompaniment only */
} cz_material_section;

typedef struct cz_material {
    int tonic;                /* pitch class of the key, 0..11 */
    int minor;                /* 1 minor, 0 major */
    int meter_num, meter_den; /* 4/4, 2/2 or 2/4 */
    double bpm;               /* quarter notes per minute, 20..300; 0: the plan chooses */
    const cz_material_section *sections; /* in the order they are played */
    int n_sections;
} cz_material;

/**
 * @brief Checks that @p m is material the arranger can play: one to
 * CZ_MATERIAL_MAX_SECTIONS sections, a key, a meter it plays, a tempo in
 * range, chords and notes inside their section's bars, pitches 0..127.
 * @returns 0, or -1 with @p err naming the first problem (the section and
 * the note or chord, counted from 0) and what to change.
 */
int cz_material_check(const cz_material *m, cz_err *err);

#endif
