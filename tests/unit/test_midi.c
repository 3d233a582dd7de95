/* Standard MIDI Files (workers/composer/midi.c), read back by a small parser written
 * here from the SMF 1.0 specification: the header, one track per playing
 * channel, the tempo, key and time signatures, programs and the release
 * NRPN, every note of the score with its tick, and the end of every track
 * at the piece's last tick. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/music/prompt.h"
#include "workers/composer/compose.h"
#include "workers/composer/midi.h"

typedef struct parsed {
    int format, tracks, division;
    uint32_t tempo_us;
    int sharps, minor, numerator;
    int programs[16], nrpn_release[16];
    size_t note_ons;
    uint32_t first_on_tick[16];
    uint32_t track_end[32];
    uint64_t on_ticks_sum;
} parsed;

static uint32_t be(const unsigned char *p, int n) {
    uint32_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

static uint32_t vlq(const unsigned char **p) {
    uint32_t v = 0;
    do
        v = v << 7 | (**p & 0x7f);
    while (*(*p)++ & 0x80);
    return v;
}

static void parse(const unsigned char *d, size_t len, parsed *out) {
    memset(out, 0, sizeof *out);
    memset(out->programs, -1, sizeof out->programs);
    assert_memory_equal(d, "MThd", 4);
    assert_int_equal(be(d + 4, 4), 6);
    out->format = (int)be(d + 8, 2);
    out->tracks = (int)be(d + 10, 2);
    out->division = (int)be(d + 12, 2);
    const unsigned char *p = d + 14, *end = d + len;
    for (int t = 0; t < out->tracks; t++) {
        assert_true(p + 8 <= end);
        assert_memory_equal(p, "MTrk", 4);
        uint32_t n = be(p + 4, 4);
        const unsigned char *q = p + 8, *tend = q + n;
        assert_true(tend <= end);
        uint32_t tick = 0;
        int data_msb[16] = {0}, nrpn_gen[16] = {0};
        while (q < tend) {
            tick += vlq(&q);
            unsigned status = *q++;
            if (status == 0xff) {
                unsigned type = *q++;
                uint32_t l = vlq(&q);
                if (type == 0x51)
                    out->tempo_us = be(q, 3);
                if (type == 0x59) {
                    out->sharps = (int8_t)q[0];
                    out->minor = q[1];
                }
                if (type == 0x58)
                    out->numerator = q[0];
                if (type == 0x2f) {
                    out->track_end[t] = tick;
                    assert_true(q + l == tend);
                }
                q += l;
                continue;
            }
            assert_true(status & 0x80); /* the writer uses no running status */
            int ch = status & 0x0f, kind = status & 0xf0;
            if (kind == 0xc0) {
                out->programs[ch] = *q++;
            } else if (kind == 0x90 || kind == 0x80 || kind == 0xb0) {
                int a = *q++, b = *q++;
                if (kind == 0x90 && b > 0) {
                    if (out->note_ons == 0 || tick < out->first_on_tick[ch])
                        out->first_on_tick[ch] = tick;
                    out->note_ons++;
                    out->on_ticks_sum += tick;
                }
                if (kind == 0xb0 && a == 98)
                    nrpn_gen[ch] = b;
                if (kind == 0xb0 && a == 38)
                    data_msb[ch] = b; /* LSB first, then the MSB applies */
                if (kind == 0xb0 && a == 6 && nrpn_gen[ch] == 38)
                    out->nrpn_release[ch] = ((b << 7 | data_msb[ch]) - 8192) * 2;
            } else {
                fail_msg("unexpected status 0x%02x", status);
            }
        }
        p = tend;
    }
    assert_true(p == end);
}

static void compose(const char *prompt, double seconds, uint64_t seed, cz_score *out) {
    cz_prompt_fields f = {.prompt = prompt, .n_instruments = -1};
    cz_controls c;
    cz_err err = {{0}};
    assert_int_equal(cz_prompt_controls(&f, &c, NULL, &err), 0);
    if (cz_compose(&c, seconds, seed, out, NULL, &err) != 0)
        fail_msg("compose: %s", err.msg);
}

static void test_midi_matches_score(void **state) {
    (void)state;
    cz_score s;
    compose("dreamy pop with piano, strings, flute and drums, 96 bpm, E minor", 30, 4, &s);
    unsigned char *data;
    size_t len;
    cz_err err = {{0}};
    assert_int_equal(cz_midi_encode(&s, &data, &len, &err), 0);
    parsed m;
    parse(data, len, &m);
    int used = 0;
    for (int c = 0; c < 16; c++)
        used += s.parts[c].used;
    assert_int_equal(m.format, 1);
    assert_int_equal(m.tracks, used + 1);
    assert_int_equal(m.division, CZ_SCORE_PPQ);
    assert_int_equal(m.tempo_us, 625000); /* 60e6 / 96 */
    assert_int_equal(m.sharps, 1);        /* E minor: one sharp */
    assert_int_equal(m.minor, 1);
    assert_int_equal(m.numerator, 4);
    assert_int_equal(m.note_ons, s.n);
    uint64_t sum = 0;
    for (size_t k = 0; k < s.n; k++)
        sum += s.notes[k].tick;
    assert_true(sum == m.on_ticks_sum);
    for (int t = 0; t < m.tracks; t++)
        assert_int_equal(m.track_end[t], s.end_tick);
    for (int c = 0; c < 16; c++) {
        if (!s.parts[c].used)
            continue;
        assert_int_equal(m.programs[c], s.parts[c].program);
        assert_int_equal(m.nrpn_release[c], s.parts[c].release_tc);
    }
    assert_int_equal(m.nrpn_release[2], -1200); /* the strings' release is halved */

    unsigned char *again;
    size_t len2;
    assert_int_equal(cz_midi_encode(&s, &again, &len2, &err), 0);
    assert_int_equal(len, len2);
    assert_memory_equal(data, again, len);
    free(again);
    free(data);
    cz_score_free(&s);
}

static void test_midi_file(void **state) {
    (void)state;
    cz_score s;
    compose("blues", 5, 1, &s);
    char path[] = "/tmp/cz_test_midi_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    cz_err err = {{0}};
    assert_int_equal(cz_midi_write(&s, path, &err), 0);
    FILE *f = fopen(path, "rb");
    unsigned char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    unlink(path);
    parsed m;
    parse(buf, n, &m);
    assert_int_equal(m.note_ons, s.n);
    assert_int_equal(cz_midi_write(&s, "/nonexistent/dir/x.mid", &err), -1);
    assert_non_null(strstr(err.msg, "/nonexistent/dir/x.mid"));
    cz_score_free(&s);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_midi_matches_score),
        cmocka_unit_test(test_midi_file),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
