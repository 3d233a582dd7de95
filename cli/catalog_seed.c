/* `cadenzactl catalog seed --tracks N [--seed S]`: see catalog_seed.h.
 *
 * Tracks s0..s<N-1> of the synthetic catalogue made from seed S
 * (cli/synth_catalog.h) are streamed with COPY into a temporary table,
 * then added to `tracks` with ON CONFLICT DO NOTHING, in one transaction:
 * seeding again with the same seed adds nothing, and a larger N adds the
 * rest (the SQL: common/db/playlists.c). Readers (the API, the scheduler)
 * pick the rows up by seq. */
#include "cli/catalog_seed.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/synth_catalog.h"
#include "common/config.h"
#include "common/db/db.h"
#include "common/db/playlists.h"

#define MAX_TRACKS 10000000L

static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = s ? strtol(s, &end, 10) : 0;
    if (!s || errno || end == s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* "{a,b}" of @p n tags (tags are plain words: no quoting needed). */
static int put_tags(char *out, size_t n, const char tags[][CZ_TAG_LEN], int count) {
    size_t w = (size_t)snprintf(out, n, "{");
    for (int i = 0; i < count && w < n; i++)
        w += (size_t)snprintf(out + w, n - w, "%s\"%s\"", i ? "," : "", tags[i]);
    if (w < n)
        w += (size_t)snprintf(out + w, n - w, "}");
    return w < n ? 0 : -1;
}

/* One COPY text line for @p t. */
static int copy_line(const cz_synth_track *t, char *out, size_t n) {
    char moods[128], genres[128], hex[CZ_EMBED_DIM * 8 + 1];
    if (put_tags(moods, sizeof moods, t->f.moods, t->f.n_moods) ||
        put_tags(genres, sizeof genres, t->f.genres, t->f.n_genres))
        return -1;
    const unsigned char *b = (const unsigned char *)t->f.embedding; /* float32 LE on x86/ARM */
    for (int i = 0; i < CZ_EMBED_DIM * 4; i++)
        snprintf(hex + 2 * i, 3, "%02x", b[i]);
    int w = snprintf(
        out, n, "%s\tsynthetic\t%s\t%s\t%.1f\t%.2f\t%d\t%d\t%.4f\t%.2f\t%s\t%s\t%.5f\t\\\\x%s\n",
        t->id, t->title, t->artist, t->f.duration_s, t->f.tempo_bpm, t->f.key, t->f.mode,
        t->f.energy, t->f.loudness_lufs, moods, genres, t->popularity, hex);
    return w > 0 && (size_t)w < n ? w : -1;
}

/* What seed_line() makes lines of: the catalogue of @p tracks from @p seed. */
typedef struct seeding {
    uint64_t seed;
    long tracks;
} seeding;

/* The COPY line of track @p i of the synthetic catalogue. */
static int seed_line(void *arg, long i, char *out, size_t n) {
    const seeding *how = arg;
    cz_synth_track tr;
    cz_synth_track_make(how->seed, how->tracks, i, &tr);
    return copy_line(&tr, out, n);
}

static int fail(PGconn *c, const char *what) {
    fprintf(stderr, "cadenzactl: %s: %s", what, PQerrorMessage(c));
    PQfinish(c);
    return 1;
}

int cz_cli_catalog_seed(int argc, char **argv) {
    long tracks = 0, seed = 1;
    const char *t = NULL, *s = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--tracks") && i + 1 < argc)
            t = argv[++i];
        else if (!strcmp(argv[i], "--seed") && i + 1 < argc)
            s = argv[++i];
        else {
            fprintf(stderr, "cadenzactl: catalog seed takes --tracks N [--seed S], not %s\n",
                    argv[i]);
            return 2;
        }
    }
    if (parse_long(t, 1, MAX_TRACKS, &tracks)) {
        fprintf(stderr, "cadenzactl: --tracks must be a whole number from 1 to %ld\n", MAX_TRACKS);
        return 2;
    }
    if (s && parse_long(s, 0, 1L << 62, &seed)) {
        fprintf(stderr, "cadenzactl: --seed must be a whole number from 0\n");
        return 2;
    }
    cz_config cfg;
    cz_config_load(&cfg);
    cz_err err;
    PGconn *c = cz_db_connect(cfg.database_url, &err);
    if (!c) {
        fprintf(stderr, "cadenzactl: %s\n", err.msg);
        return 1;
    }
    seeding how = {(uint64_t)seed, tracks};
    long added = cz_db_playlist_tracks_seed(c, tracks, seed_line, &how);
    if (added < 0)
        return fail(c, "cannot seed");
    PQfinish(c);
    printf("seeded %ld synthetic tracks (seed %ld): %ld new, %ld there already\n", tracks, seed,
           added, tracks - added);
    return 0;
}
