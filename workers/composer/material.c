/* Given material (material.h) read into the composer's terms (song.h).
 *
 * cz_material_check refuses what the arranger cannot play and says where:
 * the section, the chord or note (counted from 0) and what to change.
 * cz_given_read then turns checked material into what the part writers
 * read: sections of 4/4 bars (two 2/4 bars make one, a 2/2 bar is one),
 * chords as cz_chord relative to the tonic with the index of the chord
 * sounding at every sixteenth, and notes as onsets from the section's
 * start in time order. cz_given_octaves finds the octave that puts the
 * tune in the melody instrument's register.
 *
 * Nothing here draws random numbers or writes notes: compose.c lays out the
 * form around the given sections and parts.c plays them, so this file
 * calls nothing of theirs. */
#include "workers/composer/material.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "workers/composer/song.h"

/* ================================================================ checks */

/* Sixteenths in one bar of the material's meter; 0 for a meter the
 * arranger does not play. */
static int material_bar_steps(const cz_material *m) {
    if ((m->meter_num == 4 && m->meter_den == 4) || (m->meter_num == 2 && m->meter_den == 2))
        return 16;
    if (m->meter_num == 2 && m->meter_den == 4)
        return 8;
    return 0;
}

/* Where an event sits: inside its section's bars and its own bar. */
static int material_check_place(int i, const char *what, int j, int bar, int pos, int bars, int per,
                                cz_err *err) {
    if (bar < 0 || bar >= bars)
        return cz_err_set(err,
                          "material: section %d, %s %d is at bar %d; the section has bars "
                          "0..%d (counted from 0)",
                          i, what, j, bar, bars - 1);
    if (pos < 0 || pos >= per)
        return cz_err_set(err,
                          "material: section %d, %s %d is at position %d of bar %d, outside "
                          "the bar: positions are sixteenths 0..%d; carry it into the next "
                          "bar instead",
                          i, what, j, pos, bar, per - 1);
    return 0;
}

static int material_check_chords(const cz_material_section *sec, int i, int per, cz_err *err) {
    if (sec->n_chords < 1 || !sec->chords)
        return cz_err_set(err,
                          "material: section %d has no chords; give at least one, at bar 0 "
                          "position 0",
                          i);
    // At most one chord per position: a map of the section's sixteenths.
    unsigned char *taken = cz_calloc((size_t)sec->bars * (size_t)per, 1);
    int rc = 0;
    for (int j = 0; j < sec->n_chords && rc == 0; j++) {
        const cz_material_chord *ch = &sec->chords[j];
        rc = material_check_place(i, "chord", j, ch->bar, ch->pos, sec->bars, per, err);
        if (rc == 0 && (ch->root < 0 || ch->root > 11))
            rc = cz_err_set(err,
                            "material: section %d, chord %d has root %d; a root is a pitch "
                            "class 0..11 (0 C, 9 A)",
                            i, j, ch->root);
        if (rc == 0 && (ch->quality < CZ_MATERIAL_MAJOR || ch->quality > CZ_MATERIAL_DOMINANT7))
            rc = cz_err_set(err,
                            "material: section %d, chord %d has quality %d; use major, minor, "
                            "diminished or dominant seventh",
                            i, j, (int)ch->quality);
        if (rc == 0 && taken[ch->bar * per + ch->pos]++)
            rc = cz_err_set(err,
                            "material: section %d, chord %d is a second chord at bar %d "
                            "position %d; give one chord per position",
                            i, j, ch->bar, ch->pos);
    }
    free(taken);
    return rc;
}

static int material_check_notes(const cz_material_section *sec, int i, int per, cz_err *err) {
    if (sec->n_notes < 0 || (sec->n_notes > 0 && !sec->notes))
        return cz_err_set(err, "material: section %d has %d notes and no array of them", i,
                          sec->n_notes);
    for (int j = 0; j < sec->n_notes; j++) {
        const cz_material_note *n = &sec->notes[j];
        if (material_check_place(i, "note", j, n->bar, n->pos, sec->bars, per, err) != 0)
            return -1;
        if (n->pitch < 0 || n->pitch > 127)
            return cz_err_set(err,
                              "material: section %d, note %d has pitch %d; a pitch is a MIDI "
                              "key 0..127 (60 is middle C)",
                              i, j, n->pitch);
        if (n->dur < 1)
            return cz_err_set(err,
                              "material: section %d, note %d lasts %d sixteenths; a note "
                              "lasts at least one",
                              i, j, n->dur);
        long end = (long)n->bar * per + n->pos + n->dur;
        if (end > (long)sec->bars * per)
            return cz_err_set(err,
                              "material: section %d, note %d (bar %d, position %d) lasts %d "
                              "sixteenths, past the end of the section's %d bars; shorten "
                              "it",
                              i, j, n->bar, n->pos, n->dur, sec->bars);
    }
    return 0;
}

static int material_check_section(const cz_material_section *sec, int i, int per, cz_err *err) {
    if (sec->kind < CZ_MATERIAL_VERSE || sec->kind > CZ_MATERIAL_BRIDGE)
        return cz_err_set(err,
                          "material: section %d has kind %d; use verse, chorus or bridge "
                          "(a tune's A, B or C part)",
                          i, (int)sec->kind);
    if (sec->bars < 1 || sec->bars > CZ_MATERIAL_MAX_BARS)
        return cz_err_set(err, "material: section %d has %d bars; give 1..%d", i, sec->bars,
                          CZ_MATERIAL_MAX_BARS);
    if (per == 8 && sec->bars % 2)
        return cz_err_set(err,
                          "material: section %d has %d bars of 2/4; the arranger plays two "
                          "2/4 bars as one 4/4 bar, so a section needs an even number",
                          i, sec->bars);
    if (material_check_chords(sec, i, per, err) != 0)
        return -1;
    return material_check_notes(sec, i, per, err);
}

int cz_material_check(const cz_material *m, cz_err *err) {
    if (!m)
        return cz_err_set(err, "material: none given");
    if (m->n_sections < 1 || !m->sections)
        return cz_err_set(err, "material: no sections; give at least one, with its chords");
    if (m->n_sections > CZ_MATERIAL_MAX_SECTIONS)
        return cz_err_set(err, "material: %d sections; give at most %d", m->n_sections,
                          CZ_MATERIAL_MAX_SECTIONS);
    if (m->tonic < 0 || m->tonic > 11)
        return cz_err_set(err, "material: tonic %d is not a pitch class 0..11 (0 C, 9 A)",
                          m->tonic);
    if (m->minor != 0 && m->minor != 1)
        return cz_err_set(err, "material: minor is %d; use 1 for a minor key, 0 for major",
                          m->minor);
    int per = material_bar_steps(m);
    if (per == 0)
        return cz_err_set(err, "material: the arranger plays 4/4, 2/2 and 2/4 material; got %d/%d",
                          m->meter_num, m->meter_den);
    if (m->bpm != 0 && !(m->bpm >= 20 && m->bpm <= 300))
        return cz_err_set(err,
                          "material: tempo %.1f BPM is outside 20..300; give 0 to let the "
                          "plan choose",
                          m->bpm);
    for (int i = 0; i < m->n_sections; i++)
        if (material_check_section(&m->sections[i], i, per, err) != 0)
            return -1;
    return 0;
}

/* ================================================================ reading */

/* A chord of the material as the composer writes chords: its root in
 * semitones above the tonic. */
static cz_chord given_chord(const cz_material_chord *in, int tonic) {
    static const int intervals[4][4] = {{0, 4, 7}, {0, 3, 7}, {0, 3, 6}, {0, 4, 7, 10}};
    cz_chord ch = {.root = (in->root - tonic + 12) % 12,
                   .n = in->quality == CZ_MATERIAL_DOMINANT7 ? 4 : 3};
    memcpy(ch.iv, intervals[in->quality], sizeof intervals[0]);
    return ch;
}

typedef struct given_onset {
    int step, j;
} given_onset;

static int given_onset_cmp(const void *a, const void *b) {
    const given_onset *x = a, *y = b;
    return x->step != y->step ? (x->step > y->step) - (x->step < y->step)
                              : (x->j > y->j) - (x->j < y->j);
}

static int given_note_cmp(const void *a, const void *b) {
    const cz_given_note *x = a, *y = b;
    if (x->step != y->step)
        return (x->step > y->step) - (x->step < y->step);
    if (x->pitch != y->pitch)
        return (x->pitch > y->pitch) - (x->pitch < y->pitch);
    return (x->len > y->len) - (x->len < y->len);
}

static void given_read_section(const cz_material_section *in, int index, int per, int tonic,
                               cz_given_section *out) {
    static const cz_section_kind kinds[] = {CZ_SEC_VERSE, CZ_SEC_CHORUS, CZ_SEC_BRIDGE};
    out->index = index;
    out->kind = kinds[in->kind];
    out->bars = in->bars * per / 16;
    int steps = out->bars * 16;

    // Chords in time order, and the one sounding at each sixteenth (the
    // first chord also covers the steps before it).
    given_onset *order = cz_calloc((size_t)in->n_chords, sizeof *order);
    for (int j = 0; j < in->n_chords; j++)
        order[j] = (given_onset){in->chords[j].bar * per + in->chords[j].pos, j};
    qsort(order, (size_t)in->n_chords, sizeof *order, given_onset_cmp);
    out->n_chords = in->n_chords;
    out->chords = cz_calloc((size_t)in->n_chords, sizeof *out->chords);
    out->chord_at = cz_calloc((size_t)steps, sizeof *out->chord_at);
    for (int k = 0; k < in->n_chords; k++) {
        out->chords[k] = given_chord(&in->chords[order[k].j], tonic);
        int from = k == 0 ? 0 : order[k].step;
        int to = k + 1 < in->n_chords ? order[k + 1].step : steps;
        for (int st = from; st < to; st++)
            out->chord_at[st] = k;
    }
    free(order);

    out->n_notes = in->n_notes;
    out->notes = cz_calloc((size_t)(in->n_notes ? in->n_notes : 1), sizeof *out->notes);
    for (int j = 0; j < in->n_notes; j++) {
        const cz_material_note *n = &in->notes[j];
        out->notes[j] = (cz_given_note){n->bar * per + n->pos, n->dur, n->pitch};
    }
    qsort(out->notes, (size_t)in->n_notes, sizeof *out->notes, given_note_cmp);
}

int cz_given_read(const cz_material *m, cz_given **out, cz_err *err) {
    *out = NULL;
    if (cz_material_check(m, err) != 0)
        return -1;
    int per = material_bar_steps(m);
    cz_given *g = cz_calloc(1, sizeof *g);
    g->tonic = m->tonic;
    g->minor = m->minor;
    g->bpm = m->bpm;
    snprintf(g->meter, sizeof g->meter, "%d/%d", m->meter_num, m->meter_den);
    g->n_sec = m->n_sections;
    g->sec = cz_calloc((size_t)g->n_sec, sizeof *g->sec);
    for (int i = 0; i < g->n_sec; i++) {
        given_read_section(&m->sections[i], i, per, m->tonic, &g->sec[i]);
        g->bars += g->sec[i].bars;
    }
    *out = g;
    return 0;
}

int cz_given_octaves(const cz_given *g, int lo, int hi) {
    // The smallest move that puts the most notes in range: none when the
    // tune already fits.
    int best = 0, best_in = -1;
    for (int d = 0; d <= 10; d++)
        for (int sign = 1; sign >= -1; sign -= 2) {
            int shift = 12 * d * sign, in = 0;
            for (int i = 0; i < g->n_sec; i++)
                for (int j = 0; j < g->sec[i].n_notes; j++) {
                    int p = g->sec[i].notes[j].pitch + shift;
                    in += p >= lo && p <= hi;
                }
            if (in > best_in) {
                best = shift;
                best_in = in;
            }
        }
    return best;
}

void cz_given_free(cz_given *g) {
    if (!g)
        return;
    for (int i = 0; i < g->n_sec; i++) {
        free(g->sec[i].chords);
        free(g->sec[i].chord_at);
        free(g->sec[i].notes);
    }
    free(g->sec);
    free(g);
}
