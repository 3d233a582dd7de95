/* Unit tests for shared melodies (common/music/melody.c): copies, transposed
 * copies and embedded quotes found at their length, in the right reference
 * and place; unrelated melodies sharing little; the edges (empty, one note,
 * bad pitches); the index against a brute-force search on random
 * melodies over a small alphabet, where long shared runs are common; walks
 * (a melody followed note by note) against whole queries; and CZML files:
 * read back as written, and every way a file can be wrong refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/buf.h"
#include "common/hash.h"
#include "common/music/melody.h"
#include "common/rand.h"

/* @p n pitches of a random walk from 60 with steps within +-@p spread,
 * kept in 36..96. */
static void random_melody(uint64_t seed, int *out, int n, int spread) {
    uint64_t rng = seed;
    int p = 60;
    for (int i = 0; i < n; i++) {
        p += (int)(cz_splitmix64_next(&rng) % (uint64_t)(2 * spread + 1)) - spread;
        p = p < 36 ? 36 : p > 96 ? 96 : p;
        out[i] = p;
    }
}

/* Ten random references of 64 notes, named "ref0".."ref9". */
static cz_melody_index *ten_refs(int refs[10][64]) {
    cz_melody_index *ix = cz_melody_index_new();
    for (int r = 0; r < 10; r++) {
        char name[16];
        snprintf(name, sizeof name, "ref%d", r);
        random_melody(100 + (uint64_t)r, refs[r], 64, 7);
        assert_int_equal(cz_melody_index_add(ix, name, refs[r], 64, NULL), r);
    }
    assert_int_equal(cz_melody_index_count(ix), 10);
    return ix;
}

static void test_exact_copy_found_whole(void **state) {
    (void)state;
    int refs[10][64];
    cz_melody_index *ix = ten_refs(refs);
    for (int r = 0; r < 10; r++) {
        cz_melody_match m;
        assert_int_equal(cz_melody_index_longest(ix, refs[r], 64, &m, NULL), 64);
        assert_int_equal(m.notes, 64);
        assert_int_equal(m.ref, r);
        assert_int_equal(m.ref_start, 0);
        assert_int_equal(m.query_start, 0);
        char name[16];
        snprintf(name, sizeof name, "ref%d", r);
        assert_string_equal(m.name, name);
        assert_string_equal(cz_melody_index_name(ix, r), name);
    }
    assert_null(cz_melody_index_name(ix, 10));
    assert_null(cz_melody_index_name(ix, -1));
    cz_melody_index_free(ix);
}

static void test_transposed_copy_found_whole(void **state) {
    (void)state;
    int refs[10][64];
    cz_melody_index *ix = ten_refs(refs);
    const int shifts[] = {-7, -3, 2, 5, 12};
    for (size_t k = 0; k < sizeof shifts / sizeof *shifts; k++) {
        int q[64];
        for (int i = 0; i < 64; i++)
            q[i] = refs[3][i] + shifts[k];
        cz_melody_match m;
        assert_int_equal(cz_melody_index_longest(ix, q, 64, &m, NULL), 64);
        assert_int_equal(m.ref, 3);
        assert_int_equal(m.ref_start, 0);
        assert_int_equal(m.query_start, 0);
    }
    cz_melody_index_free(ix);
}

static void test_quote_in_longer_melody_found_at_its_length(void **state) {
    (void)state;
    int refs[10][64];
    cz_melody_index *ix = ten_refs(refs);
    // Notes 20..31 of ref7, a fourth up, at 40..51 of a random melody; a
    // leap of 30 or more on each side (no reference has one) ends it there.
    int q[100];
    random_melody(999, q, 100, 7);
    for (int i = 0; i < 12; i++)
        q[40 + i] = refs[7][20 + i] + 5;
    q[39] = q[40] + 30 > 96 ? q[40] - 30 : q[40] + 30;
    q[52] = q[51] + 31 > 96 ? q[51] - 31 : q[51] + 31;
    cz_melody_match m;
    assert_int_equal(cz_melody_index_longest(ix, q, 100, &m, NULL), 12);
    assert_int_equal(m.ref, 7);
    assert_string_equal(m.name, "ref7");
    assert_int_equal(m.ref_start, 20);
    assert_int_equal(m.query_start, 40);
    cz_melody_index_free(ix);
}

static void test_unrelated_melodies_share_little(void **state) {
    (void)state;
    int refs[10][64];
    cz_melody_index *ix = ten_refs(refs);
    int worst = 0;
    for (int k = 0; k < 50; k++) {
        int q[200];
        random_melody(5000 + (uint64_t)k, q, 200, 7);
        cz_melody_match m;
        int got = cz_melody_index_longest(ix, q, 200, &m, NULL);
        assert_true(got >= 1);
        worst = got > worst ? got : worst;
    }
    // 15 possible steps and 50 * 200 * 640 places to line up: runs of 6
    // notes (5 intervals) are expected a few times, 8 about 1 time in 25.
    print_message("longest run shared by unrelated melodies: %d notes\n", worst);
    assert_true(worst <= 8);
    cz_melody_index_free(ix);
}

static void test_edges(void **state) {
    (void)state;
    cz_melody_index *ix = cz_melody_index_new();
    int one[1] = {60}, q[3] = {60, 62, 64};
    cz_melody_match m;

    // An empty index shares nothing, even a note.
    assert_int_equal(cz_melody_index_longest(ix, q, 3, &m, NULL), 0);
    assert_int_equal(m.ref, -1);
    assert_null(m.name);

    // Empty and one-note references: one note is shared with the latter only.
    assert_int_equal(cz_melody_index_add(ix, "empty", NULL, 0, NULL), 0);
    assert_int_equal(cz_melody_index_longest(ix, q, 3, &m, NULL), 0);
    assert_int_equal(cz_melody_index_add(ix, NULL, one, 1, NULL), 1);
    assert_string_equal(cz_melody_index_name(ix, 1), "");
    assert_int_equal(cz_melody_index_longest(ix, q, 3, &m, NULL), 1);
    assert_int_equal(m.ref, 1);
    assert_int_equal(cz_melody_index_longest(ix, one, 1, &m, NULL), 1);

    // An empty query shares nothing.
    assert_int_equal(cz_melody_index_longest(ix, q, 0, &m, NULL), 0);
    assert_int_equal(cz_melody_index_longest(ix, NULL, 0, &m, NULL), 0);

    // Two notes: the interval is what counts, not the pitches.
    int two[2] = {40, 42};
    assert_int_equal(cz_melody_index_add(ix, "step", two, 2, NULL), 2);
    assert_int_equal(cz_melody_index_longest(ix, q, 3, &m, NULL), 2);
    assert_int_equal(m.ref, 2);
    assert_int_equal(m.ref_start, 0);
    assert_int_equal(m.query_start, 0);

    // Repeated notes are intervals of 0 like any other.
    int same[6] = {50, 50, 50, 50, 50, 50}, same_q[4] = {70, 70, 70, 70};
    assert_int_equal(cz_melody_index_add(ix, "drone", same, 6, NULL), 3);
    assert_int_equal(cz_melody_index_longest(ix, same_q, 4, &m, NULL), 4);
    assert_int_equal(m.ref, 3);

    // Pitches outside MIDI are refused, and nothing is added.
    cz_err err;
    int bad[3] = {60, 128, 61};
    assert_int_equal(cz_melody_index_add(ix, "bad", bad, 3, &err), -1);
    assert_non_null(strstr(err.msg, "128"));
    assert_int_equal(cz_melody_index_count(ix), 4);
    bad[1] = -1;
    assert_int_equal(cz_melody_index_longest(ix, bad, 3, &m, &err), -1);
    assert_non_null(strstr(err.msg, "-1"));
    cz_melody_index_free(ix);
}

/* The longest run of equal intervals of @p q (@p n notes) and @p r (@p rn
 * notes), in notes, with where it starts; ties go to the first to end in q. */
static int brute(const int *q, int n, const int *r, int rn, int *qs, int *rs) {
    int best = 0;
    for (int i = 0; i + 1 < n; i++)
        for (int j = 0; j + 1 < rn; j++) {
            int l = 0;
            while (i + l + 1 < n && j + l + 1 < rn &&
                   q[i + l + 1] - q[i + l] == r[j + l + 1] - r[j + l])
                l++;
            if (l > best)
                best = l, *qs = i, *rs = j;
        }
    return best ? best + 1 : 0;
}

static void test_agrees_with_brute_force(void **state) {
    (void)state;
    // Steps of -1, 0 or +1 only: long shared runs everywhere.
    enum { REFS = 20, LEN = 80, QLEN = 60 };
    static int refs[REFS][LEN];
    int lens[REFS];
    cz_melody_index *ix = cz_melody_index_new();
    uint64_t rng = 42;
    for (int r = 0; r < REFS; r++) {
        lens[r] = 1 + (int)(cz_splitmix64_next(&rng) % LEN);
        random_melody(7000 + (uint64_t)r, refs[r], lens[r], 1);
        cz_melody_index_add(ix, "r", refs[r], lens[r], NULL);
    }
    for (int k = 0; k < 200; k++) {
        int q[QLEN], n = 2 + (int)(cz_splitmix64_next(&rng) % (QLEN - 1));
        random_melody(90000 + (uint64_t)k, q, n, 1);
        int want = 1;
        for (int r = 0; r < REFS; r++) {
            int qs, rs, got = brute(q, n, refs[r], lens[r], &qs, &rs);
            want = got > want ? got : want;
        }
        cz_melody_match m;
        assert_int_equal(cz_melody_index_longest(ix, q, n, &m, NULL), want);
        if (want < 2)
            continue;
        // The reported place holds the run, within both melodies.
        for (int i = 1; i < m.notes; i++)
            assert_int_equal(q[m.query_start + i] - q[m.query_start + i - 1],
                             refs[m.ref][m.ref_start + i] - refs[m.ref][m.ref_start + i - 1]);
        assert_true(m.ref_start + m.notes <= lens[m.ref]);
        assert_true(m.query_start + m.notes <= n);
    }
    cz_melody_index_free(ix);
}

/* Following a melody note by note gives, at each note, the run it ends
 * with; the longest of those is the whole query's; a peek changes nothing. */
static void test_walk_agrees_with_longest(void **state) {
    (void)state;
    int refs[10][64];
    cz_melody_index *ix = ten_refs(refs);
    for (int k = 0; k < 100; k++) {
        int q[80], n = 1 + k % 80;
        random_melody(5000 + (uint64_t)k, q, n, 2);
        if (k % 3 == 0) // a quote of a reference inside it
            memcpy(q + n / 4, refs[k % 10] + 5, sizeof(int) * (size_t)(n / 2));
        cz_melody_walk w = CZ_MELODY_WALK_START;
        int best = 0;
        for (int i = 0; i < n; i++) {
            int peek = cz_melody_walk_peek(ix, &w, q[i]);
            cz_melody_walk before = w;
            assert_int_equal(cz_melody_walk_peek(ix, &w, q[i]), peek);
            assert_memory_equal(&before, &w, sizeof w);
            int got = cz_melody_walk_push(ix, &w, q[i]);
            assert_int_equal(got, peek);
            assert_true(got >= 1 && got <= i + 1);
            best = got > best ? got : best;
        }
        cz_melody_match m;
        assert_int_equal(cz_melody_index_longest(ix, q, n, &m, NULL), best);
    }
    // A pitch out of range is a note no reference holds: the run restarts.
    cz_melody_walk w = CZ_MELODY_WALK_START;
    cz_melody_walk_push(ix, &w, refs[0][0]);
    assert_int_equal(cz_melody_walk_push(ix, &w, refs[0][1]), 2);
    assert_int_equal(cz_melody_walk_push(ix, &w, 400), 0);
    assert_int_equal(cz_melody_walk_push(ix, &w, refs[0][2]), 1);
    cz_melody_index_free(ix);
    // An empty index shares nothing.
    cz_melody_index *empty = cz_melody_index_new();
    w = CZ_MELODY_WALK_START;
    assert_int_equal(cz_melody_walk_push(empty, &w, 60), 0);
    assert_int_equal(cz_melody_walk_push(empty, &w, 62), 0);
    cz_melody_index_free(empty);
}

/* ---- CZML files ---------------------------------------------------------- */

static void put32(cz_buf *b, uint32_t v) {
    unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24)};
    cz_buf_append(b, le, 4);
}

/* A CZML file of the @p n references at @p refs, @p lens notes each. */
static void czml(cz_buf *b, int refs[][64], const int *lens, int n) {
    uint32_t notes = 0;
    for (int r = 0; r < n; r++)
        notes += (uint32_t)lens[r];
    cz_buf_append(b, "CZML", 4);
    put32(b, 1);
    put32(b, (uint32_t)n);
    put32(b, notes);
    for (int r = 0; r < n; r++) {
        put32(b, (uint32_t)lens[r]);
        for (int i = 0; i < lens[r]; i++)
            cz_buf_append(b, &(unsigned char){(unsigned char)refs[r][i]}, 1);
    }
}

/* Writes @p len bytes at @p data to @p path, and a sidecar that matches
 * @p sidecar_data (the same bytes, unless a test wants it stale). */
static void write_czml(const char *path, const void *data, size_t len, const void *sidecar_data,
                       size_t sidecar_len) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    char hex[CZ_SHA256_HEX], side[512];
    cz_sha256_hex(sidecar_data, sidecar_len, hex);
    snprintf(side, sizeof side, "%s.sha256", path);
    f = fopen(side, "w");
    assert_non_null(f);
    fprintf(f, "%s  x.melodies\n", hex);
    fclose(f);
}

static void expect_refused(const char *path, const char *what) {
    cz_err err = {{0}};
    assert_null(cz_melody_index_load(path, &err));
    if (!strstr(err.msg, what) || !strstr(err.msg, path))
        fail_msg("error \"%s\" does not name %s and \"%s\"", err.msg, path, what);
}

static void test_czml_files(void **state) {
    (void)state;
    char dir[] = "/tmp/cz-melody-XXXXXX", path[64];
    assert_non_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/x.melodies", dir);
    int refs[3][64], lens[3] = {64, 0, 17};
    for (int r = 0; r < 3; r++)
        random_melody(300 + (uint64_t)r, refs[r], 64, 5);
    cz_buf b = {0};
    czml(&b, refs, lens, 3);

    // Read back: the same references, by number, as an index built by hand.
    write_czml(path, b.data, b.len, b.data, b.len);
    cz_err err = {{0}};
    cz_melody_index *ix = cz_melody_index_load(path, &err);
    assert_non_null(ix);
    assert_int_equal(cz_melody_index_count(ix), 3);
    assert_string_equal(cz_melody_index_name(ix, 0), "1");
    assert_string_equal(cz_melody_index_name(ix, 2), "3");
    cz_melody_match m;
    assert_int_equal(cz_melody_index_longest(ix, refs[2], 17, &m, NULL), 17);
    assert_int_equal(m.ref, 2);
    assert_int_equal(cz_melody_index_longest(ix, refs[0], 64, &m, NULL), 64);
    cz_melody_index_free(ix);

    // One byte changed, the sidecar as it was: corrupt.
    cz_buf bad = {0};
    cz_buf_append(&bad, b.data, b.len);
    bad.data[b.len - 1] ^= 1;
    write_czml(path, bad.data, bad.len, b.data, b.len);
    expect_refused(path, "sha256 mismatch, the file is corrupt");
    // Whatever the sidecar says, a file that is not CZML, of another
    // version, cut short, with bytes after its end or a wrong note count.
    struct {
        size_t at, cut;
        unsigned char set;
        const char *what;
    } cases[] = {
        {0, 0, 'X', "not a CZML file"},
        {4, 0, 2, "CZML format version 2"},
        {0, 10, 0, "truncated"},
        {12, 0, 99, "the header says 99 notes"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cz_buf_free(&bad);
        cz_buf_append(&bad, b.data, b.len - cases[i].cut);
        if (!cases[i].cut)
            bad.data[cases[i].at] = (char)cases[i].set;
        write_czml(path, bad.data, bad.len, bad.data, bad.len);
        expect_refused(path, cases[i].what);
    }
    cz_buf_free(&bad);
    cz_buf_append(&bad, b.data, b.len);
    cz_buf_append(&bad, "junk", 4);
    write_czml(path, bad.data, bad.len, bad.data, bad.len);
    expect_refused(path, "4 bytes after the last reference");
    // A pitch over 127.
    cz_buf_free(&bad);
    cz_buf_append(&bad, b.data, b.len);
    bad.data[b.len - 1] = (char)200;
    write_czml(path, bad.data, bad.len, bad.data, bad.len);
    expect_refused(path, "pitch 200");
    // No sidecar, no file.
    char side[80];
    snprintf(side, sizeof side, "%s.sha256", path);
    unlink(side);
    expect_refused(path, "checksum file");
    unlink(path);
    expect_refused(path, "No such file");
    rmdir(dir);
    cz_buf_free(&bad);
    cz_buf_free(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_copy_found_whole),
        cmocka_unit_test(test_transposed_copy_found_whole),
        cmocka_unit_test(test_quote_in_longer_melody_found_at_its_length),
        cmocka_unit_test(test_unrelated_melodies_share_little),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_agrees_with_brute_force),
        cmocka_unit_test(test_walk_agrees_with_longest),
        cmocka_unit_test(test_czml_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
