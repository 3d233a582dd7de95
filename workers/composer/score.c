/* Scores: see score.h. A growing array of notes and a little arithmetic. */
#include "workers/composer/score.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

void cz_score_add(cz_score *s, uint32_t tick, uint32_t len, int chan, int key, int vel) {
    if (key < 0 || key > 127 || vel <= 0 || tick >= s->end_tick || len == 0 || chan < 0 ||
        chan >= CZ_SCORE_CHANNELS)
        return;
    if (len > s->end_tick - tick)
        len = s->end_tick - tick;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->notes = cz_realloc(s->notes, s->cap * sizeof *s->notes);
    }
    s->notes[s->n++] =
        (cz_score_note){tick, len, (uint8_t)chan, (uint8_t)key, (uint8_t)(vel > 127 ? 127 : vel)};
}

static int cz_score_note_cmp(const void *a, const void *b) {
    const cz_score_note *x = a, *y = b;
    if (x->tick != y->tick)
        return x->tick < y->tick ? -1 : 1;
    if (x->chan != y->chan)
        return x->chan < y->chan ? -1 : 1;
    if (x->key != y->key)
        return x->key < y->key ? -1 : 1;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (x->vel > y->vel) - (x->vel < y->vel);
}

void cz_score_sort(cz_score *s) {
    if (s->n > 1)
        qsort(s->notes, s->n, sizeof *s->notes, cz_score_note_cmp);
}

uint64_t cz_score_frame(const cz_score *s, uint64_t tick, unsigned rate) {
    // seconds = tick * 60 / (bpm * ppq), in IEEE doubles: the same frame on
    // every run and every x86-64 or ARM64 machine.
    return (uint64_t)llround((double)tick * 60.0 * rate / (s->bpm * CZ_SCORE_PPQ));
}

bool cz_score_channel_sounds(const cz_score *s, int chan) {
    for (size_t i = 0; i < s->n; i++)
        if (s->notes[i].chan == chan)
            return true;
    return false;
}

void cz_score_release_nrpn(int timecents, int cc[4][2]) {
    // SF2.01: NRPN MSB 120 selects SoundFont generators, LSB the generator;
    // the 14-bit data is an offset around 8192, in units of 2 timecents for
    // envelope times. The LSB goes first: the MSB applies the value.
    int data = 8192 + timecents / 2;
    data = data < 0 ? 0 : data > 16383 ? 16383 : data;
    const int v[4][2] = {{99, 120}, {98, 38}, {38, data & 0x7f}, {6, data >> 7}};
    memcpy(cc, v, sizeof v);
}

void cz_score_free(cz_score *s) {
    if (!s)
        return;
    free(s->notes);
    memset(s, 0, sizeof *s);
}
