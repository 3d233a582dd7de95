/* Composing from given material (workers/composer/material.c, compose.c's
 * cz_compose_material): a hand-written tune in two eight-bar sections with
 * its chords, arranged at several durations. Whole bars and a final chord
 * fill the duration; the melody part plays exactly the given notes (moved by
 * whole octaves) at the given places; bass roots and every chord part follow
 * the given chords; the band is cz_compose's for the same controls and
 * seed; the same seed gives the same score; 2/4 material plays in paired
 * bars; bad material is refused with a message that says where and why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/json.h"
#include "common/mem.h"
#include "common/music/prompt.h"
#include "workers/composer/compose.h"
#include "workers/composer/material.h"

#define MAJ CZ_MATERIAL_MAJOR
#define MIN CZ_MATERIAL_MINOR
#define DIM CZ_MATERIAL_DIMINISHED
#define DOM7 CZ_MATERIAL_DOMINANT7

/* C major. The verse: C Am F | Dm G7 | C Am | F G | C, chords changing
 * mid-bar in bars 3 and 6. */
static const cz_material_chord verse_chords[] = {
    {0, 0, 0, MAJ}, {1, 0, 9, MIN}, {2, 0, 5, MAJ}, {3, 0, 2, MIN}, {3, 8, 7, DOM7},
    {4, 0, 0, MAJ}, {5, 0, 9, MIN}, {6, 0, 5, MAJ}, {6, 8, 7, MAJ}, {7, 0, 0, MAJ}};
static const cz_material_note verse_notes[] = {
    {0, 0, 64, 4}, {0, 4, 62, 2},  {0, 6, 60, 2},  {0, 8, 64, 8}, {1, 0, 69, 6},  {1, 6, 67, 2},
    {1, 8, 64, 8}, {2, 0, 65, 4},  {2, 4, 67, 4},  {2, 8, 69, 4}, {2, 12, 65, 4}, {3, 0, 62, 8},
    {3, 8, 67, 4}, {3, 12, 59, 4}, {4, 0, 60, 4},  {4, 4, 64, 4}, {4, 8, 67, 8},  {5, 0, 69, 4},
    {5, 4, 67, 4}, {5, 8, 64, 6},  {5, 14, 62, 2}, {6, 0, 65, 8}, {6, 8, 62, 8},  {7, 0, 60, 16}};
/* The chorus, given out of order on purpose: F G Em Am | F | Bdim G7 | C | G7 C. */
static const cz_material_chord chorus_chords[] = {
    {7, 8, 0, MAJ}, {0, 0, 5, MAJ},  {1, 0, 7, MAJ},  {2, 0, 4, MIN}, {3, 0, 9, MIN},
    {4, 0, 5, MAJ}, {5, 0, 11, DIM}, {5, 8, 7, DOM7}, {6, 0, 0, MAJ}, {7, 0, 7, DOM7}};
static const cz_material_note chorus_notes[] = {
    {0, 0, 69, 4}, {0, 4, 72, 4}, {0, 8, 69, 8}, {1, 0, 71, 4},  {1, 4, 67, 4}, {1, 8, 62, 8},
    {2, 0, 64, 2}, {2, 2, 67, 2}, {2, 4, 71, 4}, {2, 8, 67, 8},  {3, 0, 72, 8}, {3, 8, 69, 8},
    {4, 0, 69, 4}, {4, 4, 72, 4}, {4, 8, 69, 4}, {4, 12, 65, 4}, {5, 0, 65, 8}, {5, 8, 67, 8},
    {6, 0, 64, 4}, {6, 4, 67, 4}, {6, 8, 72, 8}, {7, 0, 67, 8},  {7, 8, 60, 8}};

#define N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static cz_material_section song_sections[2] = {
    {CZ_MATERIAL_VERSE, 8, verse_chords, N(verse_chords), verse_notes, N(verse_notes)},
    {CZ_MATERIAL_CHORUS, 8, chorus_chords, N(chorus_chords), chorus_notes, N(chorus_notes)}};

static cz_material song(void) {
    return (cz_material){.tonic = 0,
                         .minor = 0,
                         .meter_num = 4,
                         .meter_den = 4,
                         .bpm = 100,
                         .sections = song_sections,
                         .n_sections = 2};
}

static cz_controls controls_of(const char *prompt) {
    cz_prompt_fields f = {.prompt = prompt, .n_instruments = -1};
    cz_controls c;
    cz_err err = {{0}};
    if (cz_prompt_controls(&f, &c, NULL, &err) != 0)
        fail_msg("%s: %s", prompt, err.msg);
    return c;
}

static cJSON *arrange(const char *prompt, const cz_material *m, double seconds, uint64_t seed,
                      cz_score *s) {
    cz_controls c = controls_of(prompt);
    cJSON *plan = NULL;
    cz_err err = {{0}};
    if (cz_compose_material(&c, m, seconds, seed, s, &plan, &err) != 0)
        fail_msg("%s, %.1f s: %s", prompt, seconds, err.msg);
    return plan;
}

/* ---------------------------------------------------------------- what to expect */

static int bar_steps(const cz_material *m) {
    return m->meter_num == 2 && m->meter_den == 4 ? 8 : 16;
}

/* The chord (root, pitch classes) sounding at @p step of given section @p g. */
static int chord_at(const cz_material *m, int g, int step, int pcs[4]) {
    static const int iv[4][4] = {{0, 4, 7, -1}, {0, 3, 7, -1}, {0, 3, 6, -1}, {0, 4, 7, 10}};
    const cz_material_section *sec = &m->sections[g];
    int per = bar_steps(m), span = sec->bars * per;
    step %= span;
    const cz_material_chord *best = NULL, *first = NULL;
    for (int j = 0; j < sec->n_chords; j++) {
        const cz_material_chord *c = &sec->chords[j];
        int at = c->bar * per + c->pos;
        if (!first || at < first->bar * per + first->pos)
            first = c;
        if (at <= step && (!best || at > best->bar * per + best->pos))
            best = c;
    }
    if (!best)
        best = first;
    for (int i = 0; i < 4; i++)
        pcs[i] = iv[best->quality][i] < 0 ? -1 : (best->root + iv[best->quality][i]) % 12;
    return best->root;
}

/* One section of the plan's form, with where it starts. */
typedef struct form_sec {
    char kind[16];
    int start, bars, material;
} form_sec;

static int form_of(const cJSON *plan, form_sec *out, int max) {
    int n = 0, bar = 0;
    const cJSON *form = cJSON_GetObjectItem(plan, "form");
    for (const cJSON *f = form->child; f && n < max; f = f->next, n++) {
        snprintf(out[n].kind, sizeof out[n].kind, "%s", cz_json_str(f, "section"));
        out[n].start = bar;
        out[n].bars = (int)cz_json_num(f, "bars", 0);
        out[n].material = (int)cz_json_num(f, "material", -1);
        bar += out[n].bars;
    }
    return n;
}

/* The form section that holds sixteenth @p step of the piece. */
static const form_sec *section_at(const form_sec *f, int n, int step) {
    for (int i = 0; i < n; i++)
        if (step >= f[i].start * 16 && step < (f[i].start + f[i].bars) * 16)
            return &f[i];
    return NULL;
}

/* The chord of the piece at @p step: -1 outside the form. An outro's last
 * bar is the dominant (G7 in C: the material's last chord is no V or IV). */
static int piece_chord(const cz_material *m, const form_sec *f, int n, int step, int pcs[4]) {
    const form_sec *sec = section_at(f, n, step);
    if (!sec)
        return -1;
    int k = step - sec->start * 16;
    if (!strcmp(sec->kind, "outro") && k >= (sec->bars - 1) * 16) {
        const int g7[4] = {7, 11, 2, 5};
        memcpy(pcs, g7, sizeof g7);
        return 7;
    }
    return chord_at(m, sec->material, k, pcs); // a 2/4 step counts the same sixteenths
}

typedef struct want_note {
    int step, pitch;
} want_note;

/* The notes the melody should play, in order: a verse, chorus or bridge all
 * of its section's that start before it ends (the last may be cut short),
 * an outro of two bars or more its first bar, an intro none. */
static int melody_of(const cz_material *m, const form_sec *f, int n, want_note *out, int max) {
    int per = bar_steps(m), k = 0;
    for (int i = 0; i < n; i++) {
        if (!strcmp(f[i].kind, "intro") || f[i].material < 0)
            continue;
        const cz_material_section *g = &m->sections[f[i].material];
        int until = f[i].bars * 16;
        if (!strcmp(f[i].kind, "outro"))
            until = f[i].bars >= 2 ? 16 : 0;
        for (int j = 0; j < g->n_notes; j++) {
            int step = g->notes[j].bar * per + g->notes[j].pos;
            if (step < until && k < max)
                out[k++] = (want_note){f[i].start * 16 + step, g->notes[j].pitch};
        }
    }
    return k;
}

static int want_cmp(const void *a, const void *b) {
    const want_note *x = a, *y = b;
    return x->step != y->step ? x->step - y->step : x->pitch - y->pitch;
}

/* ---------------------------------------------------------------- checks */

/* The melody channel (4, index 3) plays the given notes, all moved by the
 * plan's "transpose", within the humanisation's few milliseconds. */
static void check_melody(const cz_material *m, const cJSON *plan, const cz_score *s) {
    form_sec f[64];
    int nf = form_of(plan, f, 64);
    static want_note want[4096];
    int nw = melody_of(m, f, nf, want, 4096);
    qsort(want, (size_t)nw, sizeof *want, want_cmp);
    const cJSON *mat = cJSON_GetObjectItem(plan, "material");
    int shift = (int)cz_json_num(mat, "transpose", 99);
    assert_int_equal(shift % 12, 0);
    uint32_t tail = (uint32_t)cz_json_num(plan, "bars", 0) * 16 * 120;
    int k = 0;
    for (size_t i = 0; i < s->n; i++) {
        const cz_score_note *n = &s->notes[i];
        if (n->chan != 3 || n->tick + 30 >= tail) // the tail's held note is the tonic
            continue;
        if (k >= nw)
            fail_msg("an extra melody note %d at tick %u", n->key, n->tick);
        double at = want[k].step * 120.0;
        if (fabs(n->tick - at) > 20 || n->key != want[k].pitch + shift)
            fail_msg("melody note %d: key %d at tick %u; given %d (+%d) at step %d", k, n->key,
                     n->tick, want[k].pitch, shift, want[k].step);
        k++;
    }
    assert_int_equal(k, nw);
}

/* Bass notes that start on a chord's onset play its root; chord parts
 * (comping, arpeggio, pads, counter-line) play its tones. */
static void check_chords(const cz_material *m, const cJSON *plan, const cz_score *s) {
    form_sec f[64];
    int nf = form_of(plan, f, 64);
    int onsets = 0, rooted = 0, tones = 0;
    for (size_t i = 0; i < s->n; i++) {
        const cz_score_note *n = &s->notes[i];
        int step = (int)lround(n->tick / 120.0), pcs[4], before[4];
        int root = piece_chord(m, f, nf, step, pcs);
        if (root < 0)
            continue;
        if (n->chan == 1) {
            int prev = step > 0 ? piece_chord(m, f, nf, step - 1, before) : -1;
            bool onset = prev < 0 || memcmp(pcs, before, sizeof pcs) != 0 || step % 16 == 0;
            if (onset) {
                onsets++;
                if (n->key % 12 != root)
                    fail_msg("bass %d at step %d: the chord's root is %d", n->key, step, root);
                rooted++;
            }
        } else if (n->chan == 0 || n->chan == 2 || n->chan == 5 || n->chan == 7 || n->chan == 8) {
            bool in = false;
            for (int j = 0; j < 4; j++)
                in |= pcs[j] == n->key % 12;
            if (!in)
                fail_msg("channel %d plays %d at step %d, not in the chord on %d", n->chan + 1,
                         n->key, step, root);
            tones++;
        }
    }
    assert_true(rooted > 0 && onsets == rooted && tones > 50);
}

/* ---------------------------------------------------------------- tests */

static void test_fills_duration(void **state) {
    (void)state;
    cz_material m = song();
    const double durations[] = {3, 8, 20, 30, 45, 61.7, 90, 180, 600};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        cz_score s;
        cJSON *plan = arrange("pop with flute", &m, durations[i], 7 + i, &s);
        double bar = 240.0 / cz_json_num(plan, "tempo_bpm", 0);
        double bars = cz_json_num(plan, "bars", -1), tail = cz_json_num(plan, "tail_s", -1);
        double min_tail = durations[i] < 4 ? durations[i] / 2 : 2.0;
        assert_true(cz_json_num(plan, "tempo_bpm", 0) == 100);
        assert_string_equal(cz_json_str(plan, "key"), "C major");
        assert_true(fabs(bars * bar + tail - durations[i]) < 0.002);
        assert_true(tail >= min_tail - 0.002 && tail < min_tail + bar + 0.002);
        form_sec f[64];
        int nf = form_of(plan, f, 64), sum = 0;
        for (int k = 0; k < nf; k++) {
            sum += f[k].bars;
            assert_true(f[k].material == 0 || f[k].material == 1);
        }
        assert_int_equal(sum, (int)bars);
        // The given sections play in order, whole but for the last, which
        // may stop after a four-bar phrase; the outro takes what is left.
        int played = 0;
        for (int k = 0; k < nf; k++)
            if (!strcmp(f[k].kind, "verse") || !strcmp(f[k].kind, "chorus")) {
                assert_string_equal(f[k].kind, played % 2 ? "chorus" : "verse");
                assert_int_equal(f[k].material, played % 2);
                bool last = k + 1 == nf || !strcmp(f[k + 1].kind, "outro");
                assert_true(f[k].bars == 8 || (last && (f[k].bars % 4 == 0 || nf <= 2)));
                played++;
            }
        assert_true(played >= (bars >= 20 ? 2 : bars >= 1 ? 1 : 0));
        for (int k = 0; k < nf; k++)
            if (!strcmp(f[k].kind, "outro"))
                assert_true(f[k].bars < 8);
        const cJSON *mat = cJSON_GetObjectItem(plan, "material");
        assert_string_equal(cz_json_str(mat, "source"), "given");
        assert_int_equal((int)cz_json_num(mat, "sections", 0), 2);
        assert_int_equal((int)cz_json_num(mat, "bars", 0), 16);
        assert_null(cJSON_GetObjectItem(plan, "progressions"));
        // Notes stay in the piece; the bass ends on the held tonic.
        bool tonic = false;
        for (size_t k = 0; k < s.n; k++) {
            assert_true(s.notes[k].tick + s.notes[k].len <= s.end_tick);
            tonic |= s.notes[k].chan == 1 && s.notes[k].key % 12 == 0 &&
                     s.notes[k].tick + 30 >= (uint32_t)bars * 1920;
        }
        assert_true(tonic);
        if (bars >= 1)
            check_melody(&m, plan, &s);
        cJSON_Delete(plan);
        cz_score_free(&s);
    }
}

static void test_melody_and_chords_are_given(void **state) {
    (void)state;
    cz_material m = song();
    const double durations[] = {30, 61.7, 150};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        cz_score s;
        cJSON *plan = arrange("pop with flute", &m, durations[i], 3, &s);
        // The tune lies around middle C; the flute plays it an octave up.
        assert_int_equal((int)cz_json_num(cJSON_GetObjectItem(plan, "material"), "transpose", 0),
                         12);
        check_melody(&m, plan, &s);
        check_chords(&m, plan, &s);
        cJSON_Delete(plan);
        cz_score_free(&s);
    }
}

/* A style without a lead (techno) still sounds the given tune; given tempo
 * 0 lets the plan choose within the style's range. */
static void test_tune_always_has_a_voice(void **state) {
    (void)state;
    cz_material m = song();
    m.bpm = 0;
    cz_score s;
    cJSON *plan = arrange("techno", &m, 40, 5, &s);
    double bpm = cz_json_num(plan, "tempo_bpm", 0);
    assert_true(bpm >= 124 * 0.94 && bpm <= 132 * 1.06);
    bool melody = false;
    for (const cJSON *g = cJSON_GetObjectItem(plan, "groups")->child; g; g = g->next)
        melody |= !strcmp(g->valuestring, "melody");
    assert_true(melody);
    check_melody(&m, plan, &s);
    cJSON_Delete(plan);
    cz_score_free(&s);
}

static bool same_score(const cz_score *a, const cz_score *b) {
    if (a->n != b->n || a->bpm != b->bpm || memcmp(a->parts, b->parts, sizeof a->parts) != 0)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (a->notes[i].tick != b->notes[i].tick || a->notes[i].len != b->notes[i].len ||
            a->notes[i].key != b->notes[i].key || a->notes[i].vel != b->notes[i].vel ||
            a->notes[i].chan != b->notes[i].chan)
            return false;
    return true;
}

/* The same seed gives the same score and plan, another seed another
 * performance; the band is the one cz_compose plans for the same controls
 * and seed. */
static void test_seeds_and_band(void **state) {
    (void)state;
    cz_material m = song();
    cz_score a, b, c, planned;
    cJSON *pa = arrange("jazzy hip hop with vibes", &m, 50, 42, &a);
    cJSON *pb = arrange("jazzy hip hop with vibes", &m, 50, 42, &b);
    cJSON *pc = arrange("jazzy hip hop with vibes", &m, 50, 43, &c);
    assert_true(same_score(&a, &b));
    assert_false(same_score(&a, &c));
    char *ja = cJSON_PrintUnformatted(pa), *jb = cJSON_PrintUnformatted(pb);
    assert_string_equal(ja, jb);
    free(ja);
    free(jb);

    cz_controls ctl = controls_of("jazzy hip hop with vibes");
    cJSON *pp = NULL;
    cz_err err = {{0}};
    assert_int_equal(cz_compose(&ctl, 50, 42, &planned, &pp, &err), 0);
    char *ia = cJSON_PrintUnformatted(cJSON_GetObjectItem(pa, "instruments"));
    char *ip = cJSON_PrintUnformatted(cJSON_GetObjectItem(pp, "instruments"));
    assert_string_equal(ia, ip);
    assert_string_equal(cz_json_str(pa, "style"), cz_json_str(pp, "style"));
    assert_true(memcmp(a.parts, planned.parts, sizeof a.parts) == 0); // programs and mix
    free(ia);
    free(ip);
    cJSON_Delete(pa);
    cJSON_Delete(pb);
    cJSON_Delete(pc);
    cJSON_Delete(pp);
    cz_score_free(&a);
    cz_score_free(&b);
    cz_score_free(&c);
    cz_score_free(&planned);
}

/* Two 2/4 bars play as one 4/4 bar: a note at 2/4 bar 3, position 2 sounds
 * at 4/4 bar 1, position 10. */
static void test_two_four(void **state) {
    (void)state;
    static const cz_material_chord chords[] = {{0, 0, 9, MIN}, {2, 0, 2, MIN}, {3, 4, 4, DOM7},
                                               {4, 0, 9, MIN}, {6, 0, 4, MAJ}, {7, 0, 9, MIN}};
    static const cz_material_note notes[] = {
        {0, 0, 69, 2}, {0, 2, 72, 2}, {0, 4, 76, 4}, {1, 0, 74, 4}, {1, 4, 72, 4},
        {2, 0, 74, 2}, {2, 2, 77, 2}, {2, 4, 74, 4}, {3, 2, 71, 6}, {4, 0, 72, 8},
        {5, 0, 69, 8}, {6, 0, 68, 4}, {6, 4, 71, 4}, {7, 0, 69, 8}};
    cz_material_section polka = {CZ_MATERIAL_A, 8, chords, N(chords), notes, N(notes)};
    cz_material m = {.tonic = 9,
                     .minor = 1,
                     .meter_num = 2,
                     .meter_den = 4,
                     .bpm = 110,
                     .sections = &polka,
                     .n_sections = 1};
    cz_score s;
    cJSON *plan = arrange("folk with fiddle", &m, 45, 9, &s);
    const cJSON *mat = cJSON_GetObjectItem(plan, "material");
    assert_int_equal((int)cz_json_num(mat, "bars", 0), 4);
    assert_string_equal(cz_json_str(mat, "meter"), "2/4");
    assert_string_equal(cz_json_str(plan, "key"), "A minor");
    check_melody(&m, plan, &s);
    cJSON_Delete(plan);
    cz_score_free(&s);
}

static void expect_refusal(const cz_material *m, const char *words) {
    cz_controls c = controls_of("pop");
    cz_score s;
    cJSON *plan = (cJSON *)1;
    cz_err err = {{0}};
    assert_int_equal(cz_compose_material(&c, m, 30, 1, &s, &plan, &err), -1);
    assert_null(plan);
    assert_int_equal(s.n, 0);
    if (!strstr(err.msg, words))
        fail_msg("\"%s\" does not say \"%s\"", err.msg, words);
    assert_int_equal(cz_material_check(m, &err), -1);
}

static void test_refuses_bad_material(void **state) {
    (void)state;
    cz_material m = song();
    cz_material_note notes[N(verse_notes)];
    cz_material_chord chords[N(verse_chords)];
    cz_material_section secs[2] = {song_sections[0], song_sections[1]};
    m.sections = secs;
    assert_int_equal(cz_material_check(&m, NULL), 0);

    m.n_sections = 0;
    expect_refusal(&m, "no sections");
    m.n_sections = 2;

    memcpy(notes, verse_notes, sizeof notes);
    secs[0].notes = notes;
    notes[3].pitch = 130;
    expect_refusal(&m, "section 0, note 3 has pitch 130");
    notes[3].pitch = 64;
    notes[5].pos = 16;
    expect_refusal(&m, "section 0, note 5 is at position 16 of bar 1, outside the bar");
    notes[5].pos = 6;
    notes[23].dur = 17; // the last note, held past the eighth bar
    expect_refusal(&m, "past the end of the section's 8 bars");
    notes[23].dur = 16;
    notes[0].bar = 8;
    expect_refusal(&m, "section 0, note 0 is at bar 8; the section has bars 0..7");
    notes[0].bar = 0;
    assert_int_equal(cz_material_check(&m, NULL), 0);

    memcpy(chords, verse_chords, sizeof chords);
    secs[0].chords = chords;
    chords[2].bar = 1;
    chords[2].pos = 0;
    expect_refusal(&m, "second chord at bar 1 position 0");
    chords[2].bar = 2;
    chords[2].root = 12;
    expect_refusal(&m, "chord 2 has root 12");
    chords[2].root = 5;
    secs[1].n_chords = 0;
    expect_refusal(&m, "section 1 has no chords");
    secs[1].n_chords = N(chorus_chords);

    m.meter_num = 3;
    expect_refusal(&m, "the arranger plays 4/4, 2/2 and 2/4 material; got 3/4");
    m.meter_num = 6;
    m.meter_den = 8;
    expect_refusal(&m, "got 6/8");
    m.meter_num = 2;
    m.meter_den = 4;
    secs[0].bars = 7;
    secs[1].bars = 16;
    expect_refusal(&m, "section 0 has 7 bars of 2/4");
    secs[0].bars = 16; // a 2/4 bar has eight sixteenths
    expect_refusal(&m, "section 0, chord 4 is at position 8 of bar 3, outside the bar: "
                       "positions are sixteenths 0..7");
    m.meter_num = m.meter_den = 4;
    secs[0].bars = secs[1].bars = 8;

    m.bpm = 500;
    expect_refusal(&m, "tempo 500.0 BPM");
    m.bpm = 100;
    m.tonic = 12;
    expect_refusal(&m, "tonic 12");
    m.tonic = 0;
    assert_int_equal(cz_material_check(&m, NULL), 0);
}

int main(void) {
    cz_mem_init(); /* cJSON allocates as the binaries do */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fills_duration),
        cmocka_unit_test(test_melody_and_chords_are_given),
        cmocka_unit_test(test_tune_always_has_a_voice),
        cmocka_unit_test(test_seeds_and_band),
        cmocka_unit_test(test_two_four),
        cmocka_unit_test(test_refuses_bad_material),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
