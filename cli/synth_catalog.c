/* A synthetic catalogue: see synth_catalog.h.
 *
 * Every random draw comes from a splitmix64 state seeded by what is being
 * made (genre g, artist a, track i, listener u) mixed with the catalogue's
 * seed, so nothing depends on the order things are made in. */
#include "cli/synth_catalog.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/rand.h"

/* Each draw replaces the state by its splitmix64 output: a chain of hashes
 * rather than splitmix64's counter, kept so catalogues stay the same. */
static uint64_t mix(uint64_t x) {
    return cz_splitmix64_mix(x);
}

static uint64_t state_for(uint64_t seed, uint64_t what, uint64_t i) {
    return mix(seed ^ mix(what * 0x100000001B3ull ^ mix(i)));
}

double cz_synth_uniform(uint64_t *state) {
    *state = mix(*state);
    return cz_rand_unit(*state);
}

double cz_synth_gauss(uint64_t *state) {
    double u = cz_synth_uniform(state), v = cz_synth_uniform(state);
    return sqrt(-2.0 * log(u + 1e-300)) * cos(2.0 * M_PI * v);
}

static void normalise(float *v) {
    double len = 0;
    for (int d = 0; d < CZ_EMBED_DIM; d++)
        len += (double)v[d] * v[d];
    len = sqrt(len);
    for (int d = 0; len > 0 && d < CZ_EMBED_DIM; d++)
        v[d] = (float)(v[d] / len);
}

/* v += scale * a random unit-ish vector from @p st */
static void add_noise(float *v, double scale, uint64_t *st) {
    for (int d = 0; d < CZ_EMBED_DIM; d++)
        v[d] += (float)(scale * cz_synth_gauss(st) / sqrt((double)CZ_EMBED_DIM));
}

typedef struct genre {
    const char *name;
    float tempo, tempo_sd, energy, minor; /* typical tempo and energy; share of minor keys */
} genre;

static const genre genres[CZ_SYNTH_GENRES] = {
    {"ambient", 80, 12, 0.20f, 0.5f}, {"classical", 95, 20, 0.35f, 0.45f},
    {"jazz", 115, 20, 0.45f, 0.4f},   {"folk", 105, 15, 0.40f, 0.35f},
    {"lo-fi", 85, 8, 0.35f, 0.55f},   {"r&b", 95, 10, 0.55f, 0.5f},
    {"hip-hop", 92, 8, 0.65f, 0.6f},  {"pop", 118, 10, 0.70f, 0.3f},
    {"rock", 128, 15, 0.75f, 0.4f},   {"house", 124, 3, 0.80f, 0.45f},
    {"techno", 132, 4, 0.85f, 0.65f}, {"metal", 150, 20, 0.90f, 0.7f},
};

void cz_synth_genre_centre(uint64_t seed, int g, float out[CZ_EMBED_DIM]) {
    uint64_t st = state_for(seed, 1, (uint64_t)g);
    memset(out, 0, CZ_EMBED_DIM * sizeof *out);
    add_noise(out, 1.0, &st);
    normalise(out);
}

static long artists_of(long n) {
    return n / 12 + 1;
}

static int artist_genre(uint64_t seed, long a) {
    uint64_t st = state_for(seed, 2, (uint64_t)a);
    return (int)(cz_synth_uniform(&st) * CZ_SYNTH_GENRES);
}

int cz_synth_track_genre(uint64_t seed, long n, long i) {
    uint64_t st = state_for(seed, 3, (uint64_t)i);
    long a = (long)(cz_synth_uniform(&st) * (double)artists_of(n));
    return artist_genre(seed, a);
}

static const char *const first[] = {"Silver",  "Velvet", "Paper", "Neon",   "Quiet",  "Golden",
                                    "Hollow",  "Wild",   "Blue",  "Copper", "Static", "Glass",
                                    "Crimson", "Lunar",  "Amber", "Distant"};
static const char *const second[] = {
    "Harbor",  "Engines", "Lanterns", "Rivers", "Echoes",  "Owls",    "Tides",   "Signals",
    "Gardens", "Motels",  "Comets",   "Horses", "Mirrors", "Winters", "Bridges", "Satellites"};
#define WORDS(a) (sizeof a / sizeof *a)

static void artist_name(long a, char *out, size_t n) {
    snprintf(out, n, "The %s %s %ld", first[a % WORDS(first)],
             second[(a / WORDS(first)) % WORDS(second)], a / (long)(WORDS(first) * WORDS(second)));
}

void cz_synth_track_make(uint64_t seed, long n, long i, cz_synth_track *out) {
    memset(out, 0, sizeof *out);
    uint64_t st = state_for(seed, 3, (uint64_t)i);
    long a = (long)(cz_synth_uniform(&st) * (double)artists_of(n));
    int g = artist_genre(seed, a);
    const genre *G = &genres[g];

    /* The artist: a style near the genre's centre, a Zipf popularity by a
     * rank drawn once per artist. */
    float style[CZ_EMBED_DIM];
    cz_synth_genre_centre(seed, g, style);
    uint64_t ast = state_for(seed, 4, (uint64_t)a);
    add_noise(style, 0.6, &ast);
    normalise(style);
    double rank = 1.0 + cz_synth_uniform(&ast) * (double)artists_of(n);
    double artist_pop = 1.0 / pow(rank, 0.8);

    memcpy(out->f.embedding, style, sizeof style);
    add_noise(out->f.embedding, 0.45, &st);
    normalise(out->f.embedding);

    snprintf(out->id, sizeof out->id, "s%ld", i);
    artist_name(a, out->artist, sizeof out->artist);
    snprintf(out->title, sizeof out->title, "%s %s %ld",
             first[(size_t)(cz_synth_uniform(&st) * WORDS(first))],
             second[(size_t)(cz_synth_uniform(&st) * WORDS(second))], i % 1000);
    double pop = artist_pop * (0.5 + 0.5 * cz_synth_uniform(&st));
    out->popularity = (float)(pop > 1 ? 1 : pop);

    cz_track_features *f = &out->f;
    f->duration_s = (float)(150 + 150 * cz_synth_uniform(&st));
    double tempo = G->tempo + G->tempo_sd * cz_synth_gauss(&st);
    f->tempo_bpm = (float)(tempo < 60 ? 60 : tempo > 200 ? 200 : tempo);
    f->key = (int)(cz_synth_uniform(&st) * 12);
    f->mode = cz_synth_uniform(&st) >= G->minor;
    double e = G->energy + 0.12 * cz_synth_gauss(&st) + 0.1 * f->embedding[0];
    f->energy = (float)(e < 0 ? 0 : e > 1 ? 1 : e);
    f->loudness_lufs = (float)(-14 + 3 * cz_synth_gauss(&st));
    /* The analysis's rules for moods, from energy and mode. */
    if (f->energy >= 0.7f)
        snprintf(f->moods[f->n_moods++], CZ_TAG_LEN, "energetic");
    if (f->energy <= 0.35f)
        snprintf(f->moods[f->n_moods++], CZ_TAG_LEN, "calm");
    if (f->mode == 1 && f->energy >= 0.5f)
        snprintf(f->moods[f->n_moods++], CZ_TAG_LEN, "happy");
    if (f->mode == 0 && f->energy < 0.5f)
        snprintf(f->moods[f->n_moods++], CZ_TAG_LEN, "melancholic");
    if (f->mode == 0 && f->energy >= 0.5f)
        snprintf(f->moods[f->n_moods++], CZ_TAG_LEN, "dark");
    snprintf(f->genres[f->n_genres++], CZ_TAG_LEN, "%s", G->name);
}

void cz_synth_listener(uint64_t seed, long listener, float out[CZ_EMBED_DIM]) {
    uint64_t st = state_for(seed, 5, (uint64_t)listener);
    float c[CZ_EMBED_DIM];
    memset(out, 0, CZ_EMBED_DIM * sizeof *out);
    int g1 = (int)(cz_synth_uniform(&st) * CZ_SYNTH_GENRES);
    cz_synth_genre_centre(seed, g1, c);
    for (int d = 0; d < CZ_EMBED_DIM; d++)
        out[d] += c[d];
    if (cz_synth_uniform(&st) < 0.5) { /* a second, lesser love */
        int g2 = (int)(cz_synth_uniform(&st) * CZ_SYNTH_GENRES);
        cz_synth_genre_centre(seed, g2, c);
        for (int d = 0; d < CZ_EMBED_DIM; d++)
            out[d] += 0.6f * c[d];
    }
    add_noise(out, 0.5, &st);
    normalise(out);
}
