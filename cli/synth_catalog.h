/* A synthetic catalogue, for demos, tests and benchmarks.
 *
 * Tracks come from artists, artists from genres. Each genre has a centre in
 * embedding space, a typical tempo, energy and share of minor keys; an
 * artist has a style near its genre's centre and a popularity that falls
 * with its rank (Zipf); a track sounds like its artist, with noise. Moods
 * follow from energy and mode the way the audio analysis derives them.
 * So the catalogue has the structure real ones have: clusters, a long
 * tail, features that agree with each other.
 *
 * Everything is a pure function of (seed, number of tracks, index): track
 * i is the same whoever asks, and a catalogue can be made in parallel or
 * streamed without holding it. Listeners with hidden tastes, for the
 * offline evaluation, come from the same genre centres. */
#ifndef CZ_SYNTH_CATALOG_H
#define CZ_SYNTH_CATALOG_H

#include <stdint.h>

#include "common/music/track.h"

#define CZ_SYNTH_GENRES 12

typedef struct cz_synth_track {
    char id[24]; /* "s<index>" */
    char title[64];
    char artist[64];
    float popularity; /* 0..1 */
    cz_track_features f;
} cz_synth_track;

/** @brief Track @p i of the catalogue of @p n tracks made from @p seed. */
void cz_synth_track_make(uint64_t seed, long n, long i, cz_synth_track *out);

/** @brief The unit centre of genre @p g (0..CZ_SYNTH_GENRES-1) under @p seed. */
void cz_synth_genre_centre(uint64_t seed, int g, float out[CZ_EMBED_DIM]);

/** @brief The genre of track @p i (as cz_synth_track_make gives it). */
int cz_synth_track_genre(uint64_t seed, long n, long i);

/** @brief A listener's hidden taste: a unit vector near one or two genre centres. */
void cz_synth_listener(uint64_t seed, long listener, float out[CZ_EMBED_DIM]);

/** @brief A random number in [0, 1) from a 64-bit state (splitmix64). */
double cz_synth_uniform(uint64_t *state);

/** @brief A standard normal number (Box-Muller over cz_synth_uniform). */
double cz_synth_gauss(uint64_t *state);

#endif
