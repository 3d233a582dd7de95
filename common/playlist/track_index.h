/* The catalogue in memory, for playlists.
 *
 * Retrieval scores every track a listener may hear, so the features it
 * needs live in flat arrays (a column each), with the embedding quantised
 * to 8 bits per component: a million tracks scan in a few milliseconds.
 * Names (ids, titles, artists, tenants, tags) are kept once each in
 * string tables; an id finds its track through a hash.
 *
 * The index is filled from the `tracks` table and follows it: each sync
 * reads the rows past the highest seq it has (tracks are only added).
 * Readers hold the read lock for as long as they use positions and
 * arrays; adding takes the write lock briefly, once per batch.
 *
 * Tags (moods and genres, one namespace) are bits of a 64-bit mask: the
 * first 64 distinct tags get one; later ones are kept by name only. */
#ifndef CZ_TRACK_INDEX_H
#define CZ_TRACK_INDEX_H

#include <libpq-fe.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/music/track.h"

#define CZ_TAG_BITS 64

/** Interned strings: each distinct string once, numbered from 0. */
typedef struct cz_strtab {
    cz_buf text;  /* the strings, NUL-separated */
    uint32_t *at; /* at[i]: offset of string i */
    uint32_t n, cap;
    uint32_t *slots; /* open addressing: string number + 1, 0 = empty */
    uint32_t nslots;
} cz_strtab;

typedef struct cz_track_index {
    pthread_rwlock_t lock;
    uint32_t n, cap;
    int8_t *emb; /* n * CZ_EMBED_DIM, each component * 127 */
    float *tempo, *energy, *popularity, *duration;
    uint8_t *key, *mode;
    uint32_t *artist;   /* into artists */
    uint32_t *tenant;   /* 0: everyone's; else 1 + a number in tenants */
    uint64_t *tags;     /* bit i: tag number i */
    uint32_t *title_at; /* offsets into titles */
    cz_buf titles;
    cz_strtab ids; /* id number == position */
    cz_strtab artists, tenants, tag_names;
    long long seq; /* highest tracks.seq loaded */
    /* Per tag: the sum of its tracks' embeddings (a context's centre) and how many. */
    float tag_sum[CZ_TAG_BITS][CZ_EMBED_DIM];
    uint32_t tag_count[CZ_TAG_BITS];
} cz_track_index;

/** @brief An empty index. @returns it; free it with cz_track_index_free. */
cz_track_index *cz_track_index_new(void);

/** @brief Frees the index; NULL-safe. */
void cz_track_index_free(cz_track_index *ix);

/**
 * @brief Adds one track. @p tenant NULL or "" for everyone's. Takes the
 * write lock. @returns its position, or -1 (an id already there, or a name
 * table full) with @p err filled.
 */
long cz_track_index_add(cz_track_index *ix, const char *id, const char *tenant, const char *title,
                        const char *artist, const cz_track_features *f, float popularity,
                        cz_err *err);

/**
 * @brief Reads the rows of `tracks` past the highest seq loaded, in batches.
 * @returns how many were added, or -1 with @p err filled (what was read
 * before the error stays).
 */
long cz_track_index_sync(cz_track_index *ix, PGconn *c, cz_err *err);

/** @brief The position of track @p id, or -1. Caller holds the read lock. */
long cz_track_index_find(const cz_track_index *ix, const char *id);

/** @brief The tag number of @p name (< CZ_TAG_BITS), or -1. Caller holds the read lock. */
int cz_track_index_tag(const cz_track_index *ix, const char *name);

/** @brief The tenant number tracks carry for @p tenant (0 if it has none). */
uint32_t cz_track_index_tenant(const cz_track_index *ix, const char *tenant);

/** @brief Names of a track's fields. Caller holds the read lock. */
const char *cz_track_index_id(const cz_track_index *ix, uint32_t pos);
const char *cz_track_index_title(const cz_track_index *ix, uint32_t pos);
const char *cz_track_index_artist(const cz_track_index *ix, uint32_t pos);

/** @brief Dot product of two tracks' embeddings, about -1..1. */
float cz_track_index_similarity(const cz_track_index *ix, uint32_t a, uint32_t b);

/** @brief Takes and drops the read lock. */
void cz_track_index_read(cz_track_index *ix);
void cz_track_index_done(cz_track_index *ix);

#endif
