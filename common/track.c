/* Track features: the Camelot wheel (see track.h). */
#include "track.h"

#include <stdio.h>
#include <stdlib.h>

int cz_camelot_number(int key, int mode) {
    /* Majors: C is 8B and each fifth up is one step on. A minor key sits
     * on its relative major's number (a minor third up). */
    int major = mode ? key : (key + 3) % 12;
    return (7 * major + 7) % 12 + 1;
}

void cz_camelot_code(int key, int mode, char out[4]) {
    // 1..12 by construction; the modulo lets the compiler see it fits.
    unsigned n = (unsigned)cz_camelot_number(key, mode) % 13u;
    snprintf(out, 4, "%u%c", n, mode ? 'B' : 'A');
}

int cz_camelot_distance(int key_a, int mode_a, int key_b, int mode_b) {
    int d = abs(cz_camelot_number(key_a, mode_a) - cz_camelot_number(key_b, mode_b));
    if (d > 6)
        d = 12 - d;
    return d + (mode_a != mode_b);
}
