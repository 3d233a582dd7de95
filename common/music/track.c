/* Track features: the Camelot wheel and the stored embedding (see track.h). */
#include "common/music/track.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int cz_camelot_number(int key, int mode) {
    /* Majors: C is 8B and each fifth up is one step on. A minor key sits
     * on its relative major's number (a minor third up). */
    int major = mode ? key : (key + 3) % 12;
    return (7 * major + 7) % 12 + 1;
}

void cz_camelot_code(int key, int mode, char out[4]) {
    int number = cz_camelot_number(key, mode), i = 0;
    if (number >= 10)
        out[i++] = '1';
    out[i++] = (char)('0' + number % 10);
    out[i++] = mode ? 'B' : 'A';
    out[i] = '\0';
}

int cz_camelot_distance(int key_a, int mode_a, int key_b, int mode_b) {
    int d = abs(cz_camelot_number(key_a, mode_a) - cz_camelot_number(key_b, mode_b));
    if (d > 6)
        d = 12 - d;
    return d + (mode_a != mode_b);
}

void cz_track_embedding_bytes(const cz_track_features *f, unsigned char out[4 * CZ_EMBED_DIM]) {
    for (int i = 0; i < CZ_EMBED_DIM; i++) {
        uint32_t u;
        memcpy(&u, &f->embedding[i], sizeof u);
        for (int b = 0; b < 4; b++)
            out[4 * i + b] = (unsigned char)(u >> (8 * b));
    }
}
