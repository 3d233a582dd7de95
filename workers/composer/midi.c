/* Standard MIDI File writer: see midi.h.
 *
 * Each track is built as a list of (tick, bytes) events, sorted so that at
 * one tick the set-up comes first, then note-offs, then note-ons (a note
 * repeated back to back is released before it is struck again), and written
 * with delta times as variable-length quantities. No running status: the
 * files are a little larger and every reader agrees on them. */
#include "workers/composer/midi.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/mem.h"

static void put_byte(cz_buf *b, unsigned v) {
    cz_buf_putc(b, (char)(unsigned char)v);
}

static void put_be(cz_buf *b, uint32_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--)
        put_byte(b, (v >> (8 * i)) & 0xff);
}

static void put_vlq(cz_buf *b, uint32_t v) {
    unsigned char tmp[5];
    int n = 0;
    tmp[n++] = v & 0x7f;
    while ((v >>= 7) > 0)
        tmp[n++] = (unsigned char)(0x80 | (v & 0x7f));
    while (n > 0)
        put_byte(b, tmp[--n]);
}

/* ---------------------------------------------------------------- events */

typedef struct cz_midi_event {
    uint32_t tick;
    uint8_t order; /* 0 set-up, 1 note off, 2 note on */
    uint8_t len;
    uint8_t data[4];
    uint32_t seq; /* insertion order: keeps the sort stable */
} cz_midi_event;

typedef struct cz_track {
    cz_midi_event *ev;
    size_t n, cap;
} cz_track;

static void cz_track_add(cz_track *t, uint32_t tick, int order, int len, int b0, int b1, int b2) {
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->ev = cz_realloc(t->ev, t->cap * sizeof *t->ev);
    }
    t->ev[t->n] = (cz_midi_event){tick,
                                  (uint8_t)order,
                                  (uint8_t)len,
                                  {(uint8_t)b0, (uint8_t)b1, (uint8_t)b2, 0},
                                  (uint32_t)t->n};
    t->n++;
}

static int cz_midi_event_cmp(const void *a, const void *b) {
    const cz_midi_event *x = a, *y = b;
    if (x->tick != y->tick)
        return x->tick < y->tick ? -1 : 1;
    if (x->order != y->order)
        return x->order < y->order ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void cz_meta_text(cz_buf *b, int type, const char *text) {
    size_t n = strlen(text);
    put_byte(b, 0x00);
    put_byte(b, 0xff);
    put_byte(b, (unsigned)type);
    put_vlq(b, (uint32_t)n);
    cz_buf_append(b, text, n);
}

/* Writes a track chunk: the optional name, the events, end of track. */
static void cz_track_write(cz_buf *out, cz_track *t, const char *name, const cz_buf *meta,
                           uint32_t end_tick) {
    cz_buf body = {0};
    if (name)
        cz_meta_text(&body, 0x03, name);
    if (meta)
        cz_buf_append(&body, meta->data, meta->len);
    if (t->n > 1)
        qsort(t->ev, t->n, sizeof *t->ev, cz_midi_event_cmp);
    uint32_t now = 0;
    for (size_t i = 0; i < t->n; i++) {
        put_vlq(&body, t->ev[i].tick - now);
        cz_buf_append(&body, t->ev[i].data, t->ev[i].len);
        now = t->ev[i].tick;
    }
    put_vlq(&body, end_tick > now ? end_tick - now : 0);
    put_byte(&body, 0xff);
    put_byte(&body, 0x2f);
    put_byte(&body, 0x00);
    cz_buf_append(out, "MTrk", 4);
    put_be(out, (uint32_t)body.len, 4);
    cz_buf_append(out, body.data, body.len);
    cz_buf_free(&body);
}

/* Sharps (positive) or flats (negative) of the key, for the key signature. */
static int cz_midi_sharps(int root, int minor) {
    static const int major[12] = {0, -5, 2, -3, 4, -1, 6, 1, -4, 3, -2, 5};
    return major[((minor ? root + 3 : root) % 12 + 12) % 12];
}

int cz_midi_encode(const cz_score *s, unsigned char **out, size_t *len, cz_err *err) {
    *out = NULL;
    *len = 0;
    if (!s || !(s->bpm > 0))
        return cz_err_set(err, "MIDI: no score to write");
    int tracks = 1;
    for (int c = 0; c < CZ_SCORE_CHANNELS; c++)
        tracks += s->parts[c].used;
    cz_buf b = {0};
    cz_buf_append(&b, "MThd", 4);
    put_be(&b, 6, 4);
    put_be(&b, 1, 2);
    put_be(&b, (uint32_t)tracks, 2);
    put_be(&b, CZ_SCORE_PPQ, 2);

    // The conductor: name, time signature, key signature, tempo.
    cz_buf meta = {0};
    static const unsigned char time_sig[] = {0x00, 0xff, 0x58, 0x04, 0x04, 0x02, 0x18, 0x08};
    cz_buf_append(&meta, time_sig, sizeof time_sig);
    unsigned char key_sig[] = {0x00,
                               0xff,
                               0x59,
                               0x02,
                               (unsigned char)(int8_t)cz_midi_sharps(s->key_root, s->minor),
                               (unsigned char)(s->minor ? 1 : 0)};
    cz_buf_append(&meta, key_sig, sizeof key_sig);
    uint32_t usec = (uint32_t)lround(60e6 / s->bpm);
    unsigned char tempo[] = {0x00,
                             0xff,
                             0x51,
                             0x03,
                             (unsigned char)(usec >> 16),
                             (unsigned char)(usec >> 8),
                             (unsigned char)usec};
    cz_buf_append(&meta, tempo, sizeof tempo);
    cz_track conductor = {0};
    cz_track_write(&b, &conductor, "Cadenza composer@1", &meta, s->end_tick);
    cz_buf_free(&meta);

    for (int c = 0; c < CZ_SCORE_CHANNELS; c++) {
        const cz_score_part *p = &s->parts[c];
        if (!p->used)
            continue;
        cz_track t = {0};
        if (c != CZ_SCORE_DRUM_CHANNEL) // the drum channel picks its kit by program alone
            cz_track_add(&t, 0, 0, 3, 0xb0 | c, 0, 0);
        cz_track_add(&t, 0, 0, 2, 0xc0 | c, p->program & 0x7f, 0);
        cz_track_add(&t, 0, 0, 3, 0xb0 | c, 7, p->volume);
        cz_track_add(&t, 0, 0, 3, 0xb0 | c, 10, p->pan);
        cz_track_add(&t, 0, 0, 3, 0xb0 | c, 91, p->reverb);
        cz_track_add(&t, 0, 0, 3, 0xb0 | c, 93, 0);
        if (p->release_tc != 0) {
            int cc[4][2];
            cz_score_release_nrpn(p->release_tc, cc);
            for (int i = 0; i < 4; i++)
                cz_track_add(&t, 0, 0, 3, 0xb0 | c, cc[i][0], cc[i][1]);
        }
        for (size_t i = 0; i < s->n; i++) {
            const cz_score_note *n = &s->notes[i];
            if (n->chan != c)
                continue;
            uint32_t off = n->tick + n->len > s->end_tick ? s->end_tick : n->tick + n->len;
            cz_track_add(&t, n->tick, 2, 3, 0x90 | c, n->key, n->vel);
            cz_track_add(&t, off, 1, 3, 0x80 | c, n->key, 64);
        }
        cz_track_write(&b, &t, p->instrument, NULL, s->end_tick);
        free(t.ev);
    }
    *len = b.len;
    *out = (unsigned char *)cz_buf_take(&b);
    return 0;
}

int cz_midi_write(const cz_score *s, const char *path, cz_err *err) {
    unsigned char *data;
    size_t len;
    if (cz_midi_encode(s, &data, &len, err) != 0)
        return -1;
    FILE *f = fopen(path, "wb");
    if (!f) {
        free(data);
        return cz_err_set(err, "cannot create MIDI file %s: %s", path, strerror(errno));
    }
    size_t w = fwrite(data, 1, len, f);
    int rc = fclose(f);
    free(data);
    if (w != len || rc != 0) {
        unlink(path);
        return cz_err_set(err, "cannot write MIDI file %s: %s", path, strerror(errno));
    }
    return 0;
}
