/* SQL for the playlist tables: see playlists.h.
 *
 * Every statement that reads or writes `tracks`, `user_signals` or
 * `playlists` is here, whichever process runs it: the CLI seeds tracks and
 * adds the catalogue's, the API stores signals and reads playlists back,
 * and the playlist service (common/playlist/) follows tracks, reads a
 * listener's signals and records each playlist it builds. */
#include "common/db/playlists.h"

#include <stdio.h>
#include <stdlib.h>

#include "common/db/db.h"

/* ---- tracks ---------------------------------------------------------------- */

PGresult *cz_db_playlist_tracks_after(PGconn *c, long long after, int limit, cz_err *err) {
    char from_s[24], batch[16];
    snprintf(from_s, sizeof from_s, "%lld", after);
    snprintf(batch, sizeof batch, "%d", limit);
    const char *p[] = {from_s, batch};
    return cz_db_query(
        c,
        "SELECT seq, id, coalesce(tenant_id, ''), title, artist, duration_s, tempo_bpm,"
        "       key, mode, energy, loudness_lufs, cardinality(moods),"
        "       array_to_string(moods || genres, ','), popularity, embedding"
        "  FROM tracks WHERE seq > $1 ORDER BY seq LIMIT $2",
        2, p, err);
}

long cz_db_playlist_tracks_seed(PGconn *c, long n, cz_db_track_line_fn line, void *arg) {
    PQclear(PQexec(c, "BEGIN"));
    PGresult *r = PQexec(c, "CREATE TEMP TABLE seed_tracks (LIKE tracks INCLUDING DEFAULTS)"
                            " ON COMMIT DROP");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return PQclear(r), -1;
    PQclear(r);
    r = PQexec(c, "COPY seed_tracks (id, source, title, artist, duration_s, tempo_bpm, key, mode,"
                  " energy, loudness_lufs, moods, genres, popularity, embedding) FROM STDIN");
    if (PQresultStatus(r) != PGRES_COPY_IN)
        return PQclear(r), -1;
    PQclear(r);
    char text[1024];
    for (long i = 0; i < n; i++) {
        int len = line(arg, i, text, sizeof text);
        if (len < 0 || PQputCopyData(c, text, len) != 1)
            return -1;
    }
    if (PQputCopyEnd(c, NULL) != 1)
        return -1;
    r = PQgetResult(c);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return PQclear(r), -1;
    PQclear(r);
    while ((r = PQgetResult(c)))
        PQclear(r);
    r = PQexec(c, "INSERT INTO tracks (id, source, title, artist, duration_s, tempo_bpm, key,"
                  " mode, energy, loudness_lufs, moods, genres, popularity, embedding)"
                  " SELECT id, source, title, artist, duration_s, tempo_bpm, key, mode, energy,"
                  "        loudness_lufs, moods, genres, popularity, embedding"
                  "   FROM seed_tracks ORDER BY id ON CONFLICT (id) DO NOTHING");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return PQclear(r), -1;
    long added = atol(PQcmdTuples(r));
    PQclear(r);
    r = PQexec(c, "COMMIT");
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        return PQclear(r), -1;
    PQclear(r);
    return added;
}

/* The playlist rows of catalogue tracks (id 'c' || catalog_tracks.id). */

int cz_db_playlist_has_catalog_track(PGconn *c, int64_t id, cz_err *err) {
    char tid[24];
    snprintf(tid, sizeof tid, "c%lld", (long long)id);
    const char *p[] = {tid};
    PGresult *r = cz_db_query(c, "SELECT 1 FROM tracks WHERE id = $1", 1, p, err);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    PQclear(r);
    return found;
}

/* A text[] literal of @p n tags (letters, digits, '-' and ' ' only, as the
 * analysis and the prompt vocabulary make them, but quoted all the same). */
static void tag_array(char out[CZ_TAGS_MAX * (CZ_TAG_LEN + 3) + 3], const char tags[][CZ_TAG_LEN],
                      int n) {
    size_t o = 0;
    out[o++] = '{';
    for (int i = 0; i < n; i++) {
        if (i)
            out[o++] = ',';
        out[o++] = '"';
        for (const char *t = tags[i]; *t; t++)
            if (*t != '"' && *t != '\\')
                out[o++] = *t;
        out[o++] = '"';
    }
    out[o++] = '}';
    out[o] = '\0';
}

int cz_db_playlist_add_catalog_track(PGconn *c, int64_t id, const cz_track_features *f,
                                     cz_err *err) {
    char cid[24], tid[24], dur[32], bpm[32], key[8], mode[8], energy[32], lufs[32];
    char moods[CZ_TAGS_MAX * (CZ_TAG_LEN + 3) + 3], genres[sizeof moods];
    unsigned char emb[4 * CZ_EMBED_DIM];
    snprintf(cid, sizeof cid, "%lld", (long long)id);
    snprintf(tid, sizeof tid, "c%lld", (long long)id);
    snprintf(dur, sizeof dur, "%.3f", f->duration_s);
    snprintf(bpm, sizeof bpm, "%.3f", f->tempo_bpm);
    snprintf(key, sizeof key, "%d", f->key);
    snprintf(mode, sizeof mode, "%d", f->mode);
    snprintf(energy, sizeof energy, "%.4f", f->energy);
    snprintf(lufs, sizeof lufs, "%.3f", f->loudness_lufs);
    tag_array(moods, f->moods, f->n_moods);
    tag_array(genres, f->genres, f->n_genres);
    cz_track_embedding_bytes(f, emb);
    const char *p[] = {
        cid, tid, dur, bpm, key, mode, energy, lufs, moods, genres, (const char *)emb};
    int lengths[11] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, (int)sizeof emb};
    int formats[11] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
    PGresult *r = PQexecParams(
        c,
        "INSERT INTO tracks (id, source, tenant_id, title, artist, duration_s, tempo_bpm, key,"
        "                    mode, energy, loudness_lufs, moods, genres, popularity, embedding)"
        " SELECT $2, 'catalog', NULL, t.title, COALESCE(t.artist, ''), $3::real, $4::real,"
        "        $5::smallint, $6::smallint, $7::real, $8::real, $9::text[], $10::text[], 0,"
        "        $11::bytea"
        "   FROM catalog_tracks t WHERE t.id = $1::bigint"
        " ON CONFLICT (id) DO NOTHING",
        11, NULL, p, lengths, formats, 0);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        cz_err_set(err, "cannot store the features of catalogue track %s: %s", cid,
                   PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    int n = atoi(PQcmdTuples(r));
    PQclear(r);
    return n > 0;
}

/* ---- user_signals ---------------------------------------------------------- */

int cz_db_playlist_add_signals(PGconn *c, const char *tenant, const char *user, const char *signals,
                               int *bad, int *accepted, cz_err *err) {
    const char *p[] = {tenant, user, signals};
    PGresult *q = cz_db_query(
        c,
        "WITH s AS (SELECT e->>'track_id' AS track_id, e->>'kind' AS kind,"
        "                  (e->>'position_s')::real AS position_s, i"
        "             FROM jsonb_array_elements($3::jsonb) WITH ORDINALITY a(e, i)),"
        "     bad AS (SELECT min(i) AS i FROM s WHERE NOT EXISTS (SELECT 1 FROM tracks t"
        "              WHERE t.id = s.track_id AND (t.tenant_id IS NULL OR t.tenant_id = $1))),"
        "     ins AS (INSERT INTO user_signals (tenant_id, user_id, track_id, kind, position_s)"
        "             SELECT $1, $2, track_id, kind, position_s FROM s"
        "              WHERE (SELECT i FROM bad) IS NULL ORDER BY i RETURNING 1)"
        " SELECT (SELECT i - 1 FROM bad), (SELECT count(*) FROM ins)",
        3, p, err);
    if (!q)
        return -1;
    int unknown = !PQgetisnull(q, 0, 0);
    *bad = atoi(PQgetvalue(q, 0, 0));
    *accepted = atoi(PQgetvalue(q, 0, 1));
    PQclear(q);
    return unknown;
}

PGresult *cz_db_playlist_signals(PGconn *c, const char *tenant, const char *user, int limit,
                                 cz_err *err) {
    char lim[16];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *params[] = {tenant, user, lim};
    return cz_db_query(c,
                       "SELECT track_id, kind, coalesce(position_s, -1),"
                       "       extract(epoch FROM now() - at)"
                       "  FROM user_signals WHERE tenant_id = $1 AND user_id = $2"
                       " ORDER BY id DESC LIMIT $3",
                       3, params, err);
}

/* ---- playlists ------------------------------------------------------------- */

int cz_db_playlist_store(PGconn *c, const char *id, const char *tenant, const char *user,
                         const char *request, const char *body, cz_err *err) {
    /* The record is for reading back later; losing the last few to a crash
     * costs nothing, so its commit does not wait for the disk. Any failure
     * after BEGIN rolls back, so the pooled connection goes back idle. */
    if (cz_db_begin(c, err))
        return -1;
    const char *p[] = {id, tenant, user, request, body};
    if (cz_db_exec(c, "SET LOCAL synchronous_commit TO off", 0, NULL, err) < 0 ||
        cz_db_exec(c,
                   "INSERT INTO playlists (id, tenant_id, user_id, request, body)"
                   " VALUES ($1, $2, $3, $4, $5)",
                   5, p, err) < 0) {
        cz_db_rollback(c);
        return -1;
    }
    return cz_db_commit(c, err);
}

char *cz_db_playlist_get(PGconn *c, const char *tenant, const char *id, cz_err *err) {
    const char *p[] = {id, tenant};
    cz_err_clear(err);
    PGresult *q = cz_db_query(
        c, "SELECT body::text FROM playlists WHERE id = $1 AND tenant_id = $2", 2, p, err);
    return q ? cz_db_take_text(q) : NULL;
}
