/* The composer backend's renderer: writes a short, simple piece of music for a
 * set of generation parameters and plays it through FluidSynth with a General
 * MIDI SoundFont, in-process, with no audio driver.
 *
 * Composition. Everything comes from two splitmix64 streams seeded from the
 * job's seed, one for the structure and one for the humanisation, so the same
 * parameters always give the same piece. The plan fixes a tempo (given, or
 * picked from the style's range and nudged so a whole number of bars fills the
 * duration), a key and mode (parsed from the key string, else from the mood or
 * the seed), two four-chord progressions (minor-ish ones for dark moods), and
 * instruments and patterns from a small table of styles matched against the
 * genre. The piece is built bar by bar in four-bar phrases: chords on a pad,
 * electric piano or similar, a bass line on the chord roots, a drum pattern on
 * MIDI channel 10 with fills and crashes at phrase changes, an arpeggio of the
 * chord tones, and in some phrases a simple melody that lands on chord tones on
 * the strong beats. A short intro leaves the drums out; the last one or two
 * bars hold the tonic chord while the whole mix fades out over the final
 * ~1.5 s, so the piece ends rather than stops. Velocities get a small seeded
 * random spread so repeated notes do not sound mechanical.
 *
 * Rendering. The notes become a list of note-on/off events at sample
 * positions, sorted, and a synth is run with fluid_synth_write_float between
 * events straight into the interleaved output buffer, with FluidSynth's
 * reverb on the chords, arpeggio and melody. The SoundFont is loaded once, by
 * a "holder" synth that never plays; each render gets a brand-new synth that
 * borrows it (see cz_synth below). That is what makes renders bit-identical:
 * a synth that has played before differs in small ways a reset does not undo.
 *
 * A renderer is not thread-safe: use one per thread. */
#include "render.h"

#include <fluidsynth.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CZ_RENDER_CHUNK 2048     /* frames per synth call between events */
#define CZ_RENDER_FADE_S 1.5     /* fade-out at the end of every piece */
#define CZ_RENDER_GAIN 0.85      /* synth master gain before the style trim */
#define CZ_RENDER_MIN_TAIL_S 2.0 /* the final chord lasts at least this long */
#define CZ_PI 3.14159265358979323846

enum { CZ_CH_CHORDS = 0, CZ_CH_BASS = 1, CZ_CH_ARP = 2, CZ_CH_MELODY = 3, CZ_CH_DRUMS = 9 };
enum { CZ_DRUMS_NONE, CZ_DRUMS_SPARSE, CZ_DRUMS_SOFT, CZ_DRUMS_GROOVE };
enum {
    CZ_KICK = 36,
    CZ_STICK = 37,
    CZ_SNARE = 38,
    CZ_HAT = 42,
    CZ_OPEN_HAT = 46,
    CZ_CRASH = 49,
    CZ_RIDE = 51
};

struct cz_renderer {
    fluid_settings_t *settings; /* the holder's */
    fluid_synth_t *holder;      /* owns the loaded SoundFont; never plays */
    fluid_sfont_t *sfont;
    unsigned sample_rate;
};

/* ================================================================ PRNG */

/* splitmix64: tiny, fast, and the same on every platform. */
typedef struct cz_rng {
    uint64_t s;
} cz_rng;

static uint64_t cz_rng_next(cz_rng *r) {
    uint64_t z = (r->s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static unsigned cz_rng_below(cz_rng *r, unsigned n) {
    return (unsigned)(cz_rng_next(r) % n);
}

static double cz_rng_unit(cz_rng *r) {
    return (double)(cz_rng_next(r) >> 11) * 0x1.0p-53;
}

/* ================================================================ words */

/* Case-insensitive "does @p text contain any of the '|'-separated @p words". */
static int cz_render_has_word(const char *text, const char *words) {
    if (!text)
        return 0;
    char low[256];
    size_t n = 0;
    for (; text[n] && n < sizeof low - 1; n++)
        low[n] = (char)((text[n] >= 'A' && text[n] <= 'Z') ? text[n] - 'A' + 'a' : text[n]);
    low[n] = '\0';
    char word[32];
    while (*words) {
        size_t len = strcspn(words, "|");
        if (len > 0 && len < sizeof word) {
            memcpy(word, words, len);
            word[len] = '\0';
            if (strstr(low, word))
                return 1;
        }
        words += len + (words[len] == '|');
    }
    return 0;
}

/* Mood: -1 bright, +1 dark, 0 neither. */
static int cz_render_mood_shade(const char *mood) {
    if (cz_render_has_word(mood, "sad|dark|melanch|somber|sombre|gloom|moody|tense|mysteri|lonely|"
                                 "eerie|haunt|nostalg|minor|grief|brood|sorrow"))
        return 1;
    if (cz_render_has_word(mood, "happy|bright|upbeat|joy|cheer|uplift|sunny|playful|hopeful"))
        return -1;
    return 0;
}

/* ================================================================ key */

typedef struct cz_key {
    int root;     /* pitch class, C = 0 */
    int minor;    /* 1 minor, 0 major */
    int has_mode; /* the string named the mode */
} cz_key;

/* The mode after the root: "", "m", "M", "minor", "Major", "min", "maj"... */
static int cz_render_parse_mode(const char *s, cz_key *k) {
    while (*s == ' ' || *s == '-' || *s == '_')
        s++;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == ' ')
        n--;
    if (n == 0)
        return 0;
    k->has_mode = 1;
    // A lone "m" is minor and a lone "M" major, as in chord symbols.
    if ((n == 1 && s[0] == 'm') || cz_render_has_word(s, "min|aeolian")) {
        k->minor = 1;
        return 0;
    }
    if ((n == 1 && s[0] == 'M') || cz_render_has_word(s, "maj|ionian"))
        return 0;
    return -1;
}

/* Parses "A minor", "C#", "Eb major", "F#m", "bb min"... */
static int cz_render_parse_key(const char *s, cz_key *k) {
    static const int pcs[7] = {9, 11, 0, 2, 4, 5, 7}; /* A..G */
    memset(k, 0, sizeof *k);
    while (*s == ' ')
        s++;
    char c = (char)(*s >= 'a' && *s <= 'z' ? *s - 'a' + 'A' : *s);
    if (c < 'A' || c > 'G')
        return -1;
    k->root = pcs[c - 'A'];
    s++;
    if (*s == '#' || *s == 'b') {
        k->root += *s == '#' ? 1 : -1;
        s++;
    }
    k->root = (k->root + 12) % 12;
    return cz_render_parse_mode(s, k);
}

/* ================================================================ style */

/* A style: instruments (GM programs), drums and tempo range for genres. The
 * seed picks one of the two options where there are two. The trim evens out
 * how loud the instruments of FluidR3_GM are, so every style leaves about the
 * same headroom (peaks near -6 dBFS) before mastering. */
typedef struct cz_style {
    const char *genres; /* '|'-separated words; NULL: the default */
    int chords[2], bass, arp[2], melody[2];
    int drums, swing;
    double bpm_lo, bpm_hi, trim_db;
} cz_style;

// clang-format off
static const cz_style cz_styles[] = {
    {"lofi|lo-fi|hip hop|hip-hop|chillhop", {4, 5}, 33, {11, 12}, {0, 11}, CZ_DRUMS_SOFT, 1, 70, 88,
     -1},
    {"jazz|swing|lounge", {4, 0}, 32, {11, 0}, {11, 73}, CZ_DRUMS_SPARSE, 1, 80, 120, 2},
    {"ambient|drone|meditat|sleep", {89, 88}, 89, {8, 46}, {73, 8}, CZ_DRUMS_NONE, 0, 60, 80, -6},
    {"cinema|orchestr|classical|film|score|epic", {48, 49}, 43, {46, 45}, {73, 40}, CZ_DRUMS_NONE,
     0, 70, 100, 0},
    {"electro|edm|synth|house|techno|trance|dance", {89, 90}, 38, {80, 81}, {80, 8}, CZ_DRUMS_GROOVE,
     0, 110, 128, -6},
    {"folk|acoustic|country|singer", {24, 25}, 32, {25, 46}, {73, 22}, CZ_DRUMS_SPARSE, 0, 80, 110,
     2},
    {"rock|pop|indie", {0, 4}, 33, {24, 11}, {73, 0}, CZ_DRUMS_GROOVE, 0, 90, 125, 0},
    {NULL, {89, 4}, 33, {46, 11}, {73, 0}, CZ_DRUMS_SOFT, 0, 70, 130, -1},
};
// clang-format on

static const cz_style *cz_render_style(const char *genre) {
    size_t n = sizeof cz_styles / sizeof cz_styles[0];
    for (size_t i = 0; i + 1 < n; i++)
        if (cz_render_has_word(genre, cz_styles[i].genres))
            return &cz_styles[i];
    return &cz_styles[n - 1];
}

/* ================================================================ plan */

static const int cz_scale_major[7] = {0, 2, 4, 5, 7, 9, 11};
static const int cz_scale_minor[7] = {0, 2, 3, 5, 7, 8, 10};

/* Progressions as scale degrees (0 = tonic), one chord per bar. */
static const int cz_prog_bright[][4] = {{0, 4, 5, 3}, {0, 5, 3, 4}, {0, 3, 5, 4},
                                        {3, 4, 2, 5}, {0, 2, 3, 4}, {0, 3, 0, 4}};
static const int cz_prog_wistful[][4] = {{5, 3, 0, 4}, {0, 5, 1, 4}, {5, 4, 3, 4}, {3, 0, 5, 4}};
static const int cz_prog_minor[][4] = {{0, 5, 2, 6}, {0, 3, 6, 2}, {0, 6, 5, 6},
                                       {0, 5, 3, 4}, {0, 2, 6, 3}, {0, 3, 4, 0}};
static const int cz_prog_dark[][4] = {{0, 5, 3, 4}, {0, 3, 0, 4}, {0, 5, 6, 0}, {0, 3, 4, 0}};

#define CZ_COUNT(a) (sizeof(a) / sizeof((a)[0]))

typedef struct cz_plan {
    double bpm, duration_s, gain;
    int root, minor, shade;
    int prog[2][4];                /* A and B progressions */
    int chords, bass, arp, melody; /* GM programs */
    int drums, swing, chord_comp, bass_pat, drum_pat, arp_pat, rhythm;
    size_t bars; /* bars before the final chord */
} cz_plan;

static void cz_plan_progressions(cz_plan *pl, cz_rng *rng) {
    const int(*set)[4];
    size_t n;
    if (pl->minor) {
        set = pl->shade > 0 ? cz_prog_dark : cz_prog_minor;
        n = pl->shade > 0 ? CZ_COUNT(cz_prog_dark) : CZ_COUNT(cz_prog_minor);
    } else {
        set = pl->shade > 0 ? cz_prog_wistful : cz_prog_bright;
        n = pl->shade > 0 ? CZ_COUNT(cz_prog_wistful) : CZ_COUNT(cz_prog_bright);
    }
    size_t a = cz_rng_below(rng, (unsigned)n);
    size_t b = (a + 1 + cz_rng_below(rng, (unsigned)n - 1)) % n; // B differs from A
    memcpy(pl->prog[0], set[a], sizeof pl->prog[0]);
    memcpy(pl->prog[1], set[b], sizeof pl->prog[1]);
}

/* Tempo: the given one, or one from the style's range nudged (by at most 15%)
 * so that a whole number of bars fills the duration exactly. */
static void cz_plan_tempo(cz_plan *pl, const cz_style *st, double given, const char *mood,
                          cz_rng *rng) {
    double lo = st->bpm_lo, hi = st->bpm_hi;
    if (cz_render_has_word(mood, "calm|chill|relax|peace|dream|gentle|slow|soft"))
        hi = lo + (hi - lo) * 0.5;
    else if (cz_render_has_word(mood, "energ|driving|fast|excit|intense|power"))
        lo = lo + (hi - lo) * 0.5;
    double bpm = lo + (hi - lo) * cz_rng_unit(rng);
    if (given > 0) {
        pl->bpm = given;
        return;
    }
    double bars = round(pl->duration_s * bpm / 240.0);
    double fit = bars >= 1 ? 240.0 * bars / pl->duration_s : bpm;
    pl->bpm = (fit >= bpm * 0.85 && fit <= bpm * 1.15) ? fit : bpm;
}

/* Pianos and guitars may play rhythms; pads and strings sustain whole bars. */
static int cz_plan_can_comp(int prog) {
    return prog == 0 || prog == 4 || prog == 5 || prog == 24 || prog == 25;
}

static void cz_plan_instruments(cz_plan *pl, const cz_style *st, const char *mood, cz_rng *rng) {
    pl->chords = st->chords[cz_rng_below(rng, 2)];
    pl->bass = st->bass;
    pl->arp = st->arp[cz_rng_below(rng, 2)];
    pl->melody = st->melody[cz_rng_below(rng, 2)];
    if (pl->melody == pl->arp) // two parts on one sound blur together
        pl->melody = st->melody[0] == pl->arp ? st->melody[1] : st->melody[0];
    pl->drums = st->drums;
    if (pl->drums > CZ_DRUMS_SPARSE && cz_render_has_word(mood, "calm|peace|sleep|gentle"))
        pl->drums = CZ_DRUMS_SPARSE;
    pl->swing = st->swing;
    pl->gain = CZ_RENDER_GAIN * pow(10.0, st->trim_db / 20.0);
    pl->chord_comp = cz_plan_can_comp(pl->chords) ? (int)cz_rng_below(rng, 3) : 0;
    pl->bass_pat = pl->drums == CZ_DRUMS_NONE ? 3 : (int)cz_rng_below(rng, 3);
    pl->drum_pat = (int)cz_rng_below(rng, 2);
    pl->arp_pat = (int)cz_rng_below(rng, 4);
    pl->rhythm = (int)cz_rng_below(rng, 5);
}

static int cz_plan_make(cz_plan *pl, const cz_render_params *p, cz_rng *rng, cz_err *err) {
    memset(pl, 0, sizeof *pl);
    pl->duration_s = p->duration_s;
    pl->shade = cz_render_mood_shade(p->mood);
    cz_key key = {.root = (int)cz_rng_below(rng, 12)};
    if (p->key && cz_render_parse_key(p->key, &key) != 0)
        return cz_err_set(err,
                          "key \"%s\" not understood: use a note A-G, optionally # or b, "
                          "then major, minor or m (e.g. \"F#m\", \"Eb major\")",
                          p->key);
    unsigned coin = cz_rng_below(rng, 2); // drawn always, so the stream does not shift
    pl->root = key.root;
    pl->minor = key.has_mode ? key.minor : pl->shade != 0 ? pl->shade > 0 : (int)coin;
    const cz_style *st = cz_render_style(p->genre);
    cz_plan_tempo(pl, st, p->tempo_bpm, p->mood, rng);
    cz_plan_progressions(pl, rng);
    cz_plan_instruments(pl, st, p->mood, rng);

    double bar_s = 240.0 / pl->bpm;
    double fit = floor((pl->duration_s - CZ_RENDER_MIN_TAIL_S) / bar_s + 1e-6);
    pl->bars = fit > 0 ? (size_t)fit : 0;
    return 0;
}

/* ================================================================ events */

enum { CZ_EV_OFF = 0, CZ_EV_ON = 1 };

typedef struct cz_event {
    unsigned long long frame;
    unsigned seq;
    unsigned char kind, chan, key, vel;
} cz_event;

/* The piece being written: plan, event list and the two random streams. */
typedef struct cz_song {
    cz_plan pl;
    cz_rng rng;   /* structure */
    cz_rng human; /* velocity spread */
    unsigned sample_rate;
    unsigned long long frames;
    cz_event *ev;
    size_t len, cap;
    int oom;
} cz_song;

static void cz_song_push(cz_song *s, unsigned long long frame, int kind, int chan, int key,
                         int vel) {
    if (s->len == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        cz_event *ev = realloc(s->ev, cap * sizeof *ev);
        if (!ev) {
            s->oom = 1;
            return;
        }
        s->ev = ev;
        s->cap = cap;
    }
    s->ev[s->len] = (cz_event){frame,
                               (unsigned)s->len,
                               (unsigned char)kind,
                               (unsigned char)chan,
                               (unsigned char)key,
                               (unsigned char)vel};
    s->len++;
}

static unsigned long long cz_song_frame(const cz_song *s, double beat) {
    double f = beat * 60.0 / s->pl.bpm * s->sample_rate;
    return f <= 0 ? 0 : (unsigned long long)llround(f);
}

/* Adds a note from @p beat for @p len beats, with a little velocity spread. */
static void cz_song_note(cz_song *s, int chan, int key, int vel, double beat, double len) {
    unsigned long long on = cz_song_frame(s, beat), off = cz_song_frame(s, beat + len);
    if (on >= s->frames || key < 0 || key > 127)
        return;
    int spread = chan == CZ_CH_DRUMS ? 6 : 4;
    vel += (int)lround((cz_rng_unit(&s->human) * 2.0 - 1.0) * spread);
    vel = vel < 1 ? 1 : vel > 127 ? 127 : vel;
    cz_song_push(s, on, CZ_EV_ON, chan, key, vel);
    if (off > on)
        cz_song_push(s, off < s->frames ? off : s->frames, CZ_EV_OFF, chan, key, 0);
}

/* Offs before ons at the same frame, so a repeated note is retriggered. */
static int cz_event_cmp(const void *a, const void *b) {
    const cz_event *x = a, *y = b;
    if (x->frame != y->frame)
        return x->frame < y->frame ? -1 : 1;
    if (x->kind != y->kind)
        return x->kind < y->kind ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* ================================================================ harmony */

/* The pitch class of scale step @p step (may exceed 6) above the tonic. */
static int cz_song_step_pc(const cz_song *s, int step) {
    const int *sc = s->pl.minor ? cz_scale_minor : cz_scale_major;
    return s->pl.root + sc[step % 7] + 12 * (step / 7);
}

/* Places pitch class @p pc in [lo, lo + 12). */
static int cz_place(int pc, int lo) {
    int k = ((pc - lo) % 12 + 12) % 12;
    return lo + k;
}

/* Triad on @p degree (plus its seventh if @p sevenths) voiced in [55, 67),
 * sorted upwards; returns the number of notes. */
static int cz_song_voicing(const cz_song *s, int degree, int sevenths, int out[4]) {
    int n = sevenths ? 4 : 3;
    for (int i = 0; i < n; i++)
        out[i] = cz_place(cz_song_step_pc(s, degree + 2 * i), 55);
    for (int i = 1; i < n; i++) // insertion sort, four items at most
        for (int j = i; j > 0 && out[j - 1] > out[j]; j--) {
            int t = out[j];
            out[j] = out[j - 1];
            out[j - 1] = t;
        }
    return n;
}

/* ================================================================ parts */

typedef struct cz_bar {
    size_t index;
    double beat; /* first beat of the bar */
    int degree;  /* chord's scale degree */
    int drums;   /* drum level for this bar */
    int melody;  /* melody plays in this bar */
    int fill;    /* last bar of a phrase that goes on */
    int crash;   /* first bar of a phrase */
    int bass;    /* bass plays */
} cz_bar;

static void cz_part_chords(cz_song *s, const cz_bar *b) {
    static const double comp[3][3][2] = {
        {{0, 4}, {-1, 0}, {-1, 0}}, {{0, 2}, {2, 2}, {-1, 0}}, {{0, 1.5}, {1.5, 1}, {2.5, 1.5}}};
    int v[4];
    int sevenths = s->pl.chords == 4 || s->pl.chords == 5; // electric pianos suit 7th chords
    int n = cz_song_voicing(s, b->degree, sevenths, v);
    const double(*c)[2] = comp[s->pl.chord_comp];
    for (int h = 0; h < 3 && c[h][0] >= 0; h++)
        for (int i = 0; i < n; i++)
            cz_song_note(s, CZ_CH_CHORDS, v[i], h == 0 ? 72 : 62, b->beat + c[h][0], c[h][1]);
}

static void cz_part_bass(cz_song *s, const cz_bar *b) {
    /* {start, length, interval above the root}; a negative start ends a list */
    // clang-format off
    static const double pats[4][9][3] = {
        {{0, 1.5, 0}, {1.5, 0.5, 0}, {2, 1.5, 0}, {3.5, 0.5, 7}, {-1, 0, 0}},
        {{0, 2, 0}, {2, 1.5, 7}, {3.5, 0.5, 0}, {-1, 0, 0}},
        {{0, .5, 0}, {.5, .5, 0}, {1, .5, 12}, {1.5, .5, 0}, {2, .5, 0}, {2.5, .5, 0}, {3, .5, 7},
         {3.5, .5, 0}, {-1, 0, 0}},
        {{0, 4, 0}, {-1, 0, 0}},
    };
    // clang-format on
    int root = cz_place(cz_song_step_pc(s, b->degree), 36);
    int pat = b->drums >= CZ_DRUMS_SOFT ? s->pl.bass_pat : 3;
    for (int i = 0; pats[pat][i][0] >= 0; i++)
        cz_song_note(s, CZ_CH_BASS, root + (int)pats[pat][i][2], i == 0 ? 88 : 76,
                     b->beat + pats[pat][i][0], pats[pat][i][1] * 0.95);
}

/* Beat of sixteenth @p step, with swing pushing the off-beat eighths late. */
static double cz_song_swing(const cz_song *s, int step) {
    double beat = step * 0.25;
    if (s->pl.swing && step % 4 == 2)
        beat += 0.08;
    return beat;
}

static void cz_part_drum_hit(cz_song *s, const cz_bar *b, int key, int step, int vel) {
    cz_song_note(s, CZ_CH_DRUMS, key, vel, b->beat + cz_song_swing(s, step), 0.25);
}

static void cz_part_drums(cz_song *s, const cz_bar *b) {
    if (b->drums == CZ_DRUMS_NONE)
        return;
    if (b->crash)
        cz_part_drum_hit(s, b, CZ_CRASH, 0, 58);
    if (b->drums == CZ_DRUMS_SPARSE) {
        cz_part_drum_hit(s, b, CZ_KICK, 0, 70);
        cz_part_drum_hit(s, b, CZ_STICK, 8, 52);
        for (int q = 0; q < 16; q += 4)
            cz_part_drum_hit(s, b, CZ_RIDE, q, q == 0 ? 50 : 40);
        return;
    }
    static const int kicks[3][4] = {{0, 8, -1, -1}, {0, 6, 8, -1}, {0, 7, 10, -1}};
    const int *k = kicks[b->drums == CZ_DRUMS_SOFT ? 2 : s->pl.drum_pat];
    for (int i = 0; i < 4 && k[i] >= 0; i++)
        cz_part_drum_hit(s, b, CZ_KICK, k[i], i == 0 ? 84 : 74);
    int back = b->drums == CZ_DRUMS_SOFT ? CZ_STICK : CZ_SNARE;
    cz_part_drum_hit(s, b, back, 4, 66);
    if (b->fill)
        for (int st = 12; st < 16; st++)
            cz_part_drum_hit(s, b, CZ_SNARE, st, 50 + 6 * (st - 12));
    else
        cz_part_drum_hit(s, b, back, 12, 66);
    for (int st = 0; st < 16; st += 2) {
        int open = st == 14 && b->index % 2 == 1 && !b->fill;
        cz_part_drum_hit(s, b, open ? CZ_OPEN_HAT : CZ_HAT, st, st % 4 == 0 ? 50 : 38);
    }
}

static void cz_part_arp(cz_song *s, const cz_bar *b) {
    static const int pats[4][6] = {
        {0, 1, 2, 3, 0, 1}, {0, 1, 2, 3, 2, 1}, {0, 2, 1, 3, 1, 2}, {0, 1, 2, 1, 3, 2}};
    static const int lens[4] = {4, 6, 4, 6};
    int v[4], tones[5];
    int n = cz_song_voicing(s, b->degree, 0, v);
    for (int i = 0; i < n; i++)
        tones[i] = v[i] + 12;
    tones[n] = tones[0] + 12;
    // Sixteenths only over a slow groove; without one they turn into a wash of
    // ringing notes (and cost a hundred voices).
    double step = s->pl.bpm < 95 && s->pl.drums >= CZ_DRUMS_SOFT ? 0.25 : 0.5;
    int quiet = b->melody ? 12 : 0; // make room for the melody
    const int *p = pats[s->pl.arp_pat];
    int steps = (int)lround(4.0 / step);
    for (int i = 0; i < steps; i++) {
        int key = tones[p[i % lens[s->pl.arp_pat]]];
        int sixteenth = (int)lround(i * step * 4);
        double at = step == 0.5 ? cz_song_swing(s, sixteenth) : i * step;
        cz_song_note(s, CZ_CH_ARP, key, (i % 4 == 0 ? 62 : 52) - quiet, b->beat + at, step * 0.9);
    }
}

/* Picks a chord tone near @p prev (strong beats) or a scale step away. */
static int cz_melody_next(cz_song *s, int degree, int prev, int strong) {
    int best = prev, dist = 99;
    if (strong) {
        for (int i = 0; i < 3; i++) {
            int t = cz_place(cz_song_step_pc(s, degree + 2 * i), prev - 6);
            int d = abs(t - prev) * 2 + (int)cz_rng_below(&s->rng, 3);
            if (d < dist) {
                dist = d;
                best = t;
            }
        }
        return best;
    }
    int dir = prev > 76 ? -1 : prev < 66 ? 1 : (cz_rng_below(&s->rng, 2) ? 1 : -1);
    int want = prev + dir * (1 + (int)cz_rng_below(&s->rng, 3)); // up to a third
    // Snap to the nearest scale tone.
    for (int step = 0; step < 14; step++) {
        int t = cz_place(cz_song_step_pc(s, step), want - 6);
        if (abs(t - want) < dist) {
            dist = abs(t - want);
            best = t;
        }
    }
    return best;
}

static void cz_part_melody(cz_song *s, const cz_bar *b, int *prev) {
    static const double rhythms[5][6] = {
        {1, 1, 2, 0}, {1.5, .5, 2, 0}, {.5, .5, 1, 2, 0}, {2, 1, 1, 0}, {1, .5, .5, 1, 1, 0}};
    if (!b->melody)
        return;
    const double *r = rhythms[s->pl.rhythm];
    double at = 0;
    for (int i = 0; r[i] > 0; i++) {
        int strong = fmod(at, 2.0) == 0.0;
        *prev = cz_melody_next(s, b->degree, *prev, strong);
        cz_song_note(s, CZ_CH_MELODY, *prev, strong ? 74 : 64, b->beat + at, r[i] * 0.92);
        at += r[i];
    }
}

/* ================================================================ form */

enum { CZ_PHRASE_A, CZ_PHRASE_B_MELODY, CZ_PHRASE_A_MELODY, CZ_PHRASE_BREAK };

/* Decides what plays in bar @p i. Phrases are four bars: the first plays
 * progression A (its first bars without drums), then the piece cycles through
 * B with the melody, A with the melody, a breakdown on B without kick and
 * snare, and A again. */
static cz_bar cz_song_bar(const cz_song *s, size_t i) {
    static const int cycle[4] = {CZ_PHRASE_B_MELODY, CZ_PHRASE_A_MELODY, CZ_PHRASE_BREAK,
                                 CZ_PHRASE_A};
    const cz_plan *pl = &s->pl;
    size_t phrase = i / 4;
    int kind = phrase == 0 ? CZ_PHRASE_A : cycle[(phrase - 1) % 4];
    cz_bar b = {.index = i, .beat = 4.0 * i, .drums = pl->drums, .bass = 1};
    b.degree = pl->prog[kind == CZ_PHRASE_B_MELODY || kind == CZ_PHRASE_BREAK][i % 4];
    b.melody = kind == CZ_PHRASE_B_MELODY || kind == CZ_PHRASE_A_MELODY;
    if (kind == CZ_PHRASE_BREAK && b.drums > CZ_DRUMS_SPARSE)
        b.drums = CZ_DRUMS_SPARSE;
    size_t intro = pl->bars >= 8 ? 2 : pl->bars >= 4 ? 1 : 0;
    if (i < intro)
        b.drums = CZ_DRUMS_NONE;
    if (pl->bars >= 8 && i == 0)
        b.bass = 0;
    b.crash = i % 4 == 0 && i > 0;
    b.fill = i % 4 == 3 && i + 1 < pl->bars;
    return b;
}

/* The final tonic chord, held to the end while the fade runs. */
static void cz_song_ending(cz_song *s, int melody_prev) {
    double beat = 4.0 * s->pl.bars, hold = 1e6; // held past the end: the fade closes it
    int v[4];
    int n = cz_song_voicing(s, 0, 0, v);
    for (int i = 0; i < n; i++) {
        cz_song_note(s, CZ_CH_CHORDS, v[i], 70, beat, hold);
        cz_song_note(s, CZ_CH_ARP, v[i] + 12, 56 - 3 * i, beat + 0.25 * i, hold);
    }
    cz_song_note(s, CZ_CH_BASS, cz_place(s->pl.root, 36), 84, beat, hold);
    if (s->pl.bars > 4) { // the melody has played by now; let it land on the tonic
        int tonic = cz_place(s->pl.root, melody_prev - 6);
        cz_song_note(s, CZ_CH_MELODY, tonic, 66, beat, hold);
    }
    if (s->pl.drums != CZ_DRUMS_NONE && s->pl.bars > 0) {
        cz_song_note(s, CZ_CH_DRUMS, CZ_KICK, 80, beat, 0.25);
        cz_song_note(s, CZ_CH_DRUMS, CZ_CRASH, 60, beat, 0.25);
    }
}

static int cz_song_compose(cz_song *s, cz_err *err) {
    int melody_prev = cz_place(s->pl.root, 67);
    for (size_t i = 0; i < s->pl.bars; i++) {
        cz_bar b = cz_song_bar(s, i);
        cz_part_chords(s, &b);
        if (b.bass)
            cz_part_bass(s, &b);
        cz_part_drums(s, &b);
        cz_part_arp(s, &b);
        cz_part_melody(s, &b, &melody_prev);
    }
    cz_song_ending(s, melody_prev);
    if (s->oom)
        return cz_err_set(err, "out of memory composing a %.0f s piece", s->pl.duration_s);
    qsort(s->ev, s->len, sizeof *s->ev, cz_event_cmp);
    return 0;
}

/* ================================================================ synth */

/* One render's synthesizer. FluidSynth voices keep a little state from the
 * note they last played (filter coefficient ramps among it), and its reverb
 * and chorus modulators run on from one render to the next, so a synth that
 * has played anything is not a clean slate; a fresh one costs under a
 * millisecond. It reaches the renderer's loaded SoundFont through a proxy
 * whose free callback frees only the proxy, so the synth never owns (or
 * unloads) the shared samples. */
typedef struct cz_synth {
    fluid_settings_t *settings;
    fluid_synth_t *fs;
    int sfont_id;
} cz_synth;

static const char *cz_proxy_name(fluid_sfont_t *proxy) {
    return fluid_sfont_get_name(fluid_sfont_get_data(proxy));
}

static fluid_preset_t *cz_proxy_preset(fluid_sfont_t *proxy, int bank, int prog) {
    return fluid_sfont_get_preset(fluid_sfont_get_data(proxy), bank, prog);
}

static int cz_proxy_free(fluid_sfont_t *proxy) {
    return delete_fluid_sfont(proxy);
}

static int cz_synth_settings(fluid_settings_t *st, unsigned sample_rate, double gain) {
    return fluid_settings_setnum(st, "synth.sample-rate", sample_rate) == FLUID_OK &&
                   fluid_settings_setnum(st, "synth.gain", gain) == FLUID_OK &&
                   fluid_settings_setnum(st, "synth.reverb.room-size", 0.6) == FLUID_OK &&
                   fluid_settings_setnum(st, "synth.reverb.damp", 0.4) == FLUID_OK &&
                   fluid_settings_setnum(st, "synth.reverb.width", 0.8) == FLUID_OK &&
                   fluid_settings_setnum(st, "synth.reverb.level", 0.7) == FLUID_OK &&
                   fluid_settings_setint(st, "synth.threadsafe-api", 0) == FLUID_OK
               ? 0
               : -1;
}

static void cz_synth_close(cz_synth *s) {
    if (s->fs)
        delete_fluid_synth(s->fs); // also frees the proxy, never the SoundFont
    if (s->settings)
        delete_fluid_settings(s->settings);
    memset(s, 0, sizeof *s);
}

static int cz_synth_open(cz_synth *s, const cz_renderer *r, double gain, cz_err *err) {
    memset(s, 0, sizeof *s);
    s->settings = new_fluid_settings();
    if (!s->settings || cz_synth_settings(s->settings, r->sample_rate, gain) != 0 ||
        !(s->fs = new_fluid_synth(s->settings))) {
        cz_synth_close(s);
        return cz_err_set(err, "cannot create a FluidSynth synthesizer at %u Hz", r->sample_rate);
    }
    fluid_sfont_t *proxy =
        new_fluid_sfont(cz_proxy_name, cz_proxy_preset, NULL, NULL, cz_proxy_free);
    if (!proxy || fluid_sfont_set_data(proxy, r->sfont) != FLUID_OK ||
        (s->sfont_id = fluid_synth_add_sfont(s->fs, proxy)) == FLUID_FAILED) {
        if (proxy)
            delete_fluid_sfont(proxy);
        cz_synth_close(s);
        return cz_err_set(err, "cannot attach the SoundFont to a new synthesizer");
    }
    return 0;
}

/* Selects @p prog on @p chan and sets its mix: volume, pan, reverb send. */
static int cz_synth_program(cz_synth *s, int chan, int bank, int prog, const int mix[3],
                            cz_err *err) {
    if (fluid_synth_program_select(s->fs, chan, s->sfont_id, bank, prog) != FLUID_OK)
        return cz_err_set(err,
                          "the SoundFont has no instrument bank %d program %d (channel %d): "
                          "use a complete General MIDI SoundFont",
                          bank, prog, chan + 1);
    if (fluid_synth_cc(s->fs, chan, 7, mix[0]) != FLUID_OK ||
        fluid_synth_cc(s->fs, chan, 10, mix[1]) != FLUID_OK ||
        fluid_synth_cc(s->fs, chan, 91, mix[2]) != FLUID_OK)
        return cz_err_set(err, "FluidSynth refused the mix settings of channel %d", chan + 1);
    return 0;
}

static int cz_synth_setup(cz_synth *s, const cz_plan *pl, cz_err *err) {
    /* {volume, pan, reverb send}: bass and kick stay nearly dry */
    static const int chords[3] = {92, 64, 70}, bass[3] = {100, 64, 8}, arp[3] = {74, 84, 80},
                     melody[3] = {88, 46, 60}, drums[3] = {92, 64, 28};
    if (cz_synth_program(s, CZ_CH_CHORDS, 0, pl->chords, chords, err) != 0 ||
        cz_synth_program(s, CZ_CH_BASS, 0, pl->bass, bass, err) != 0 ||
        cz_synth_program(s, CZ_CH_ARP, 0, pl->arp, arp, err) != 0 ||
        cz_synth_program(s, CZ_CH_MELODY, 0, pl->melody, melody, err) != 0 ||
        cz_synth_program(s, CZ_CH_DRUMS, 128, 0, drums, err) != 0)
        return -1;
    return 0;
}

/* ================================================================ playback */

typedef struct cz_run {
    cz_synth syn;
    unsigned sample_rate;
    float *out;
    unsigned long long pos, total, next_report;
    cz_render_progress_fn progress;
    void *user;
} cz_run;

/* Renders up to frame @p until. @returns 0, 1 when cancelled, -1 on error. */
static int cz_run_until(cz_run *run, unsigned long long until, cz_err *err) {
    while (run->pos < until) {
        unsigned long long n = until - run->pos;
        if (n > CZ_RENDER_CHUNK)
            n = CZ_RENDER_CHUNK;
        float *lr = run->out + 2 * run->pos;
        if (fluid_synth_write_float(run->syn.fs, (int)n, lr, 0, 2, lr, 1, 2) != FLUID_OK)
            return cz_err_set(err, "FluidSynth failed to render at frame %llu", run->pos);
        run->pos += n;
        if (run->pos >= run->next_report) {
            run->next_report += run->sample_rate;
            if (run->progress && run->progress(run->user, (double)run->pos / run->total) != 0)
                return 1;
        }
    }
    return 0;
}

static int cz_run_song(cz_run *run, const cz_song *s, cz_err *err) {
    for (size_t i = 0; i < s->len; i++) {
        const cz_event *e = &s->ev[i];
        int rc = cz_run_until(run, e->frame, err);
        if (rc != 0)
            return rc;
        // A note-off for a voice already gone fails harmlessly; ignore it.
        if (e->kind == CZ_EV_ON)
            fluid_synth_noteon(run->syn.fs, e->chan, e->key, e->vel);
        else
            fluid_synth_noteoff(run->syn.fs, e->chan, e->key);
    }
    return cz_run_until(run, run->total, err);
}

/* Raised-cosine fade over the last @p seconds, reaching zero on the last frame. */
static void cz_render_fade(float *lr, unsigned long long frames, unsigned sr, double seconds) {
    unsigned long long n = (unsigned long long)(seconds * sr);
    if (n > frames)
        n = frames;
    for (unsigned long long i = 0; i < n; i++) {
        float g = (float)(0.5 * (1.0 + cos(CZ_PI * (double)(i + 1) / (double)n)));
        float *f = lr + 2 * (frames - n + i);
        f[0] *= g;
        f[1] *= g;
    }
}

/* ================================================================ API */

static int cz_render_check(const cz_renderer *r, const cz_render_params *p, const cz_audio *out,
                           cz_err *err) {
    if (!r || !p || !out)
        return cz_err_set(err, "render: renderer, parameters and output are all required");
    if (!(p->duration_s >= 1.0 && p->duration_s <= 600.0))
        return cz_err_set(err, "render: duration %.3f s is outside 1..600 s", p->duration_s);
    if (!(p->tempo_bpm == 0.0 || (p->tempo_bpm >= 20.0 && p->tempo_bpm <= 300.0)))
        return cz_err_set(err, "render: tempo %.1f BPM is outside 20..300 (0 picks one)",
                          p->tempo_bpm);
    return 0;
}

int cz_render_generate(cz_renderer *r, const cz_render_params *p, cz_render_progress_fn progress,
                       void *user, cz_audio *out, cz_err *err) {
    if (cz_render_check(r, p, out, err) != 0)
        return -1;
    memset(out, 0, sizeof *out);
    cz_song s = {.rng = {p->seed ^ 0x5EEDC0DEC0FFEEull},
                 .human = {p->seed ^ 0x4A11ADB07ull},
                 .sample_rate = r->sample_rate,
                 .frames = (unsigned long long)llround(p->duration_s * r->sample_rate)};
    cz_run run = {.sample_rate = r->sample_rate,
                  .total = s.frames,
                  .next_report = r->sample_rate,
                  .progress = progress,
                  .user = user};
    int rc = cz_plan_make(&s.pl, p, &s.rng, err);
    if (rc == 0)
        rc = cz_song_compose(&s, err);
    if (rc == 0 && !(run.out = malloc(s.frames * 2 * sizeof(float))))
        rc = cz_err_set(err, "out of memory for %llu frames of audio", s.frames);
    if (rc == 0)
        rc = cz_synth_open(&run.syn, r, s.pl.gain, err);
    if (rc == 0)
        rc = cz_synth_setup(&run.syn, &s.pl, err);
    if (rc == 0)
        rc = cz_run_song(&run, &s, err);
    if (rc == 0 && progress && progress(user, 1.0) != 0)
        rc = 1;
    cz_synth_close(&run.syn);
    free(s.ev);
    if (rc != 0) {
        free(run.out);
        return rc;
    }
    cz_render_fade(run.out, s.frames, r->sample_rate, fmin(CZ_RENDER_FADE_S, p->duration_s * 0.3));
    *out = (cz_audio){run.out, (size_t)s.frames, 2, r->sample_rate};
    return 0;
}

cz_renderer *cz_render_open(const char *soundfont, unsigned sample_rate, cz_err *err) {
    if (!soundfont || access(soundfont, R_OK) != 0) {
        cz_err_set(err,
                   "SoundFont %s is not readable: install fluid-soundfont-gm or set "
                   "CADENZA_SOUNDFONT to a General MIDI .sf2",
                   soundfont ? soundfont : "(none)");
        return NULL;
    }
    if (sample_rate < 22050 || sample_rate > 96000) {
        cz_err_set(err, "render sample rate %u Hz is outside 22050..96000", sample_rate);
        return NULL;
    }
    cz_renderer *r = calloc(1, sizeof *r);
    if (!r) {
        cz_err_set(err, "out of memory creating the renderer");
        return NULL;
    }
    r->sample_rate = sample_rate;
    // The holder synth only owns the SoundFont; renders use fresh synths. No
    // mlock: a worker should not pin 140 MB of samples in RAM.
    r->settings = new_fluid_settings();
    if (!r->settings || fluid_settings_setint(r->settings, "synth.lock-memory", 0) != FLUID_OK ||
        !(r->holder = new_fluid_synth(r->settings))) {
        cz_err_set(err, "cannot create the FluidSynth synthesizer");
        cz_render_close(r);
        return NULL;
    }
    int id = fluid_synth_sfload(r->holder, soundfont, 0);
    if (id == FLUID_FAILED || !(r->sfont = fluid_synth_get_sfont_by_id(r->holder, id))) {
        cz_err_set(err, "cannot load SoundFont %s: is it a valid .sf2 file?", soundfont);
        cz_render_close(r);
        return NULL;
    }
    return r;
}

void cz_render_close(cz_renderer *r) {
    if (!r)
        return;
    if (r->holder)
        delete_fluid_synth(r->holder); // frees the SoundFont
    if (r->settings)
        delete_fluid_settings(r->settings);
    free(r);
}
