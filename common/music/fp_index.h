/* An in-memory inverted index of catalogue fingerprints, queried the way
 * AcoustID matches: candidates by exact hits on the top bits of items, the
 * alignment by voting, the verdict by bit error rate.
 *
 * Each catalogue item's top CZ_FP_INDEX_KEY_BITS bits are a key; the index
 * maps each key to the (track, position) pairs where it occurs. A query
 * looks up each of its own items' keys and votes for (track, position -
 * query position): the same music, lined up, piles its votes on one
 * (track, offset). Only the few best-voted candidates are then scored over
 * their whole overlap with cz_fp_score(). A query's cost is its number of
 * items times the length of the posting lists it touches, not the size of
 * the catalogue; keys so common they say nothing (silence, a held chord in
 * every track) are skipped past CZ_FP_INDEX_MAX_POSTINGS, like stop words. */
#ifndef CZ_FP_INDEX_H
#define CZ_FP_INDEX_H

#include <stddef.h>
#include <stdint.h>

#include "common/err.h"

#define CZ_FP_INDEX_KEY_BITS 20
#define CZ_FP_INDEX_MAX_POSTINGS 50000 /* longer posting lists are not read */
#define CZ_FP_INDEX_CANDIDATES 8       /* best-voted alignments scored per query */
#define CZ_FP_INDEX_MIN_OVERLAP 16     /* items (~2 s) a score must rest on */

typedef struct cz_fp_index cz_fp_index;

/** The best catalogue match of a query. */
typedef struct cz_fp_match {
    int64_t track_id;
    double score;   /* 1 - bit error rate over the overlap */
    long offset;    /* catalogue item at which the query's first item lines up */
    size_t overlap; /* items compared */
    int votes;      /* key hits that agreed on this alignment */
} cz_fp_match;

/** @brief An empty index. @returns it; free it with cz_fp_index_free. */
cz_fp_index *cz_fp_index_new(void);

/** @brief Frees @p ix and every fingerprint in it; NULL-safe. */
void cz_fp_index_free(cz_fp_index *ix);

/**
 * @brief Adds catalogue track @p track_id with fingerprint @p v (@p n items,
 * copied). Not thread-safe against concurrent queries.
 * @returns 0, or -1 with @p err filled (no fingerprint, one too long, or
 * the index full).
 */
int cz_fp_index_add(cz_fp_index *ix, int64_t track_id, const uint32_t *v, size_t n, cz_err *err);

/** @brief Number of tracks in @p ix. */
size_t cz_fp_index_tracks(const cz_fp_index *ix);

/**
 * @brief Finds the catalogue track that best matches the query @p q (@p n
 * items).
 * @returns 1 with @p best filled, 0 when no candidate shares enough with
 * the query to be scored.
 */
int cz_fp_index_query(const cz_fp_index *ix, const uint32_t *q, size_t n, cz_fp_match *best);

/**
 * @brief Similarity of @p a and @p b when item i of @p b lines up with item
 * i + @p offset of @p a: the share of equal bits over the overlap (1.0 the
 * same, about 0.5 unrelated). @p overlap (may be NULL) gets the items compared.
 * @returns the score in [0, 1], or 0 when they do not overlap.
 */
double cz_fp_score(const uint32_t *a, size_t na, const uint32_t *b, size_t nb, long offset,
                   size_t *overlap);

#endif
