/* Shared melodies: see melody.h.
 *
 * The suffix automaton's states are an array (state 0 is the root, the
 * empty string); a state's strings are the suffixes of its longest one
 * down to one longer than its suffix link's. Transitions are an array of
 * edges, each linked into its source state's list (a clone copies its
 * original's edges) and found through a hash table of edge indices keyed by
 * (state, interval). Everything is addressed by index, so the arrays may
 * grow while an extension holds a place in them.
 *
 * The extension is the online one for several strings: each reference
 * starts again from the root, and where the transition to add already
 * exists (the interval sequence so far is already in the automaton) it is
 * followed, or its target split, instead of making a state no string ends
 * in. A state made for position i of reference r records (r, i); a clone
 * copies the place of the state it was split from, whose strings end there
 * too, so every state knows one place where each of its strings occurs. */
#include "common/music/melody.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/hash.h"
#include "common/mem.h"
#include "common/rand.h"

typedef struct state {
    int len;   /* the longest string's length, in intervals */
    int link;  /* suffix link; -1 for the root */
    int ref;   /* one place where the state's strings end: the reference ... */
    int end;   /* ... and its interval */
    int edges; /* head of the list of edges out, -1 when none */
} state;

typedef struct edge {
    int from, sym, to;
    int next; /* the next edge of the same state, -1 at the end */
} edge;

struct cz_melody_index {
    state *st;
    int n_st, cap_st;
    edge *ed;
    int n_ed, cap_ed;
    int *table; /* edge index + 1 per slot, 0 when empty; a power of two long */
    size_t table_cap;
    char **names;
    int n_refs, cap_refs;
    int first_nonempty; /* the first reference with a note, -1 when none */
    int last;           /* the state of the reference being added so far */
};

/* ---------------------------------------------------------------- edges */

static size_t slot_of(int from, int sym, size_t cap) {
    uint64_t key = (uint64_t)(uint32_t)from << 32 | (uint32_t)sym;
    return (size_t)cz_splitmix64_mix(key) & (cap - 1);
}

/* The edge out of @p from on @p sym, or -1. */
static int edge_find(const cz_melody_index *ix, int from, int sym) {
    for (size_t i = slot_of(from, sym, ix->table_cap);; i = (i + 1) & (ix->table_cap - 1)) {
        int e = ix->table[i] - 1;
        if (e < 0)
            return -1;
        if (ix->ed[e].from == from && ix->ed[e].sym == sym)
            return e;
    }
}

static void table_put(int *table, size_t cap, const edge *ed, int e) {
    size_t i = slot_of(ed[e].from, ed[e].sym, cap);
    while (table[i])
        i = (i + 1) & (cap - 1);
    table[i] = e + 1;
}

/* Adds the edge @p from --@p sym--> @p to (there is none yet). The table
 * stays at most half full. */
static void edge_add(cz_melody_index *ix, int from, int sym, int to) {
    if (ix->n_ed == ix->cap_ed) {
        ix->cap_ed = ix->cap_ed ? ix->cap_ed * 2 : 64;
        ix->ed = cz_realloc(ix->ed, sizeof *ix->ed * (size_t)ix->cap_ed);
    }
    int e = ix->n_ed++;
    ix->ed[e] = (edge){from, sym, to, ix->st[from].edges};
    ix->st[from].edges = e;
    if ((size_t)ix->n_ed * 2 > ix->table_cap) {
        size_t cap = ix->table_cap * 2;
        int *t = cz_calloc(cap, sizeof *t);
        for (int i = 0; i < ix->n_ed - 1; i++)
            table_put(t, cap, ix->ed, i);
        free(ix->table);
        ix->table = t;
        ix->table_cap = cap;
    }
    table_put(ix->table, ix->table_cap, ix->ed, e);
}

/* ---------------------------------------------------------------- states */

static int state_new(cz_melody_index *ix, int len, int link, int ref, int end) {
    if (ix->n_st == ix->cap_st) {
        ix->cap_st = ix->cap_st ? ix->cap_st * 2 : 64;
        ix->st = cz_realloc(ix->st, sizeof *ix->st * (size_t)ix->cap_st);
    }
    ix->st[ix->n_st] = (state){len, link, ref, end, -1};
    return ix->n_st++;
}

/* A copy of @p q with length @p len: its link, its place and its edges. */
static int state_clone(cz_melody_index *ix, int q, int len) {
    int c = state_new(ix, len, ix->st[q].link, ix->st[q].ref, ix->st[q].end);
    for (int e = ix->st[q].edges; e >= 0; e = ix->ed[e].next)
        edge_add(ix, c, ix->ed[e].sym, ix->ed[e].to);
    return c;
}

/* Splits @p q, the target of @p p's edge on @p sym, so that a state of
 * length len(p) + 1 ends there: every edge on @p sym to q from p and its
 * suffixes moves to the clone. @returns the clone. */
static int split(cz_melody_index *ix, int p, int sym, int q) {
    int c = state_clone(ix, q, ix->st[p].len + 1);
    for (int e; p >= 0 && (e = edge_find(ix, p, sym)) >= 0 && ix->ed[e].to == q; p = ix->st[p].link)
        ix->ed[e].to = c;
    ix->st[q].link = c;
    return c;
}

/* Appends interval @p sym, interval @p end of reference @p ref. */
static void extend(cz_melody_index *ix, int sym, int ref, int end) {
    int last = ix->last, e = edge_find(ix, last, sym);
    if (e >= 0) { // already in the automaton: follow it, splitting when needed
        int q = ix->ed[e].to;
        ix->last = ix->st[last].len + 1 == ix->st[q].len ? q : split(ix, last, sym, q);
        return;
    }
    int cur = state_new(ix, ix->st[last].len + 1, 0, ref, end);
    int p = last;
    for (; p >= 0 && (e = edge_find(ix, p, sym)) < 0; p = ix->st[p].link)
        edge_add(ix, p, sym, cur);
    if (p >= 0) {
        int q = ix->ed[e].to;
        ix->st[cur].link = ix->st[p].len + 1 == ix->st[q].len ? q : split(ix, p, sym, q);
    }
    ix->last = cur;
}

/* ---------------------------------------------------------------- the index */

cz_melody_index *cz_melody_index_new(void) {
    cz_melody_index *ix = cz_calloc(1, sizeof *ix);
    ix->table_cap = 64;
    ix->table = cz_calloc(ix->table_cap, sizeof *ix->table);
    ix->first_nonempty = -1;
    state_new(ix, 0, -1, -1, -1);
    return ix;
}

void cz_melody_index_free(cz_melody_index *ix) {
    if (!ix)
        return;
    for (int i = 0; i < ix->n_refs; i++)
        free(ix->names[i]);
    free(ix->names);
    free(ix->st);
    free(ix->ed);
    free(ix->table);
    free(ix);
}

static int check_pitches(const int *pitches, int n, const char *what, cz_err *err) {
    for (int i = 0; i < n; i++)
        if (pitches[i] < 0 || pitches[i] > CZ_MELODY_PITCH_MAX)
            return cz_err_set(err, "%s note %d has pitch %d; MIDI pitches are 0..%d", what, i,
                              pitches[i], CZ_MELODY_PITCH_MAX);
    return 0;
}

int cz_melody_index_add(cz_melody_index *ix, const char *name, const int *pitches, int n,
                        cz_err *err) {
    if (n < 0)
        n = 0;
    if (check_pitches(pitches, n, "the reference's", err))
        return -1;
    if (ix->n_refs == ix->cap_refs) {
        ix->cap_refs = ix->cap_refs ? ix->cap_refs * 2 : 16;
        ix->names = cz_realloc(ix->names, sizeof *ix->names * (size_t)ix->cap_refs);
    }
    int id = ix->n_refs++;
    ix->names[id] = cz_strdup(name ? name : "");
    if (n > 0 && ix->first_nonempty < 0)
        ix->first_nonempty = id;
    ix->last = 0;
    for (int i = 0; i + 1 < n; i++)
        extend(ix, pitches[i + 1] - pitches[i], id, i);
    return id;
}

int cz_melody_index_count(const cz_melody_index *ix) {
    return ix->n_refs;
}

const char *cz_melody_index_name(const cz_melody_index *ix, int id) {
    return id >= 0 && id < ix->n_refs ? ix->names[id] : NULL;
}

int cz_melody_index_longest(const cz_melody_index *ix, const int *query, int n,
                            cz_melody_match *out, cz_err *err) {
    *out = (cz_melody_match){0, -1, NULL, 0, 0};
    if (n < 0)
        n = 0;
    if (check_pitches(query, n, "the query's", err))
        return -1;
    if (n == 0 || ix->first_nonempty < 0)
        return 0;
    // A single note: shared with any reference that has one.
    *out = (cz_melody_match){1, ix->first_nonempty, ix->names[ix->first_nonempty], 0, 0};

    // The longest common substring walk: each note's run is the longest
    // suffix of the query's intervals so far that is in the automaton.
    cz_melody_walk w = CZ_MELODY_WALK_START;
    int best = 0, best_v = 0, best_i = 0;
    cz_melody_walk_push(ix, &w, query[0]);
    for (int i = 0; i + 1 < n; i++) {
        cz_melody_walk_push(ix, &w, query[i + 1]);
        if (w.len > best)
            best = w.len, best_v = w.state, best_i = i;
    }
    if (best > 0) {
        const state *s = &ix->st[best_v];
        *out = (cz_melody_match){best + 1, s->ref, ix->names[s->ref], s->end - best + 1,
                                 best_i - best + 1};
    }
    return out->notes;
}

/* ---------------------------------------------------------------- files */

#define CZML_VERSION 1
#define CZML_HEADER 16 /* "CZML", version, references, notes: little-endian u32s */

static uint32_t le32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Adds the references of the CZML file's @p len bytes at @p p to @p ix. */
static int czml_read(cz_melody_index *ix, const unsigned char *p, size_t len, cz_err *err) {
    if (len < CZML_HEADER || memcmp(p, "CZML", 4))
        return cz_err_set(err, "not a CZML file (no magic \"CZML\")");
    if (le32(p + 4) != CZML_VERSION)
        return cz_err_set(err, "CZML format version %u, this build reads version %d", le32(p + 4),
                          CZML_VERSION);
    uint32_t refs = le32(p + 8), notes = le32(p + 12);
    size_t at = CZML_HEADER, total = 0;
    for (uint32_t r = 0; r < refs; r++) {
        if (len - at < 4)
            return cz_err_set(err, "truncated at reference %u of %u", r + 1, refs);
        uint32_t n = le32(p + at);
        at += 4;
        if (len - at < n)
            return cz_err_set(err, "truncated in reference %u of %u", r + 1, refs);
        char name[16];
        snprintf(name, sizeof name, "%u", r + 1);
        int *pitches = cz_malloc(sizeof *pitches * (n ? n : 1));
        for (uint32_t i = 0; i < n; i++)
            pitches[i] = p[at + i];
        int id = cz_melody_index_add(ix, name, pitches, (int)n, err);
        free(pitches);
        if (id < 0)
            return -1;
        at += n, total += n;
    }
    if (at != len)
        return cz_err_set(err, "%zu bytes after the last reference", len - at);
    if (total != notes)
        return cz_err_set(err, "the header says %u notes, the references hold %zu", notes, total);
    return 0;
}

cz_melody_index *cz_melody_index_load(const char *path, cz_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cz_err_set(err, "melodies file %s: %s", path, strerror(errno));
        return NULL;
    }
    cz_buf data = {0};
    char chunk[65536];
    for (size_t got; (got = fread(chunk, 1, sizeof chunk, f)) > 0;)
        cz_buf_append(&data, chunk, got);
    bool failed = ferror(f);
    fclose(f);
    cz_melody_index *ix = NULL;
    char digest[CZ_SHA256_HEX];
    cz_err why;
    if (failed)
        cz_err_set(&why, "cannot read it");
    else if (cz_sha256_sidecar_check(path, data.data, data.len, digest, &why) == 0) {
        ix = cz_melody_index_new();
        if (czml_read(ix, (const unsigned char *)data.data, data.len, &why))
            cz_melody_index_free(ix), ix = NULL;
    }
    if (!ix)
        cz_err_set(err, "melodies file %s: %s", path, why.msg);
    cz_buf_free(&data);
    return ix;
}

/* ---------------------------------------------------------------- walks */

int cz_melody_walk_push(const cz_melody_index *ix, cz_melody_walk *w, int pitch) {
    bool in_range = pitch >= 0 && pitch <= CZ_MELODY_PITCH_MAX;
    if (w->last < 0 || !in_range) { // a first note, or one no reference holds
        *w = (cz_melody_walk){0, 0, in_range ? pitch : -1};
        return in_range && ix->first_nonempty >= 0;
    }
    int sym = pitch - w->last, v = w->state, l = w->len, e;
    w->last = pitch;
    while (v > 0 && edge_find(ix, v, sym) < 0) { // the longest suffix that goes on
        v = ix->st[v].link;
        l = ix->st[v].len;
    }
    if ((e = edge_find(ix, v, sym)) >= 0) {
        v = ix->ed[e].to;
        l++;
    } else {
        l = 0; // v is the root: no reference has this interval
    }
    w->state = v, w->len = l;
    return ix->first_nonempty >= 0 ? l + 1 : 0;
}

int cz_melody_walk_peek(const cz_melody_index *ix, const cz_melody_walk *w, int pitch) {
    cz_melody_walk copy = *w;
    return cz_melody_walk_push(ix, &copy, pitch);
}
