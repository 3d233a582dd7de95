/* Playlists (common/playlist/engine.c) over synthetic catalogues built in memory
 * (cli/synth_catalog.c): the Camelot wheel, the energy arcs, and the
 * rules every playlist keeps, checked over a table of requests (each mood,
 * each activity, none; novelty 0, 0.5, 1; lengths in tracks and minutes;
 * seeds; exclusions; a listener with likes, skips and dislikes; a tenant
 * with private tracks beside another's).
 *
 * The catalogue is made harder than the synthetic one alone: every tenth
 * track has a re-upload by another artist (the same features, so an
 * embedding similarity of 1), which the near-duplicate rule must keep
 * apart, and some tracks are private to tenant "acme" or "globex". */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "cli/synth_catalog.h"
#include "common/playlist/engine.h"

#define SEED 20261121ull

/* ---- catalogues ---------------------------------------------------------- */

/* Tenant of synthetic track @p i: every 37th is acme's, every 37th + 18
 * globex's, the rest everyone's. */
static const char *tenant_of(long i) {
    return i % 37 == 0 ? "acme" : i % 37 == 18 ? "globex" : NULL;
}

/* @p n synthetic tracks at positions 0..n-1 (position == index), then a
 * re-upload of every tenth one by another artist. */
static cz_track_index *catalogue(long n) {
    cz_track_index *ix = cz_track_index_new();
    assert_non_null(ix);
    cz_err err;
    cz_synth_track t;
    for (long i = 0; i < n; i++) {
        cz_synth_track_make(SEED, n, i, &t);
        assert_int_equal(
            cz_track_index_add(ix, t.id, tenant_of(i), t.title, t.artist, &t.f, t.popularity, &err),
            i);
    }
    for (long i = 0; i < n; i += 10) {
        cz_synth_track_make(SEED, n, i, &t);
        char id[32], artist[80];
        snprintf(id, sizeof id, "dup%ld", i);
        snprintf(artist, sizeof artist, "Re-upload %ld", i);
        assert_true(cz_track_index_add(ix, id, tenant_of(i), t.title, artist, &t.f, t.popularity,
                                       &err) >= 0);
    }
    return ix;
}

static bool in(const uint32_t *v, int n, uint32_t x) {
    for (int i = 0; i < n; i++)
        if (v[i] == x)
            return true;
    return false;
}

/* A listener who likes and completes genre @p g's tracks, skips some of
 * another genre's early, and dislikes @p dislike (n_dislike tracks). */
static int listener(long n, int g, const uint32_t *dislike, int n_dislike, cz_signal *s) {
    int k = 0;
    for (long i = 0; i < n && k < 40; i++)
        if (cz_synth_track_genre(SEED, n, i) == g && !tenant_of(i) && !in(dislike, n_dislike, i))
            s[k++] = (cz_signal){(uint32_t)i, k % 2 ? CZ_SIGNAL_COMPLETE : CZ_SIGNAL_LIKE, -1,
                                 86400.0 * (k % 40)};
    for (long i = 0, m = 0; i < n && m < 10; i++)
        if (cz_synth_track_genre(SEED, n, i) == (g + 5) % CZ_SYNTH_GENRES && !tenant_of(i))
            s[k++] = (cz_signal){(uint32_t)i, CZ_SIGNAL_SKIP, 10, 3600.0 * (double)m++};
    for (int i = 0; i < n_dislike; i++)
        s[k++] = (cz_signal){dislike[i], CZ_SIGNAL_DISLIKE, -1, 7200.0};
    return k;
}

/* ---- the rules ----------------------------------------------------------- */

static void describe(const cz_playlist_request *rq, char *out, size_t n) {
    snprintf(out, n, "mood %s activity %s novelty %.1f length %d tracks %.0f min seeds %d",
             rq->mood ? rq->mood : "-", rq->activity ? rq->activity : "-", rq->novelty,
             rq->length_tracks, rq->length_minutes, rq->n_seeds);
}

/* Everything a playlist must be, whatever was asked. */
static void check_rules(const cz_track_index *ix, const cz_playlist_request *rq,
                        const cz_taste *taste, const cz_playlist *p) {
    char what[200];
    describe(rq, what, sizeof what);
    if (rq->length_tracks) {
        if (p->n != rq->length_tracks && !p->note[0])
            fail_msg("%s: %d tracks and no note", what, p->n);
    } else if (!p->note[0]) {
        double total = 0;
        for (int k = 0; k < p->n; k++)
            total += ix->duration[p->items[k].track];
        if (fabs(total - p->duration_s) > 1e-3)
            fail_msg("%s: says %.1f s, holds %.1f s", what, p->duration_s, total);
        if (p->n == 0 || total < rq->length_minutes * 60 ||
            total - ix->duration[p->items[p->n - 1].track] >= rq->length_minutes * 60)
            fail_msg("%s: %.1f s for %.0f minutes", what, total, rq->length_minutes);
    }
    if (p->n == 0 && !p->note[0])
        fail_msg("%s: empty and no note", what);
    float lo, hi;
    cz_playlist_tempo_range(rq->activity, &lo, &hi);
    uint32_t tenant = cz_track_index_tenant(ix, rq->tenant);
    for (int k = 0; k < p->n; k++) {
        uint32_t i = p->items[k].track;
        if (!p->items[k].reason[0])
            fail_msg("%s: track %d has no reason", what, k);
        if (ix->tenant[i] && ix->tenant[i] != tenant)
            fail_msg("%s: track %d (%s) is another tenant's", what, k, cz_track_index_id(ix, i));
        if (in(rq->exclude, rq->n_exclude, i))
            fail_msg("%s: track %d (%s) was excluded", what, k, cz_track_index_id(ix, i));
        if (hi > 0 && (ix->tempo[i] < lo || ix->tempo[i] > hi))
            fail_msg("%s: track %d at %.0f bpm, outside %.0f..%.0f", what, k, ix->tempo[i], lo, hi);
        if (taste && (in(taste->banned, taste->n_banned, i) ||
                      in(taste->banned_artists, taste->n_banned_artists, ix->artist[i])))
            fail_msg("%s: track %d (%s) was disliked", what, k, cz_track_index_id(ix, i));
        if (k > 0) {
            uint32_t prev = p->items[k - 1].track;
            if (fabsf(ix->tempo[i] - ix->tempo[prev]) >
                CZ_PLAYLIST_TEMPO_STEP * ix->tempo[prev] + 1e-4f)
                fail_msg("%s: %.1f -> %.1f bpm at %d", what, ix->tempo[prev], ix->tempo[i], k);
            if (cz_camelot_distance(ix->key[prev], ix->mode[prev], ix->key[i], ix->mode[i]) >
                CZ_PLAYLIST_KEY_STEP)
                fail_msg("%s: key jump at %d", what, k);
        }
        for (int j = k - 1; j >= 0 && j > k - CZ_PLAYLIST_WINDOW; j--) {
            uint32_t o = p->items[j].track;
            if (o == i)
                fail_msg("%s: %s twice (%d, %d)", what, cz_track_index_id(ix, i), j, k);
            if (ix->artist[o] == ix->artist[i])
                fail_msg("%s: artist %s at %d and %d", what, cz_track_index_artist(ix, i), j, k);
            if (cz_track_index_similarity(ix, o, i) >= CZ_PLAYLIST_NEAR_DUP)
                fail_msg("%s: near-duplicates %s and %s at %d and %d", what,
                         cz_track_index_id(ix, o), cz_track_index_id(ix, i), j, k);
        }
    }
}

static void build(const cz_track_index *ix, const cz_playlist_request *rq, const cz_taste *taste,
                  cz_playlist *p) {
    cz_playlist_build(ix, rq, taste, p);
}

static void same(const cz_playlist *a, const cz_playlist *b, const char *what) {
    if (a->n != b->n || strcmp(a->note, b->note))
        fail_msg("%s: %d then %d tracks", what, a->n, b->n);
    for (int k = 0; k < a->n; k++)
        if (a->items[k].track != b->items[k].track ||
            strcmp(a->items[k].reason, b->items[k].reason))
            fail_msg("%s: differs at %d", what, k);
}

/* ---- the Camelot wheel --------------------------------------------------- */

static void test_camelot_known_keys(void **state) {
    (void)state;
    static const struct {
        int key, mode;
        const char *code;
    } known[] = {
        {0, 1, "8B"},  {9, 0, "8A"}, {7, 1, "9B"},  {4, 0, "9A"},  {5, 1, "7B"},  {2, 0, "7A"},
        {11, 1, "1B"}, {8, 0, "1A"}, {2, 1, "10B"}, {9, 1, "11B"}, {4, 1, "12B"}, {1, 0, "12A"},
        {6, 1, "2B"},  {3, 0, "2A"}, {1, 1, "3B"},  {10, 0, "3A"}, {3, 1, "5B"},  {0, 0, "5A"},
        {10, 1, "6B"}, {7, 0, "6A"}, {8, 1, "4B"},  {5, 0, "4A"},  {6, 0, "11A"}, {11, 0, "10A"},
    };
    char code[4];
    for (size_t i = 0; i < sizeof known / sizeof *known; i++) {
        cz_camelot_code(known[i].key, known[i].mode, code);
        assert_string_equal(code, known[i].code);
        assert_int_equal(cz_camelot_number(known[i].key, known[i].mode), atoi(known[i].code));
    }
    assert_int_equal(cz_camelot_distance(0, 1, 0, 1), 0);  /* C major itself */
    assert_int_equal(cz_camelot_distance(0, 1, 7, 1), 1);  /* 8B -> 9B, a fifth up */
    assert_int_equal(cz_camelot_distance(0, 1, 5, 1), 1);  /* 8B -> 7B, a fifth down */
    assert_int_equal(cz_camelot_distance(0, 1, 9, 0), 1);  /* 8B -> 8A, the relative minor */
    assert_int_equal(cz_camelot_distance(9, 0, 4, 0), 1);  /* 8A -> 9A */
    assert_int_equal(cz_camelot_distance(4, 1, 11, 1), 1); /* 12B -> 1B: round the wheel */
    assert_int_equal(cz_camelot_distance(1, 0, 8, 0), 1);  /* 12A -> 1A */
    assert_int_equal(cz_camelot_distance(0, 1, 4, 0), 2);  /* 8B -> 9A: diagonal */
    assert_int_equal(cz_camelot_distance(0, 1, 2, 1), 2);  /* 8B -> 10B */
    assert_int_equal(cz_camelot_distance(0, 1, 6, 1), 6);  /* 8B -> 2B: across */
    assert_int_equal(cz_camelot_distance(9, 0, 6, 1), 7);  /* 8A -> 2B */
    for (int a = 0; a < 24; a++)
        for (int b = 0; b < 24; b++) {
            int d = cz_camelot_distance(a % 12, a / 12, b % 12, b / 12);
            assert_int_equal(d, cz_camelot_distance(b % 12, b / 12, a % 12, a / 12));
            assert_true(d >= 0 && d <= 7);
            assert_int_equal(d == 0, a == b);
        }
}

/* ---- arcs and names ------------------------------------------------------ */

static void test_arcs_and_names(void **state) {
    (void)state;
    assert_float_equal(cz_playlist_arc("workout", NULL, 0, 11), 0.55f, 1e-6);
    assert_true(cz_playlist_arc("workout", NULL, 6, 11) > cz_playlist_arc("workout", NULL, 0, 11));
    assert_true(cz_playlist_arc("workout", NULL, 6, 11) > cz_playlist_arc("workout", NULL, 10, 11));
    for (int i = 1; i < 20; i++)
        assert_true(cz_playlist_arc("sleep", NULL, i, 20) <
                    cz_playlist_arc("sleep", NULL, i - 1, 20));
    assert_float_equal(cz_playlist_arc(NULL, "calm", 3, 10), 0.25f, 1e-6);
    assert_float_equal(cz_playlist_arc(NULL, NULL, 3, 10), 0.5f, 1e-6);
    assert_float_equal(cz_playlist_arc("focus", NULL, 0, 1), 0.35f, 1e-6);
    float lo, hi;
    cz_playlist_tempo_range("running", &lo, &hi);
    assert_true(lo >= 120 && hi > lo);
    cz_playlist_tempo_range(NULL, &lo, &hi);
    assert_true(lo == 0 && hi == 0);
    assert_true(cz_playlist_known(cz_playlist_moods, "melancholic"));
    assert_true(cz_playlist_known(cz_playlist_activities, "sleep"));
    assert_false(cz_playlist_known(cz_playlist_moods, "sleep"));
    assert_false(cz_playlist_known(cz_playlist_activities, NULL));
    assert_int_equal(cz_signal_kind_of("dislike"), CZ_SIGNAL_DISLIKE);
    assert_int_equal(cz_signal_kind_of("skip"), CZ_SIGNAL_SKIP);
    assert_int_equal(cz_signal_kind_of("love"), -1);
}

/* ---- the table ----------------------------------------------------------- */

#define N_TABLE 6000

/* Every context and length at each novelty, for a listener of tenant acme
 * with dislikes, excluding the most popular tracks; every third request
 * with seeds. Each playlist keeps every rule; requests of 10 and 50
 * tracks, and by minutes, are never cut short on this catalogue. */
static void test_every_request_keeps_the_rules(void **state) {
    (void)state;
    cz_track_index *ix = catalogue(N_TABLE);
    long n = N_TABLE;
    /* Dislike two tracks of the most popular artist and one other track. */
    uint32_t top = 0;
    for (uint32_t i = 1; i < (uint32_t)n; i++)
        if (ix->popularity[i] > ix->popularity[top] && !tenant_of(i))
            top = i;
    uint32_t dislike[3] = {top, 0, 0};
    for (uint32_t i = 0; i < (uint32_t)n; i++)
        if (i != top && ix->artist[i] == ix->artist[top]) {
            dislike[1] = i;
            break;
        }
    dislike[2] = top == 1 ? 2 : 1;
    cz_signal sig[64];
    int ns = listener(n, 7, dislike, 3, sig);
    cz_taste taste;
    cz_taste_build(ix, sig, ns, &taste);
    assert_int_equal(taste.n_banned, 3);
    assert_int_equal(taste.n_banned_artists, 1);
    assert_int_equal(taste.banned_artists[0], ix->artist[top]);
    assert_true(taste.strength > 0 && taste.n_liked > 0);

    /* Exclude the thirty most popular tracks anyone may hear. */
    uint32_t exclude[30];
    int n_exclude = 0;
    for (int k = 0; k < 30; k++) {
        uint32_t best = UINT32_MAX;
        for (uint32_t i = 0; i < ix->n; i++)
            if (!ix->tenant[i] && !in(exclude, n_exclude, i) && !in(dislike, 3, i) &&
                ix->artist[i] != ix->artist[top] &&
                (best == UINT32_MAX || ix->popularity[i] > ix->popularity[best]))
                best = i;
        exclude[n_exclude++] = best;
    }
    uint32_t seeds[3] = {100, 2000, 4000};

    const char *ctx[16][2] = {{NULL, NULL}};
    int n_ctx = 1;
    for (int i = 0; cz_playlist_moods[i]; i++)
        ctx[n_ctx][0] = cz_playlist_moods[i], ctx[n_ctx++][1] = NULL;
    for (int i = 0; cz_playlist_activities[i]; i++)
        ctx[n_ctx][0] = NULL, ctx[n_ctx++][1] = cz_playlist_activities[i];
    ctx[n_ctx][0] = "calm", ctx[n_ctx++][1] = "focus";
    static const double novelty[] = {0, 0.5, 1};
    static const struct {
        int tracks;
        double minutes;
    } len[] = {{10, 0}, {50, 0}, {200, 0}, {0, 20}, {0, 90}};

    int row = 0, acme = 0, cut = 0;
    for (int c = 0; c < n_ctx; c++)
        for (int v = 0; v < 3; v++)
            for (size_t l = 0; l < sizeof len / sizeof *len; l++, row++) {
                cz_playlist_request rq = {.tenant = "acme",
                                          .mood = ctx[c][0],
                                          .activity = ctx[c][1],
                                          .length_tracks = len[l].tracks,
                                          .length_minutes = len[l].minutes,
                                          .novelty = novelty[v],
                                          .seeds = row % 3 == 0 ? seeds : NULL,
                                          .n_seeds = row % 3 == 0 ? 3 : 0,
                                          .exclude = exclude,
                                          .n_exclude = n_exclude};
                cz_playlist p;
                build(ix, &rq, &taste, &p);
                check_rules(ix, &rq, &taste, &p);
                char what[200];
                describe(&rq, what, sizeof what);
                if (p.note[0] && len[l].tracks != 200)
                    fail_msg("%s: cut short at %d: %s", what, p.n, p.note);
                cut += p.n < len[l].tracks;
                for (int k = 0; k < p.n; k++)
                    acme += ix->tenant[p.items[k].track] != 0;
                if (len[l].tracks == 50) { /* the same input, the same playlist */
                    cz_playlist again;
                    build(ix, &rq, &taste, &again);
                    same(&p, &again, what);
                    cz_playlist_free(&again);
                }
                cz_playlist_free(&p);
            }
    print_message("%d requests, %d of 200 tracks cut short, %d private tracks of acme's used\n",
                  row, cut, acme);
    assert_true(acme > 0); /* acme hears its own */
    cz_taste_free(&taste);
    cz_track_index_free(ix);
}

/* The baseline keeps the same rules, and no listener or seeds at all is a
 * request like any other. */
static void test_baseline_and_no_listener_keep_the_rules(void **state) {
    (void)state;
    cz_track_index *ix = catalogue(N_TABLE);
    for (int c = 0; c < 3; c++)
        for (int base = 0; base < 2; base++) {
            const char *act = c == 1 ? "party" : NULL, *mood = c == 2 ? "dark" : NULL;
            cz_playlist_request rq = {.mood = mood,
                                      .activity = act,
                                      .length_tracks = 200,
                                      .novelty = 0.5,
                                      .popularity_only = base};
            cz_playlist p;
            build(ix, &rq, NULL, &p);
            check_rules(ix, &rq, NULL, &p);
            cz_playlist_free(&p);
        }
    cz_track_index_free(ix);
}

/* Private tracks: the most popular tracks in the catalogue are acme's;
 * the popularity baseline gives them to acme and to no one else. */
static void test_private_tracks_stay_with_their_tenant(void **state) {
    (void)state;
    cz_track_index *ix = cz_track_index_new();
    cz_err err;
    cz_synth_track t;
    long n = 3000;
    for (long i = 0; i < n; i++) {
        cz_synth_track_make(SEED, n, i, &t);
        const char *tenant = i % 20 == 0 ? "acme" : i % 20 == 10 ? "globex" : NULL;
        float pop = tenant ? 1.0f : t.popularity * 0.5f;
        assert_true(cz_track_index_add(ix, t.id, tenant, t.title, t.artist, &t.f, pop, &err) >= 0);
    }
    static const char *const who[] = {"acme", "globex", "initech", NULL};
    for (int w = 0; w < 4; w++)
        for (int base = 0; base < 2; base++) {
            cz_playlist_request rq = {
                .tenant = who[w], .length_tracks = 50, .popularity_only = base};
            cz_playlist p;
            build(ix, &rq, NULL, &p);
            check_rules(ix, &rq, NULL, &p);
            int own = 0;
            for (int k = 0; k < p.n; k++) {
                uint32_t i = p.items[k].track;
                if (ix->tenant[i]) {
                    assert_string_equal(who[w], i % 20 == 0 ? "acme" : "globex");
                    own++;
                }
            }
            if (w < 2 && base)
                assert_true(own >= 10);
            cz_playlist_free(&p);
        }
    cz_track_index_free(ix);
}

/* ---- what steers a playlist ---------------------------------------------- */

static int genre_share(long n, const cz_playlist *p, int g) {
    int k = 0;
    for (int j = 0; j < p->n; j++)
        k += p->items[j].track < (uint32_t)n &&
             cz_synth_track_genre(SEED, n, (long)p->items[j].track) == g;
    return k;
}

/* A listener's taste, and seeds, pull the playlist towards what they
 * sound like; dislikes keep tracks and twice-disliked artists out even
 * where they would otherwise lead. */
static void test_taste_seeds_and_dislikes_steer(void **state) {
    (void)state;
    long n = 5000;
    cz_track_index *ix = catalogue(n);
    int g = 9; /* house */
    cz_signal sig[64];
    int ns = listener(n, g, NULL, 0, sig);
    cz_taste taste;
    cz_taste_build(ix, sig, ns, &taste);
    cz_playlist_request rq = {.length_tracks = 50, .novelty = 0.3};
    cz_playlist p, base;
    build(ix, &rq, &taste, &p);
    rq.popularity_only = true;
    build(ix, &rq, &taste, &base);
    int mine = genre_share(n, &p, g), theirs = genre_share(n, &base, g);
    print_message("house: %d of 50 for a house listener, %d in the baseline\n", mine, theirs);
    assert_true(mine >= 25 && mine > 2 * theirs);

    /* Dislike the first track and two of the second track's artist. */
    uint32_t first = p.items[0].track, second = p.items[1].track, other = UINT32_MAX;
    for (uint32_t i = 0; i < ix->n && other == UINT32_MAX; i++)
        if (i != second && ix->artist[i] == ix->artist[second])
            other = i;
    assert_true(other != UINT32_MAX);
    sig[ns++] = (cz_signal){first, CZ_SIGNAL_DISLIKE, -1, 60};
    sig[ns++] = (cz_signal){second, CZ_SIGNAL_DISLIKE, -1, 60};
    sig[ns++] = (cz_signal){other, CZ_SIGNAL_DISLIKE, -1, 60};
    cz_taste t2;
    cz_taste_build(ix, sig, ns, &t2);
    rq.popularity_only = false;
    cz_playlist after;
    build(ix, &rq, &t2, &after);
    check_rules(ix, &rq, &t2, &after);
    for (int k = 0; k < after.n; k++) {
        assert_int_not_equal(after.items[k].track, first);
        assert_int_not_equal(ix->artist[after.items[k].track], ix->artist[second]);
    }

    /* Seeds from one genre: most of the playlist sounds like them. */
    uint32_t seeds[4];
    int ng = 0, sg = 2; /* jazz */
    for (long i = 0; i < n && ng < 4; i++)
        if (cz_synth_track_genre(SEED, n, i) == sg && !tenant_of(i))
            seeds[ng++] = (uint32_t)i;
    cz_playlist_request sq = {.length_tracks = 50, .novelty = 0.5, .seeds = seeds, .n_seeds = 4};
    cz_playlist s;
    build(ix, &sq, NULL, &s);
    check_rules(ix, &sq, NULL, &s);
    int jazz = genre_share(n, &s, sg);
    print_message("jazz: %d of 50 from jazz seeds\n", jazz);
    assert_true(jazz >= 25);
    int like = 0;
    for (int k = 0; k < s.n; k++)
        like += !strncmp(s.items[k].reason, "Sounds like", 11);
    assert_true(like > 0);

    /* Excluding what a playlist held gives one without any of it. */
    uint32_t ex[50];
    for (int k = 0; k < s.n; k++)
        ex[k] = s.items[k].track;
    sq.exclude = ex, sq.n_exclude = s.n;
    cz_playlist s2;
    build(ix, &sq, NULL, &s2);
    check_rules(ix, &sq, NULL, &s2);
    assert_int_equal(s2.n, 50);

    cz_playlist_free(&s2);
    cz_playlist_free(&s);
    cz_playlist_free(&after);
    cz_playlist_free(&base);
    cz_playlist_free(&p);
    cz_taste_free(&t2);
    cz_taste_free(&taste);
    cz_track_index_free(ix);
}

/* Dislikes: a track disliked never comes back, an artist disliked on two
 * tracks neither; one dislike (even repeated) bans the track alone. The
 * baseline applies the bans too, and since it ignores taste otherwise,
 * only the bans can keep its most popular tracks out. */
static void test_dislikes_ban_tracks_and_artists(void **state) {
    (void)state;
    long n = 5000;
    cz_track_index *ix = catalogue(n);
    cz_playlist_request rq = {.length_tracks = 50, .popularity_only = true};
    cz_playlist before;
    build(ix, &rq, NULL, &before);
    assert_int_equal(before.n, 50);
    /* Dislike tracks 0 and 1 once each, track 2 twice, and two tracks of
     * track 3's artist (track 3 and another of theirs). */
    uint32_t t3 = before.items[3].track, sibling = UINT32_MAX;
    for (uint32_t i = 0; i < ix->n && sibling == UINT32_MAX; i++)
        if (i != t3 && ix->artist[i] == ix->artist[t3])
            sibling = i;
    assert_true(sibling != UINT32_MAX);
    cz_signal sig[] = {
        {before.items[0].track, CZ_SIGNAL_DISLIKE, -1, 10},
        {before.items[1].track, CZ_SIGNAL_DISLIKE, -1, 10},
        {before.items[2].track, CZ_SIGNAL_DISLIKE, -1, 10},
        {before.items[2].track, CZ_SIGNAL_DISLIKE, -1, 99},
        {t3, CZ_SIGNAL_DISLIKE, -1, 10},
        {sibling, CZ_SIGNAL_DISLIKE, -1, 10},
    };
    cz_taste taste;
    cz_taste_build(ix, sig, 6, &taste);
    assert_int_equal(taste.n_banned, 5);
    assert_int_equal(taste.n_banned_artists, 1);
    assert_int_equal(taste.banned_artists[0], ix->artist[t3]);
    cz_playlist after;
    build(ix, &rq, &taste, &after);
    check_rules(ix, &rq, &taste, &after);
    assert_int_equal(after.n, 50);
    for (int k = 0; k < after.n; k++)
        for (int j = 0; j < 3; j++)
            assert_int_not_equal(after.items[k].track, before.items[j].track);
    /* The artists disliked once are still heard (their other tracks are
     * among the most popular, so the baseline plays them). */
    int once = 0;
    for (int k = 0; k < after.n; k++)
        for (int j = 0; j < 3; j++)
            once += ix->artist[after.items[k].track] == ix->artist[before.items[j].track];
    print_message("%d tracks of artists disliked once\n", once);
    assert_true(once > 0);
    cz_playlist_free(&after);
    cz_playlist_free(&before);
    cz_taste_free(&taste);
    cz_track_index_free(ix);
}

/* Mean energy of positions [from, to) of the playlist, as fractions. */
static float energy_between(const cz_track_index *ix, const cz_playlist *p, float from, float to) {
    float sum = 0;
    int k = 0;
    for (int j = (int)(from * (float)p->n); j < (int)(to * (float)p->n); j++, k++)
        sum += ix->energy[p->items[j].track];
    return k ? sum / (float)k : NAN;
}

/* The energy follows each activity's arc: workout's middle is hotter than
 * its start, sleep ends calmer than it starts, and every activity stays
 * near its targets on the whole. On the 20k catalogue, with no listener
 * and with a hip-hop listener (energetic tastes, so sleep must still wind
 * down). */
static void test_energy_follows_the_arc(void **state) {
    (void)state;
    long n = 20000;
    cz_track_index *ix = catalogue(n);
    for (int who = 0; who < 2; who++) {
        cz_signal sig[64];
        int ns = who ? listener(n, 6, NULL, 0, sig) : 0;
        cz_taste taste;
        cz_taste_build(ix, sig, ns, &taste);
        for (int a = 0; cz_playlist_activities[a]; a++) {
            const char *act = cz_playlist_activities[a];
            cz_playlist_request rq = {.activity = act, .length_tracks = 50, .novelty = 0.3};
            cz_playlist p;
            build(ix, &rq, who ? &taste : NULL, &p);
            check_rules(ix, &rq, who ? &taste : NULL, &p);
            assert_int_equal(p.n, 50);
            float dev = 0;
            for (int k = 0; k < p.n; k++)
                dev += fabsf(ix->energy[p.items[k].track] - cz_playlist_arc(act, NULL, k, p.n));
            dev /= (float)p.n;
            float start = energy_between(ix, &p, 0, 0.2f), mid = energy_between(ix, &p, 0.4f, 0.8f),
                  end = energy_between(ix, &p, 0.8f, 1);
            print_message("%-8s %-8s start %.2f middle %.2f end %.2f, mean |energy - arc| %.3f\n",
                          who ? "hip-hop" : "anyone", act, start, mid, end, dev);
            if (dev > 0.1f)
                fail_msg("%s: mean distance from the arc %.3f", act, dev);
            if (!strcmp(act, "workout") && !(mid > start + 0.15f && mid > end))
                fail_msg("workout: start %.2f middle %.2f end %.2f", start, mid, end);
            if (!strcmp(act, "party") && !(mid > start + 0.1f))
                fail_msg("party: start %.2f middle %.2f", start, mid);
            if (!strcmp(act, "sleep") && !(end < start - 0.1f))
                fail_msg("sleep: start %.2f end %.2f", start, end);
            cz_playlist_free(&p);
        }
        cz_taste_free(&taste);
    }
    cz_track_index_free(ix);
}

/* A request no track can meet ends at once and says why; one the rules
 * cannot finish says so too. */
static void test_short_playlists_say_why(void **state) {
    (void)state;
    cz_track_index *ix = cz_track_index_new();
    cz_err err;
    cz_synth_track t;
    /* Ten tracks, all of one artist: only one can be played per window. */
    for (long i = 0; i < 10; i++) {
        cz_synth_track_make(SEED, 10, i, &t);
        char id[24];
        snprintf(id, sizeof id, "o%ld", i);
        assert_true(cz_track_index_add(ix, id, NULL, t.title, "One Artist", &t.f, 0.5f, &err) >= 0);
    }
    cz_playlist_request rq = {.length_tracks = 10};
    cz_playlist p;
    build(ix, &rq, NULL, &p);
    check_rules(ix, &rq, NULL, &p);
    assert_int_equal(p.n, 1);
    assert_true(strstr(p.note, "rules") != NULL);
    cz_playlist_free(&p);
    uint32_t all[10] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};
    rq.exclude = all, rq.n_exclude = 10;
    build(ix, &rq, NULL, &p);
    assert_int_equal(p.n, 0);
    assert_true(p.note[0] != '\0');
    cz_playlist_free(&p);
    cz_track_index_free(ix);
}

/* Thirty tracks all in 8B by thirty artists: track 0 at 120 bpm and the
 * most popular, track 1 at 129 bpm and the next, the rest at @p rest bpm
 * (plus i % @p spread) and less popular. */
static cz_track_index *two_leaders(float rest, int spread) {
    cz_track_index *ix = cz_track_index_new();
    cz_err err;
    cz_synth_track t;
    for (long i = 0; i < 30; i++) {
        cz_synth_track_make(SEED, 3000, i * 97, &t);
        t.f.key = 0, t.f.mode = 1;
        t.f.tempo_bpm = i == 0 ? 120 : i == 1 ? 129 : rest + (float)(i % spread);
        char id[24], artist[24];
        snprintf(id, sizeof id, "t%ld", i);
        snprintf(artist, sizeof artist, "Artist %ld", i);
        float pop = i == 0 ? 1.0f : i == 1 ? 0.9f : 0.5f - 0.01f * (float)i;
        assert_int_equal(cz_track_index_add(ix, id, NULL, t.title, artist, &t.f, pop, &err), i);
    }
    return ix;
}

/* A dead end the greedy sequencer walks into: track 1 can follow track 0,
 * but nothing can follow track 1 (the rest are at 112..116 bpm, more than
 * 8% below). The playlist takes track 1 back and goes on from track 0. */
static void test_a_dead_end_is_taken_back(void **state) {
    (void)state;
    cz_track_index *ix = two_leaders(112, 5);
    cz_playlist_request rq = {.length_tracks = 20, .popularity_only = true};
    cz_playlist p;
    build(ix, &rq, NULL, &p);
    check_rules(ix, &rq, NULL, &p);
    assert_int_equal(p.n, 20);
    assert_string_equal(p.note, "");
    assert_int_equal(p.items[0].track, 0);
    for (int k = 0; k < p.n; k++)
        assert_int_not_equal(p.items[k].track, 1);
    cz_playlist_free(&p);
    cz_track_index_free(ix);

    /* When taking back does not help (nothing but track 1 can follow track
     * 0 either), the playlist is the longest it reached, and says why. */
    ix = two_leaders(100, 1);
    build(ix, &rq, NULL, &p);
    check_rules(ix, &rq, NULL, &p);
    assert_int_equal(p.n, 2);
    assert_int_equal(p.items[0].track, 0);
    assert_int_equal(p.items[1].track, 1);
    assert_true(strstr(p.note, "rules") != NULL);
    cz_playlist_free(&p);
    cz_track_index_free(ix);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_camelot_known_keys),
        cmocka_unit_test(test_arcs_and_names),
        cmocka_unit_test(test_every_request_keeps_the_rules),
        cmocka_unit_test(test_baseline_and_no_listener_keep_the_rules),
        cmocka_unit_test(test_private_tracks_stay_with_their_tenant),
        cmocka_unit_test(test_taste_seeds_and_dislikes_steer),
        cmocka_unit_test(test_dislikes_ban_tracks_and_artists),
        cmocka_unit_test(test_energy_follows_the_arc),
        cmocka_unit_test(test_short_playlists_say_why),
        cmocka_unit_test(test_a_dead_end_is_taken_back),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
