/* SQL for the playlist tables (migrations/0012_playlists.sql): `tracks`, the
 * catalogue playlists are built from (synthetic seeds, catalogue tracks with
 * their features, and every succeeded job, by a trigger); `user_signals`, a
 * listener's plays, skips and likes; and `playlists`, each answer stored for
 * reading back. The API and the scheduler keep the tracks in memory
 * (common/playlist/track_index.h) and follow new rows by seq. */
#ifndef CZ_DB_PLAYLISTS_H
#define CZ_DB_PLAYLISTS_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "common/music/track.h"

/* ---- tracks ---------------------------------------------------------------- */

/**
 * @brief Up to @p limit tracks with a seq above @p after, in seq order.
 * Columns: seq, id, tenant_id ('' for every tenant's), title, artist,
 * duration_s, tempo_bpm, key, mode, energy, loudness_lufs, the number of
 * moods, moods then genres joined by ',', popularity, embedding (bytea).
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_playlist_tracks_after(PGconn *c, long long after, int limit, cz_err *err);

/**
 * @brief Writes COPY text line @p i (of the columns id, source, title,
 * artist, duration_s, tempo_bpm, key, mode, energy, loudness_lufs, moods,
 * genres, popularity, embedding; tab-separated, newline-terminated) into
 * @p out of @p cap bytes.
 * @returns its length, or -1 when it cannot be written.
 */
typedef int (*cz_db_track_line_fn)(void *arg, long i, char *out, size_t cap);

/**
 * @brief Adds @p n tracks, line 0 to @p n - 1 of @p line, in one
 * transaction: streamed with COPY into a temporary table, then inserted
 * into `tracks` with ON CONFLICT DO NOTHING, so rows already there stay.
 * @returns how many were new, or -1: PQerrorMessage(@p c) says why, and the
 * transaction is left open (the caller closes the connection).
 */
long cz_db_playlist_tracks_seed(PGconn *c, long n, cz_db_track_line_fn line, void *arg);

/**
 * @brief Whether catalogue track @p id has its playlist row in `tracks`
 * (id 'c' || @p id).
 * @returns 1 yes, 0 no, -1 with @p err filled.
 */
int cz_db_playlist_has_catalog_track(PGconn *c, int64_t id, cz_err *err);

/**
 * @brief Inserts catalogue track @p id's playlist row into `tracks` with the
 * features @p f (source 'catalog', every tenant's, the title and artist the
 * catalogue has, popularity 0); a row already there is kept.
 * @returns 1 inserted, 0 already there, -1 with @p err filled.
 */
int cz_db_playlist_add_catalog_track(PGconn *c, int64_t id, const cz_track_features *f,
                                     cz_err *err);

/* ---- user_signals ---------------------------------------------------------- */

/**
 * @brief Stores the signals in @p signals (a JSON array of objects with
 * track_id, kind and position_s) for @p user of @p tenant, all or nothing:
 * if a track is unknown or another tenant's, none is stored.
 * @returns 0 with *@p accepted the number stored, 1 with *@p bad the index
 * of the first unknown track, or -1 with @p err filled.
 */
int cz_db_playlist_add_signals(PGconn *c, const char *tenant, const char *user, const char *signals,
                               int *bad, int *accepted, cz_err *err);

/**
 * @brief The latest @p limit signals of @p user of @p tenant, newest first.
 * Columns: track_id, kind, position_s (-1 when none), age in seconds.
 * @returns the result (PQclear it), or NULL with @p err filled.
 */
PGresult *cz_db_playlist_signals(PGconn *c, const char *tenant, const char *user, int limit,
                                 cz_err *err);

/* ---- playlists ------------------------------------------------------------- */

/**
 * @brief Records playlist @p id of @p user for @p tenant: the canonical
 * @p request and the answer's @p body. Its commit does not wait for the
 * disk: the record is for reading back later, and losing the last few to a
 * crash costs nothing.
 * @returns 0, or -1 with @p err filled.
 */
int cz_db_playlist_store(PGconn *c, const char *id, const char *tenant, const char *user,
                         const char *request, const char *body, cz_err *err);

/**
 * @brief The body of playlist @p id if it belongs to @p tenant.
 * @returns JSON text (caller frees); NULL with an empty @p err when not found,
 * NULL with @p err filled on a database error.
 */
char *cz_db_playlist_get(PGconn *c, const char *tenant, const char *id, cz_err *err);

#endif
