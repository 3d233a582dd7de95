/* The catalogue in memory: see track_index.h.
 *
 * Growth doubles every column together; a string table grows its text and
 * its hash slots separately (slots stay under half full). Sync reads a
 * window a little behind the highest seq it has, because a bigserial is
 * taken at insert and transactions commit in any order: a row with a lower
 * seq can appear after a higher one was read. Rows already present are
 * skipped by id. */
#include "common/playlist/track_index.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/db/playlists.h"
#include "common/hash.h"
#include "common/mem.h"

#define SYNC_BATCH 50000
#define SYNC_BEHIND 1024 /* rows re-read behind the highest seq (late commits) */

/* ---- string tables ------------------------------------------------------- */

/* Appends @p s with its NUL to @p text. @returns its offset, or -1 when
 * the text would pass 4 GiB (offsets are 32-bit). */
static long text_put(cz_buf *text, const char *s) {
    size_t n = strlen(s) + 1;
    if (text->len + n > UINT32_MAX)
        return -1;
    cz_buf_append(text, s, n);
    return (long)(text->len - n);
}

static uint32_t hash(const char *s) {
    return cz_fnv1a(s, SIZE_MAX);
}

static long st_find(const cz_strtab *t, const char *s) {
    if (!t->nslots)
        return -1;
    for (uint32_t i = hash(s) & (t->nslots - 1);; i = (i + 1) & (t->nslots - 1)) {
        uint32_t v = t->slots[i];
        if (!v)
            return -1;
        if (!strcmp(t->text.data + t->at[v - 1], s))
            return v - 1;
    }
}

static void st_rehash(cz_strtab *t, uint32_t nslots) {
    uint32_t *slots = cz_calloc(nslots, sizeof *slots);
    for (uint32_t k = 0; k < t->n; k++) {
        uint32_t i = hash(t->text.data + t->at[k]) & (nslots - 1);
        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = k + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
}

/* Adds @p s, which is not there yet. @returns its number, or -1 when the
 * table is full. */
static long st_add(cz_strtab *t, const char *s) {
    if (t->n == UINT32_MAX - 1)
        return -1;
    if ((t->n + 1) * 2 > t->nslots)
        st_rehash(t, t->nslots ? t->nslots * 2 : 64);
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->at = cz_realloc(t->at, t->cap * sizeof *t->at);
    }
    long at = text_put(&t->text, s);
    if (at < 0)
        return -1;
    t->at[t->n] = (uint32_t)at;
    uint32_t i = hash(s) & (t->nslots - 1);
    while (t->slots[i])
        i = (i + 1) & (t->nslots - 1);
    t->slots[i] = t->n + 1;
    return t->n++;
}

static long st_intern(cz_strtab *t, const char *s) {
    long k = st_find(t, s);
    return k >= 0 ? k : st_add(t, s);
}

static void st_free(cz_strtab *t) {
    cz_buf_free(&t->text);
    free(t->at);
    free(t->slots);
}

/* ---- the index ----------------------------------------------------------- */

cz_track_index *cz_track_index_new(void) {
    cz_track_index *ix = cz_calloc(1, sizeof *ix);
    pthread_rwlock_init(&ix->lock, NULL);
    return ix;
}

void cz_track_index_free(cz_track_index *ix) {
    if (!ix)
        return;
    free(ix->emb), free(ix->tempo), free(ix->energy), free(ix->popularity);
    free(ix->duration), free(ix->key), free(ix->mode), free(ix->artist);
    free(ix->tenant), free(ix->tags), free(ix->title_at), cz_buf_free(&ix->titles);
    st_free(&ix->ids), st_free(&ix->artists), st_free(&ix->tenants), st_free(&ix->tag_names);
    pthread_rwlock_destroy(&ix->lock);
    free(ix);
}

#define GROW(field, cap) (ix->field = cz_realloc(ix->field, (size_t)(cap) * sizeof *ix->field))

static void grow(cz_track_index *ix) {
    uint32_t cap = ix->cap ? ix->cap * 2 : 1024;
    ix->emb = cz_realloc(ix->emb, (size_t)cap * CZ_EMBED_DIM);
    GROW(tempo, cap);
    GROW(energy, cap);
    GROW(popularity, cap);
    GROW(duration, cap);
    GROW(key, cap);
    GROW(mode, cap);
    GROW(artist, cap);
    GROW(tenant, cap);
    GROW(tags, cap);
    GROW(title_at, cap);
    ix->cap = cap;
}

/* Adds a track; the caller holds the write lock. @returns 0, 1 when the id
 * is there already, -1 when a name table is full. */
static int add_locked(cz_track_index *ix, const char *id, const char *tenant, const char *title,
                      const char *artist, const cz_track_features *f, float popularity) {
    if (st_find(&ix->ids, id) >= 0)
        return 1;
    if (ix->n == ix->cap)
        grow(ix);
    long a = st_intern(&ix->artists, artist), t = 0, at = text_put(&ix->titles, title);
    if (tenant && *tenant && (t = st_intern(&ix->tenants, tenant)) >= 0)
        t++;
    if (a < 0 || t < 0 || at < 0)
        return -1;
    uint64_t tags = 0;
    for (int i = 0; i < f->n_moods + f->n_genres; i++) {
        const char *name = i < f->n_moods ? f->moods[i] : f->genres[i - f->n_moods];
        long k = st_intern(&ix->tag_names, name);
        if (k < 0)
            return -1;
        if (k < CZ_TAG_BITS && !(tags & (1ull << k))) {
            tags |= 1ull << k;
            ix->tag_count[k]++;
            for (int d = 0; d < CZ_EMBED_DIM; d++)
                ix->tag_sum[k][d] += f->embedding[d];
        }
    }
    if (st_add(&ix->ids, id) < 0)
        return -1;
    uint32_t n = ix->n;
    for (int d = 0; d < CZ_EMBED_DIM; d++) {
        float q = roundf(f->embedding[d] * 127.0f);
        ix->emb[(size_t)n * CZ_EMBED_DIM + d] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
    }
    ix->tempo[n] = f->tempo_bpm;
    ix->energy[n] = f->energy;
    ix->popularity[n] = popularity;
    ix->duration[n] = f->duration_s;
    ix->key[n] = (uint8_t)f->key;
    ix->mode[n] = (uint8_t)f->mode;
    ix->artist[n] = (uint32_t)a;
    ix->tenant[n] = (uint32_t)t;
    ix->tags[n] = tags;
    ix->title_at[n] = (uint32_t)at;
    ix->n++;
    return 0;
}

long cz_track_index_add(cz_track_index *ix, const char *id, const char *tenant, const char *title,
                        const char *artist, const cz_track_features *f, float popularity,
                        cz_err *err) {
    pthread_rwlock_wrlock(&ix->lock);
    int rc = add_locked(ix, id, tenant, title, artist, f, popularity);
    long pos = rc == 0 ? (long)ix->n - 1 : -1;
    pthread_rwlock_unlock(&ix->lock);
    if (rc > 0)
        cz_err_set(err, "track %s is in the index already", id);
    else if (rc < 0)
        cz_err_set(err, "cannot add track %s: the index's name tables are full", id);
    return pos;
}

/* ---- loading from Postgres ----------------------------------------------- */

static int unhex_nibble(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Reads "\x<256 hex digits>" (32 float32 LE) into @p out. @returns 0 or -1. */
static int parse_embedding(const char *s, float out[CZ_EMBED_DIM]) {
    if (strncmp(s, "\\x", 2) || strlen(s + 2) != CZ_EMBED_DIM * 8)
        return -1;
    s += 2;
    for (int d = 0; d < CZ_EMBED_DIM; d++) {
        uint32_t bits = 0;
        for (int b = 0; b < 4; b++) {
            int hi = unhex_nibble(s[0]), lo = unhex_nibble(s[1]);
            if (hi < 0 || lo < 0)
                return -1;
            bits |= (uint32_t)(hi << 4 | lo) << (8 * b);
            s += 2;
        }
        memcpy(&out[d], &bits, sizeof bits);
    }
    return 0;
}

/* Splits "a,b,c" (moods first, @p n_moods of them) into the feature tags. */
static void parse_tags(const char *s, int n_moods, cz_track_features *f) {
    f->n_moods = f->n_genres = 0;
    for (int i = 0; *s; i++) {
        size_t len = strcspn(s, ",");
        int mood = i < n_moods;
        int *n = mood ? &f->n_moods : &f->n_genres;
        if (*n < CZ_TAGS_MAX && len > 0 && len < CZ_TAG_LEN) {
            char *dst = mood ? f->moods[*n] : f->genres[*n];
            memcpy(dst, s, len);
            dst[len] = '\0';
            (*n)++;
        }
        s += len + (s[len] == ',');
    }
}

long cz_track_index_sync(cz_track_index *ix, PGconn *c, cz_err *err) {
    long added = 0;
    pthread_rwlock_rdlock(&ix->lock);
    long long from = ix->seq > SYNC_BEHIND ? ix->seq - SYNC_BEHIND : 0;
    pthread_rwlock_unlock(&ix->lock);
    for (;;) {
        PGresult *r = cz_db_playlist_tracks_after(c, from, SYNC_BATCH, err);
        if (!r)
            return -1;
        int rows = PQntuples(r);
        pthread_rwlock_wrlock(&ix->lock);
        int rc = 0;
        for (int i = 0; i < rows && rc >= 0; i++) {
            long long seq = atoll(PQgetvalue(r, i, 0));
            from = seq;
            if (seq <= ix->seq && st_find(&ix->ids, PQgetvalue(r, i, 1)) >= 0)
                continue; /* the window re-read behind the last sync: had it */
            cz_track_features f = {0};
            f.duration_s = strtof(PQgetvalue(r, i, 5), NULL);
            f.tempo_bpm = strtof(PQgetvalue(r, i, 6), NULL);
            f.key = atoi(PQgetvalue(r, i, 7));
            f.mode = atoi(PQgetvalue(r, i, 8));
            f.energy = strtof(PQgetvalue(r, i, 9), NULL);
            f.loudness_lufs = strtof(PQgetvalue(r, i, 10), NULL);
            parse_tags(PQgetvalue(r, i, 12), atoi(PQgetvalue(r, i, 11)), &f);
            if (parse_embedding(PQgetvalue(r, i, 14), f.embedding)) {
                cz_err_set(err, "track %s: the embedding is not 32 float32", PQgetvalue(r, i, 1));
                rc = -1;
                break;
            }
            rc = add_locked(ix, PQgetvalue(r, i, 1), PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                            PQgetvalue(r, i, 4), &f, strtof(PQgetvalue(r, i, 13), NULL));
            if (rc < 0) {
                cz_err_set(err, "cannot load tracks: the index's name tables are full");
                break;
            }
            added += rc == 0;
            if (seq > ix->seq)
                ix->seq = seq;
        }
        pthread_rwlock_unlock(&ix->lock);
        PQclear(r);
        if (rc < 0)
            return -1;
        if (rows < SYNC_BATCH)
            return added;
    }
}

/* ---- reading ------------------------------------------------------------- */

long cz_track_index_find(const cz_track_index *ix, const char *id) {
    return st_find(&ix->ids, id);
}

int cz_track_index_tag(const cz_track_index *ix, const char *name) {
    long k = st_find(&ix->tag_names, name);
    return k >= 0 && k < CZ_TAG_BITS ? (int)k : -1;
}

uint32_t cz_track_index_tenant(const cz_track_index *ix, const char *tenant) {
    long k = tenant ? st_find(&ix->tenants, tenant) : -1;
    return k >= 0 ? (uint32_t)k + 1 : 0;
}

const char *cz_track_index_id(const cz_track_index *ix, uint32_t pos) {
    return ix->ids.text.data + ix->ids.at[pos];
}

const char *cz_track_index_title(const cz_track_index *ix, uint32_t pos) {
    return ix->titles.data + ix->title_at[pos];
}

const char *cz_track_index_artist(const cz_track_index *ix, uint32_t pos) {
    return ix->artists.text.data + ix->artists.at[ix->artist[pos]];
}

float cz_track_index_similarity(const cz_track_index *ix, uint32_t a, uint32_t b) {
    const int8_t *x = ix->emb + (size_t)a * CZ_EMBED_DIM, *y = ix->emb + (size_t)b * CZ_EMBED_DIM;
    int32_t dot = 0;
    for (int d = 0; d < CZ_EMBED_DIM; d++)
        dot += x[d] * y[d];
    return (float)dot / (127.0f * 127.0f);
}

void cz_track_index_read(cz_track_index *ix) {
    pthread_rwlock_rdlock(&ix->lock);
}

void cz_track_index_done(cz_track_index *ix) {
    pthread_rwlock_unlock(&ix->lock);
}
