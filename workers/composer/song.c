/* The helpers that the planner (compose.c) and the part writers (parts.c)
 * both call: the random streams and the chord lookups, which read a
 * section's chords from the planned progressions or from given material.
 * They live apart so that compose.c calls parts.c and both call this file,
 * never the other way round (see song.h for the types). */
#include <stdint.h>

#include "common/rand.h"
#include "workers/composer/song.h"

/* ================================================================ random */

uint64_t cz_rng_next(cz_rng *r) {
    return cz_splitmix64_next(&r->s);
}

unsigned cz_rng_below(cz_rng *r, unsigned n) {
    return n ? (unsigned)(cz_rng_next(r) % n) : 0;
}

double cz_rng_unit(cz_rng *r) {
    return cz_rand_unit(cz_rng_next(r));
}

double cz_rng_gauss(cz_rng *r) {
    // The sum of four uniforms: close enough to normal, never beyond +-3.5.
    double s = cz_rng_unit(r) + cz_rng_unit(r) + cz_rng_unit(r) + cz_rng_unit(r);
    return (s - 2.0) * 1.7320508;
}

/* ================================================================ chords */

/* The outro's last bar leads home: the last chord of the progression (or
 * of the given section) if it is a dominant or subdominant, else the
 * dominant itself. */
static const cz_chord *cz_song_outro_chord(const cz_chord *last) {
    if (last->root == 7 || last->root == 5 || last->root == 10)
        return last;
    static const cz_chord dominant = {7, 4, {0, 4, 7, 10}};
    return &dominant;
}

/* A given section's chord: an intro, breakdown or outro longer than the
 * section it borrows from starts it again. */
static const cz_chord *cz_song_given_chord(const cz_section *sec, int step) {
    const cz_given_section *g = sec->given;
    if (sec->kind == CZ_SEC_OUTRO && step >= (sec->bars - 1) * 16)
        return cz_song_outro_chord(&g->chords[g->n_chords - 1]);
    int steps = g->bars * 16;
    return &g->chords[g->chord_at[((step % steps) + steps) % steps]];
}

const cz_chord *cz_song_chord(const cz_song *s, const cz_section *sec, int step) {
    if (sec->given)
        return cz_song_given_chord(sec, step);
    const cz_prog *p = &s->prog[sec->prog];
    int per = s->style->beats_per_chord * 4; // sixteenths per chord
    int i = (step / per) % p->n;
    if (sec->kind == CZ_SEC_OUTRO && step >= (sec->bars - 1) * 16)
        return cz_song_outro_chord(&p->ch[p->n - 1]);
    return &p->ch[i];
}

int cz_chord_tone(const cz_song *s, const cz_chord *ch, int i, int *octave) {
    int iv = ch->iv[i % ch->n] + 12 * (i / ch->n);
    if (octave)
        *octave = iv / 12;
    return (s->tonic + ch->root + iv) % 12;
}
