/* Playlists: retrieve, re-rank, sequence, explain.
 *
 * A playlist is built in four steps over the in-memory catalogue
 * (track_index.h), the way streaming services build theirs:
 *
 * 1. Taste. A listener's signals (play, complete, skip, like, dislike) make
 *    a taste vector in embedding space: each signal adds its track's
 *    embedding with a weight for its kind (like +1, complete +0.5, play
 *    +0.1, an early skip -0.6, a late skip -0.2, dislike -1), halved every
 *    30 days (long-term taste), and tripled within the last 30 minutes
 *    (the session). Disliked tracks never come back; an artist disliked
 *    twice neither.
 * 2. Retrieval. One pass over every track the tenant may hear scores its
 *    similarity to a query vector that mixes the taste, the seed tracks
 *    and the context's centre (the mean of the tracks tagged with the
 *    mood); an activity also bounds the tempo and the energy, and a mood
 *    the energy: explicit controls override the taste. The best few
 *    thousand go on.
 * 3. Re-ranking. Each candidate's score adds taste similarity, fit to the
 *    context (energy, mood tag, mode), and popularity turned by novelty:
 *    novelty 0 favours popular and familiar tracks, 1 favours the less
 *    played and tracks the listener has not heard.
 * 4. Sequencing. Greedy, position by position, along the activity's
 *    energy arc. Hard rules, which every adjacent pair obeys: the tempo
 *    moves by at most CZ_PLAYLIST_TEMPO_STEP of the previous track's, the
 *    key by at most one step on the Camelot wheel, and no artist or
 *    near-duplicate (embedding similarity >= CZ_PLAYLIST_NEAR_DUP) repeats
 *    within CZ_PLAYLIST_WINDOW tracks. When no candidate fits, the pool is
 *    widened; if still none, the last track is taken back and another
 *    tried in its place (a bounded number of times); failing that, the
 *    playlist ends early (the longest it reached) and says why.
 *
 * Each track carries a one-line reason naming what put it there.
 * Everything here is deterministic: the same catalogue, signals and
 * request give the same playlist. */
#ifndef CZ_PLAYLIST_H
#define CZ_PLAYLIST_H

#include <stdbool.h>

#include "common/err.h"
#include "common/playlist/track_index.h"

#define CZ_PLAYLIST_TEMPO_STEP 0.08f /* of the previous track's tempo */
#define CZ_PLAYLIST_KEY_STEP 1       /* Camelot steps */
#define CZ_PLAYLIST_WINDOW 6         /* tracks */
#define CZ_PLAYLIST_NEAR_DUP 0.97f   /* embedding similarity */
#define CZ_PLAYLIST_MAX_TRACKS 200
#define CZ_PLAYLIST_MAX_MINUTES 600
#define CZ_PLAYLIST_MAX_SEEDS 20
#define CZ_PLAYLIST_MAX_EXCLUDE 1000
#define CZ_PLAYLIST_REASON 200

enum cz_signal_kind {
    CZ_SIGNAL_PLAY,
    CZ_SIGNAL_COMPLETE,
    CZ_SIGNAL_SKIP,
    CZ_SIGNAL_LIKE,
    CZ_SIGNAL_DISLIKE,
};

/** @brief The kind called @p name ("play", "skip", ...), or -1. */
int cz_signal_kind_of(const char *name);

typedef struct cz_signal {
    uint32_t track; /* position in the index */
    int kind;
    float position_s; /* where a skip happened; < 0 unknown */
    double age_s;     /* how long ago */
} cz_signal;

#define CZ_TASTE_LIKED 16

typedef struct cz_taste {
    float vec[CZ_EMBED_DIM];
    float strength; /* length of the summed vector before normalising; 0: no taste */
    uint32_t liked[CZ_TASTE_LIKED]; /* the most positive tracks, for reasons */
    int n_liked;
    uint32_t *known; /* sorted positions the listener has signals for */
    int n_known;
    uint32_t *banned; /* sorted: disliked tracks */
    int n_banned;
    uint32_t *banned_artists; /* sorted: artists disliked at least twice */
    int n_banned_artists;
} cz_taste;

/**
 * @brief Builds a taste from @p n signals. Caller holds the index's read
 * lock. Free with cz_taste_free().
 */
void cz_taste_build(const cz_track_index *ix, const cz_signal *s, int n, cz_taste *out);

/** @brief Frees what cz_taste_build() allocated; the struct may be reused. */
void cz_taste_free(cz_taste *t);

typedef struct cz_playlist_request {
    const char *tenant;   /* whose tracks may be heard besides everyone's */
    const char *mood;     /* NULL or one of cz_playlist_moods */
    const char *activity; /* NULL or one of cz_playlist_activities */
    int length_tracks;    /* one of length_tracks or length_minutes */
    double length_minutes;
    double novelty; /* 0..1 */
    const uint32_t *seeds;
    int n_seeds;
    const uint32_t *exclude;
    int n_exclude;
    bool popularity_only; /* the baseline: no taste, no similarity, popularity alone */
} cz_playlist_request;

typedef struct cz_playlist_entry {
    uint32_t track;
    char reason[CZ_PLAYLIST_REASON];
} cz_playlist_entry;

typedef struct cz_playlist {
    cz_playlist_entry *items;
    int n;
    double duration_s;
    char note[160]; /* why it is shorter than asked, or "" */
} cz_playlist;

/** NULL-terminated names a request may use. */
extern const char *const cz_playlist_moods[];
extern const char *const cz_playlist_activities[];

/** @brief True when @p name is in the NULL-terminated @p names. */
bool cz_playlist_known(const char *const *names, const char *name);

/**
 * @brief Builds a playlist. Caller holds the index's read lock. @p taste
 * may be NULL (no listener, or one without signals).
 * Fills @p out with a playlist, perhaps shorter than asked (see its note).
 * Free with cz_playlist_free().
 */
void cz_playlist_build(const cz_track_index *ix, const cz_playlist_request *rq,
                       const cz_taste *taste, cz_playlist *out);

/** @brief Frees a playlist's items. */
void cz_playlist_free(cz_playlist *p);

/**
 * @brief The target energy at position @p i of @p n under @p activity and
 * @p mood (either may be NULL). Exposed for tests.
 */
float cz_playlist_arc(const char *activity, const char *mood, int i, int n);

/** @brief The tempo range an activity allows (0, 0 when it sets none). */
void cz_playlist_tempo_range(const char *activity, float *lo, float *hi);

#endif
