/* Prompt to controls (common/music/prompt.c): the vocabulary, the number and key
 * readers, field overrides, ignored words, the JSON round trip, and that
 * docs/composer.md documents every phrase. Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/mem.h"
#include "common/music/prompt.h"

static cz_controls read_prompt(const char *prompt) {
    cz_prompt_fields f = {.prompt = prompt, .n_instruments = -1};
    cz_controls c;
    cz_err err = {{0}};
    if (cz_prompt_controls(&f, &c, NULL, &err) != 0)
        fail_msg("%s: %s", prompt, err.msg);
    return c;
}

static int has(const char list[][CZ_CONTROLS_TOKEN], int n, const char *token) {
    for (int i = 0; i < n; i++)
        if (!strcmp(list[i], token))
            return 1;
    return 0;
}

static void test_the_example_prompt(void **state) {
    (void)state;
    cz_controls c =
        read_prompt("warm lo-fi hip hop with rhodes and vinyl drums, 82 bpm, A minor, 45 seconds");
    assert_string_equal(c.genre, "lofi");
    assert_string_equal(c.flavor, "");
    assert_int_equal(c.n_moods, 1);
    assert_string_equal(c.moods[0], "warm");
    assert_true(c.tempo_bpm == 82);
    assert_int_equal(c.key_root, 9);
    assert_int_equal(c.mode, 1);
    assert_true(c.duration_s == 45);
    assert_int_equal(c.n_instruments, 2);
    assert_string_equal(c.instruments[0], "rhodes");
    assert_string_equal(c.instruments[1], "drums");
    assert_string_equal(c.texture, "vinyl");
    assert_int_equal(c.n_ignored, 0);
}

static void test_nothing_understood(void **state) {
    (void)state;
    cz_controls c = read_prompt("Zorblax quintessential marmalade, zorblax!");
    assert_string_equal(c.genre, "");
    assert_int_equal(c.n_moods, 0);
    assert_int_equal(c.n_instruments, 0);
    assert_true(c.tempo_bpm == 0 && c.duration_s == 0 && c.key_root == -1);
    assert_int_equal(c.n_ignored, 3); /* each word once */
    assert_string_equal(c.ignored[0], "zorblax");
    assert_string_equal(c.ignored[1], "quintessential");
    assert_string_equal(c.ignored[2], "marmalade");
    // Filler is understood, not ignored; a bare number is not a control.
    c = read_prompt("a track with some 42");
    assert_int_equal(c.n_ignored, 1);
    assert_string_equal(c.ignored[0], "42");
}

static void test_keys(void **state) {
    (void)state;
    static const struct {
        const char *prompt;
        int root, mode;
    } cases[] = {
        {"F#m groove", 6, 1},    {"in Bb major", 10, 0},
        {"c sharp minor", 1, 1}, {"e flat major key", 3, 0},
        {"in C", 0, -1},         {"Am", 9, 1},
        {"key of Eb", 3, -1},    {"Dbmaj", 1, 0},
        {"a minor", 9, 1},       {"g#min", 8, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cz_controls c = read_prompt(cases[i].prompt);
        if (c.key_root != cases[i].root || c.mode != cases[i].mode)
            fail_msg("%s: root %d mode %d", cases[i].prompt, c.key_root, c.mode);
    }
    // Words that only look like keys.
    cz_controls c = read_prompt("am I in a dreamy mood");
    assert_int_equal(c.key_root, -1);
    c = read_prompt("minor");
    assert_int_equal(c.key_root, -1);
    assert_int_equal(c.mode, 1);

    int root, mode;
    assert_int_equal(cz_prompt_parse_key("F# minor", &root, &mode), 0);
    assert_int_equal(root, 6);
    assert_int_equal(mode, 1);
    assert_int_equal(cz_prompt_parse_key("H minor", &root, &mode), -1);
    char buf[16];
    assert_string_equal(cz_prompt_key_name(10, 0, buf, sizeof buf), "Bb major");
    assert_string_equal(cz_prompt_key_name(1, 1, buf, sizeof buf), "C# minor");
}

static void test_durations(void **state) {
    (void)state;
    static const struct {
        const char *prompt;
        double seconds;
    } cases[] = {
        {"45 seconds", 45},
        {"45s", 45},
        {"2 minutes", 120},
        {"2min", 120},
        {"1:30 of jazz", 90},
        {"a minute and a half", 90},
        {"half a minute", 30},
        {"two minutes", 120},
        {"2 minutes 30 seconds", 150},
        {"2 minutes and 30 seconds", 150},
        {"2.5 min", 150},
        {"one and a half minutes", 90},
        {"20 minutes", 600},
        {"0.2 seconds", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cz_controls c = read_prompt(cases[i].prompt);
        if (c.duration_s != cases[i].seconds)
            fail_msg("%s: %g s", cases[i].prompt, c.duration_s);
    }
    // A decade is a mood, never seconds.
    cz_controls c = read_prompt("80s synthwave");
    assert_true(c.duration_s == 0);
    assert_true(has(c.moods, c.n_moods, "nostalgic"));
    assert_string_equal(c.genre, "synthwave");
}

static void test_tempo(void **state) {
    (void)state;
    assert_true(read_prompt("82 bpm").tempo_bpm == 82);
    assert_true(read_prompt("82BPM").tempo_bpm == 82);
    assert_true(read_prompt("tempo 96").tempo_bpm == 96);
    assert_true(read_prompt("120 beats per minute").tempo_bpm == 120);
    assert_true(read_prompt("500 bpm").tempo_bpm == 300);
    cz_controls c = read_prompt("slow and dreamy");
    assert_string_equal(c.tempo, "slow");
    assert_true(c.tempo_bpm == 0);
    assert_string_equal(read_prompt("an upbeat tune").tempo, "upbeat");
    // A number wins over a word.
    c = read_prompt("fast, 90 bpm");
    assert_true(c.tempo_bpm == 90);
    assert_string_equal(c.tempo, "");
}

static void test_instruments_negation_solo(void **state) {
    (void)state;
    cz_controls c = read_prompt("piano and strings, no drums, without any bass");
    assert_int_equal(c.n_instruments, 2);
    assert_true(has(c.instruments, c.n_instruments, "piano"));
    assert_true(has(c.instruments, c.n_instruments, "strings"));
    assert_true(has(c.exclude, c.n_exclude, "drums"));
    assert_true(has(c.exclude, c.n_exclude, "bass"));
    c = read_prompt("solo acoustic guitar");
    assert_true(c.solo);
    assert_int_equal(c.n_instruments, 1);
    assert_string_equal(c.instruments[0], "acoustic-guitar");
    c = read_prompt("drumless jazz with upright bass and a tenor sax");
    assert_true(has(c.exclude, c.n_exclude, "drums"));
    assert_true(has(c.instruments, c.n_instruments, "upright-bass"));
    assert_true(has(c.instruments, c.n_instruments, "tenor-sax"));
    assert_int_equal(c.n_ignored, 0);
}

static void test_genre_head_and_flavour(void **state) {
    (void)state;
    cz_controls c = read_prompt("jazzy hip hop");
    assert_string_equal(c.genre, "hiphop");
    assert_string_equal(c.flavor, "jazz");
    c = read_prompt("drum and bass");
    assert_string_equal(c.genre, "dnb");
    assert_int_equal(c.n_instruments, 0); /* the phrase, not drums and a bass */
}

static void test_fields_override(void **state) {
    (void)state;
    const char *names[] = {"Electric Piano", "double bass"};
    cz_prompt_fields f = {.prompt = "sad rock with piano, 140 bpm, E minor, 2 minutes",
                          .genre = "Lo-Fi",
                          .mood = "calm and gloopy",
                          .key = "Bb major",
                          .tempo_bpm = 70,
                          .duration_s = 20,
                          .instruments = names,
                          .n_instruments = 2};
    cz_controls c;
    cz_err err = {{0}};
    int bad;
    assert_int_equal(cz_prompt_controls(&f, &c, &bad, &err), 0);
    assert_string_equal(c.genre, "lofi");
    assert_int_equal(c.n_moods, 1);
    assert_string_equal(c.moods[0], "calm");
    assert_true(has(c.ignored, c.n_ignored, "gloopy"));
    assert_int_equal(c.key_root, 10);
    assert_int_equal(c.mode, 0);
    assert_true(c.tempo_bpm == 70 && c.duration_s == 20);
    assert_int_equal(c.n_instruments, 2);
    assert_string_equal(c.instruments[0], "rhodes");
    assert_string_equal(c.instruments[1], "upright-bass");

    const char *unknown[] = {"piano", "kazoo"};
    f.instruments = unknown;
    assert_int_equal(cz_prompt_controls(&f, &c, &bad, &err), -1);
    assert_int_equal(bad, 1);
    assert_non_null(strstr(err.msg, "kazoo"));
}

/* Ignored words are cut on a character boundary: the job's JSON must stay
 * valid UTF-8. */
static void test_long_utf8_words(void **state) {
    (void)state;
    char prompt[256] = "";
    for (int i = 0; i < 30; i++)
        strcat(prompt, "é");
    cz_controls c = read_prompt(prompt);
    assert_int_equal(c.n_ignored, 1);
    const unsigned char *w = (const unsigned char *)c.ignored[0];
    size_t n = strlen(c.ignored[0]);
    assert_true(n > 0 && n % 2 == 0 && n < CZ_CONTROLS_TOKEN);
    for (size_t i = 0; i < n; i += 2)
        assert_true(w[i] == 0xc3 && w[i + 1] == 0xa9);
}

static void test_json_round_trip(void **state) {
    (void)state;
    cz_controls a = read_prompt("solo dreamy jazzy hip hop with vibes, no drums, 84 bpm, F#m, "
                                "90 seconds, vinyl");
    cJSON *j = cz_controls_json(&a);
    cz_controls b;
    cz_err err = {{0}};
    assert_int_equal(cz_controls_from_json(j, &b, &err), 0);
    memset(a.ignored, 0, sizeof a.ignored); /* not part of the controls object */
    a.n_ignored = 0;
    assert_memory_equal(&a, &b, sizeof a);
    cJSON_Delete(j);

    j = cJSON_Parse("{\"tempo_bpm\":\"fast\"}");
    assert_int_equal(cz_controls_from_json(j, &b, &err), -1);
    cJSON_Delete(j);
}

/* docs/composer.md lists the whole vocabulary. */
static void test_vocabulary_is_documented(void **state) {
    (void)state;
    FILE *f = fopen("docs/composer.md", "r");
    assert_non_null(f);
    static char doc[1 << 17];
    size_t n = fread(doc, 1, sizeof doc - 1, f);
    fclose(f);
    doc[n] = '\0';
    size_t count;
    const cz_vocab_entry *v = cz_prompt_vocabulary(&count);
    assert_true(count > 300);
    for (size_t i = 0; i < count; i++) {
        char quoted[96];
        snprintf(quoted, sizeof quoted, "`%s`", v[i].phrase);
        if (!strstr(doc, quoted))
            fail_msg("docs/composer.md does not list %s", quoted);
    }
}

int main(void) {
    cz_mem_init(); /* cJSON allocates as the binaries do */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_the_example_prompt),
        cmocka_unit_test(test_nothing_understood),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_tempo),
        cmocka_unit_test(test_instruments_negation_solo),
        cmocka_unit_test(test_genre_head_and_flavour),
        cmocka_unit_test(test_fields_override),
        cmocka_unit_test(test_long_utf8_words),
        cmocka_unit_test(test_json_round_trip),
        cmocka_unit_test(test_vocabulary_is_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
