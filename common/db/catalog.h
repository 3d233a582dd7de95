/* SQL for the catalogue (catalog_tracks): importing fingerprinted tracks,
 * and loading them into a worker's fingerprint index. */
#ifndef CZ_DB_CATALOG_H
#define CZ_DB_CATALOG_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/err.h"
#include "common/music/fingerprint.h"
#include "common/music/fp_index.h"

typedef struct cz_catalog_track {
    const char *title;
    const char *artist; /* may be NULL */
    const char *source_name;
    const char *source_uri; /* file:// URI of the imported file, or NULL */
    const char *source_sha256;
    const cz_fp *fp;
} cz_catalog_track;

/**
 * @brief Inserts @p t unless a track with the same source_sha256 exists
 * (then only its source_uri is updated: the file may have moved).
 * @returns 0 with @p id set and @p created telling which, or -1 with @p err.
 */
int cz_db_catalog_import(PGconn *c, const cz_catalog_track *t, int64_t *id, bool *created,
                         cz_err *err);

/**
 * @brief Adds every catalogue track with an id above @p *last_id to @p ix,
 * in id order, and advances @p *last_id.
 * @returns the number of tracks added (>= 0), or -1 with @p err filled.
 */
long cz_db_catalog_load(PGconn *c, cz_fp_index *ix, int64_t *last_id, cz_err *err);

/**
 * @brief The title and artist of track @p id, copied into @p title / @p artist
 * ("" when absent).
 * @returns 1 found, 0 not found, -1 with @p err filled.
 */
int cz_db_catalog_describe(PGconn *c, int64_t id, char *title, size_t title_n, char *artist,
                           size_t artist_n, cz_err *err);

/**
 * @brief The file:// URI of track @p id's imported file, copied into @p uri,
 * and its title into @p title.
 * @returns 1 found, 0 no such track or its file is not known, -1 with @p err.
 */
int cz_db_catalog_source(PGconn *c, int64_t id, char *uri, size_t uri_n, char *title,
                         size_t title_n, cz_err *err);

#endif
