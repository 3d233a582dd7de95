/* SQL for the catalogue: see db_catalog.h.
 *
 * Fingerprints travel as bytea in binary form (no hex text in between): on
 * import as a binary parameter, on load as a binary result, in batches of
 * CZ_CATALOG_BATCH rows so a large catalogue never sits in one result. */
#include "common/db/catalog.h"

#include <chromaprint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db/db.h"
#include "common/mem.h"

#define CZ_CATALOG_BATCH 1000

/* Items as little-endian bytes, whatever the host's order. */
static unsigned char *cz_catalog_pack(const cz_fp *fp) {
    unsigned char *b = cz_malloc(fp->n * 4 + 1);
    for (size_t i = 0; i < fp->n; i++) {
        uint32_t v = fp->v[i];
        b[4 * i] = (unsigned char)v;
        b[4 * i + 1] = (unsigned char)(v >> 8);
        b[4 * i + 2] = (unsigned char)(v >> 16);
        b[4 * i + 3] = (unsigned char)(v >> 24);
    }
    return b;
}

int cz_db_catalog_import(PGconn *c, const cz_catalog_track *t, int64_t *id, bool *created,
                         cz_err *err) {
    unsigned char *fp = cz_catalog_pack(t->fp);
    char duration[32], items[16], algo[16];
    snprintf(duration, sizeof duration, "%.3f", t->fp->duration_s);
    snprintf(items, sizeof items, "%zu", t->fp->n);
    snprintf(algo, sizeof algo, "%d", CHROMAPRINT_ALGORITHM_DEFAULT);
    const char *p[] = {t->title,         t->artist, duration, t->source_name, t->source_sha256,
                       (const char *)fp, items,     algo,     t->source_uri};
    int lengths[9] = {0, 0, 0, 0, 0, (int)(t->fp->n * 4), 0, 0, 0};
    int formats[9] = {0, 0, 0, 0, 0, 1, 0, 0, 0};
    // The update (the file's place, or nothing) makes RETURNING see an existing row too.
    PGresult *r = PQexecParams(
        c,
        "INSERT INTO catalog_tracks (title, artist, duration_s, source_name, source_sha256,"
        "                            fingerprint, fp_items, fp_algorithm, source_uri)"
        " VALUES ($1, $2, $3::float8, $4, $5, $6::bytea, $7::int, $8::int, $9)"
        " ON CONFLICT (source_sha256) DO UPDATE"
        "   SET source_uri = COALESCE(EXCLUDED.source_uri, catalog_tracks.source_uri)"
        " RETURNING id, (xmax = 0) AS created",
        9, NULL, p, lengths, formats, 0);
    free(fp);
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        cz_err_set(err, "catalogue insert failed: %s", PQerrorMessage(c));
        PQclear(r);
        return -1;
    }
    *id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    *created = PQgetvalue(r, 0, 1)[0] == 't';
    PQclear(r);
    return 0;
}

static uint32_t cz_catalog_le32(const unsigned char *b) {
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Adds one binary result row (id int8, fingerprint bytea) to @p ix. */
static int cz_catalog_add_row(PGresult *r, int row, cz_fp_index *ix, int64_t *id, cz_err *err) {
    const unsigned char *idb = (const unsigned char *)PQgetvalue(r, row, 0);
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | idb[i]; // int8 arrives big-endian
    *id = (int64_t)v;
    int len = PQgetlength(r, row, 1);
    const unsigned char *b = (const unsigned char *)PQgetvalue(r, row, 1);
    size_t n = (size_t)len / 4;
    uint32_t *items = cz_malloc((n ? n : 1) * sizeof *items);
    for (size_t i = 0; i < n; i++)
        items[i] = cz_catalog_le32(b + 4 * i);
    int rc = cz_fp_index_add(ix, *id, items, n, err);
    free(items);
    return rc;
}

long cz_db_catalog_load(PGconn *c, cz_fp_index *ix, int64_t *last_id, cz_err *err) {
    long added = 0;
    for (;;) {
        char after[24], batch[16];
        snprintf(after, sizeof after, "%lld", (long long)*last_id);
        snprintf(batch, sizeof batch, "%d", CZ_CATALOG_BATCH);
        const char *p[] = {after, batch};
        PGresult *r = PQexecParams(c,
                                   "SELECT id, fingerprint FROM catalog_tracks WHERE id > $1::int8"
                                   " ORDER BY id LIMIT $2::int",
                                   2, NULL, p, NULL, NULL, 1);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            cz_err_set(err, "loading the catalogue failed: %s", PQerrorMessage(c));
            PQclear(r);
            return -1;
        }
        int rows = PQntuples(r);
        for (int i = 0; i < rows; i++) {
            int64_t id;
            if (cz_catalog_add_row(r, i, ix, &id, err)) {
                PQclear(r);
                return -1;
            }
            *last_id = id;
            added++;
        }
        PQclear(r);
        if (rows < CZ_CATALOG_BATCH)
            return added;
    }
}

int cz_db_catalog_describe(PGconn *c, int64_t id, char *title, size_t title_n, char *artist,
                           size_t artist_n, cz_err *err) {
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    const char *p[] = {ids};
    PGresult *r = cz_db_query(
        c, "SELECT title, COALESCE(artist, '') FROM catalog_tracks WHERE id = $1::int8", 1, p, err);
    if (!r)
        return -1;
    int found = PQntuples(r) > 0;
    snprintf(title, title_n, "%s", found ? PQgetvalue(r, 0, 0) : "");
    snprintf(artist, artist_n, "%s", found ? PQgetvalue(r, 0, 1) : "");
    PQclear(r);
    return found;
}

int cz_db_catalog_source(PGconn *c, int64_t id, char *uri, size_t uri_n, char *title,
                         size_t title_n, cz_err *err) {
    char sid[24];
    snprintf(sid, sizeof sid, "%lld", (long long)id);
    const char *p[] = {sid};
    PGresult *r = cz_db_query(c,
                              "SELECT source_uri, title FROM catalog_tracks"
                              " WHERE id = $1::bigint AND source_uri IS NOT NULL",
                              1, p, err);
    if (!r)
        return -1;
    int found = PQntuples(r) == 1;
    if (found) {
        snprintf(uri, uri_n, "%s", PQgetvalue(r, 0, 0));
        snprintf(title, title_n, "%s", PQgetvalue(r, 0, 1));
    }
    PQclear(r);
    return found;
}
