/* Shared melodies: the longest run of consecutive notes that a query
 * melody shares with any of a set of reference melodies, whatever the key
 * each is in. It is how neural@1's memorisation is measured (a generated
 * melody against every training piece) and how a melody is checked
 * against protected ones.
 *
 * A melody is a sequence of MIDI pitches (0..127; rhythm is not compared).
 * Transposition invariance comes from comparing the intervals between
 * consecutive notes instead of the pitches: a run of k shared notes, in any
 * transposition, is k - 1 shared intervals. Any single note is shared with
 * any non-empty reference, so a run is at least 1 note when both sides
 * have notes.
 *
 * The index is a generalized suffix automaton over the references'
 * interval sequences (Blumer et al.; each reference restarts from the
 * root): every substring of every reference is a path from the root, and
 * each state keeps one place where its strings end (the reference and the
 * interval), so a match can say where it is. Building is linear in the
 * total number of notes; a query walks its intervals once, following a
 * suffix link on a mismatch, so it costs its own length whatever the size
 * of the index (the classic longest common substring walk). Transitions
 * live in one open-addressing hash table keyed by (state, interval), with
 * each state's list kept beside it for the copies a clone needs.
 *
 * A melody being written can also be followed note by note (a walk), so
 * that a sampler can refuse the note that would make its run too long.
 *
 * An index is built by one thread, then may be queried by any number. */
#ifndef CZ_MELODY_H
#define CZ_MELODY_H

#include "common/err.h"

#define CZ_MELODY_PITCH_MAX 127

typedef struct cz_melody_index cz_melody_index;

/** The longest run a query shares with the index. */
typedef struct cz_melody_match {
    int notes;        /* its length in notes; 0 when the query or the index has none */
    int ref;          /* the reference's id (the order it was added in), -1 when notes is 0 */
    const char *name; /* the reference's name (a pointer into the index), NULL when notes is 0 */
    int ref_start;    /* the run's first note in the reference */
    int query_start;  /* the run's first note in the query */
} cz_melody_match;

/** @brief An empty index. @returns it, freed with cz_melody_index_free(); never NULL. */
cz_melody_index *cz_melody_index_new(void);

/** @brief Frees @p ix and everything it holds; NULL-safe. */
void cz_melody_index_free(cz_melody_index *ix);

/**
 * @brief Adds a reference melody: @p n MIDI pitches at @p pitches (an
 * empty one is allowed and never matches), named @p name (copied; NULL is
 * ""). The index keeps its intervals, not the pitches.
 * @returns the reference's id (0, 1, 2... in the order of adding); or -1
 * with @p err naming the first pitch outside 0..127 (nothing is added then).
 */
int cz_melody_index_add(cz_melody_index *ix, const char *name, const int *pitches, int n,
                        cz_err *err);

/** @brief The number of references added. @returns it. */
int cz_melody_index_count(const cz_melody_index *ix);

/** @brief The name of reference @p id. @returns a pointer into the index, or NULL out of range. */
const char *cz_melody_index_name(const cz_melody_index *ix, int id);

/**
 * @brief Finds the longest run of consecutive notes of the @p n pitches at
 * @p query that some reference also holds, transposed or not, and fills
 * @p out with its length, the reference and where it starts in both. Of
 * runs equally long, the one that ends first in the query is reported,
 * with one reference that holds it. Safe to call from several threads at
 * once on an index no longer being added to.
 * @returns the run's length in notes (as out->notes); or -1 with @p err
 * naming the first pitch outside 0..127.
 */
int cz_melody_index_longest(const cz_melody_index *ix, const int *query, int n,
                            cz_melody_match *out, cz_err *err);

/**
 * @brief Reads the reference melodies of a CZML file (format version 1,
 * docs/models/format.md) into a new index, after checking the whole file
 * against the sha256 in "<path>.sha256" (cz_sha256_sidecar_check()). Each
 * reference is named by its number, from 1.
 * @returns the index, freed with cz_melody_index_free(); or NULL with
 * @p err saying what is wrong (missing, corrupt, not CZML, truncated).
 */
cz_melody_index *cz_melody_index_load(const char *path, cz_err *err);

/**
 * Where a melody being written stands against an index: the longest run of
 * notes it ends with that some reference holds. Start one with
 * CZ_MELODY_WALK_START; it is plain data, so copying it forks the melody.
 */
typedef struct cz_melody_walk {
    int state; /* the automaton's state for the run's intervals */
    int len;   /* the run's length in intervals */
    int last;  /* the last pitch, -1 before the first note */
} cz_melody_walk;

#define CZ_MELODY_WALK_START ((cz_melody_walk){0, 0, -1})

/**
 * @brief Appends @p pitch (0..127; anything else counts as a note no
 * reference holds) to the melody at @p w.
 * @returns the length in notes of the shared run the melody now ends
 * with: 0 when the index holds no note, otherwise at least 1.
 */
int cz_melody_walk_push(const cz_melody_index *ix, cz_melody_walk *w, int pitch);

/** @brief What cz_melody_walk_push() would return, leaving @p w as it is. @returns it. */
int cz_melody_walk_peek(const cz_melody_index *ix, const cz_melody_walk *w, int pitch);

#endif
