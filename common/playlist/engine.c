/* Playlists: see playlist.h for the four steps and their rules.
 *
 * The weights below were set on the offline evaluation (make bench):
 * synthetic listeners with hidden tastes, scored on held-out likes beside
 * a popularity-only baseline. They are plain constants on purpose: each
 * term is one line of the score, readable next to the reason it gives. */
#include "common/playlist/engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

/* ---- contexts -------------------------------------------------------------
 *
 * An activity shapes the energy arc (start, peak at a fraction of the way,
 * end) and bounds the tempo; a mood sets a level, a tag and perhaps a mode.
 * With both, the arc is mostly the activity's, lifted or lowered towards
 * the mood. */

typedef struct context {
    const char *name;
    float start, peak, end, peak_at; /* energy arc */
    float tempo_lo, tempo_hi;        /* 0, 0: any */
    const char *tag;                 /* the tag whose tracks centre retrieval */
    int mode;                        /* -1 any, 0 minor, 1 major */
} context;

static const context activities[] = {
    {"workout", 0.55f, 0.95f, 0.65f, 0.6f, 110, 180, "energetic", -1},
    {"running", 0.75f, 0.90f, 0.80f, 0.5f, 140, 190, "energetic", -1},
    {"focus", 0.35f, 0.40f, 0.35f, 0.5f, 70, 130, "calm", -1},
    {"relax", 0.35f, 0.30f, 0.20f, 0.3f, 60, 110, "calm", -1},
    {"party", 0.70f, 0.95f, 0.85f, 0.7f, 100, 135, "happy", -1},
    {"sleep", 0.25f, 0.15f, 0.05f, 0.5f, 50, 95, "calm", -1},
    {"commute", 0.55f, 0.60f, 0.55f, 0.5f, 80, 140, NULL, -1},
};

static const context moods[] = {
    {"happy", 0.65f, 0.65f, 0.65f, 0.5f, 0, 0, "happy", 1},
    {"melancholic", 0.30f, 0.30f, 0.30f, 0.5f, 0, 0, "melancholic", 0},
    {"calm", 0.25f, 0.25f, 0.25f, 0.5f, 0, 0, "calm", -1},
    {"energetic", 0.85f, 0.85f, 0.85f, 0.5f, 0, 0, "energetic", -1},
    {"dark", 0.50f, 0.50f, 0.50f, 0.5f, 0, 0, "dark", 0},
};

const char *const cz_playlist_moods[] = {"happy", "melancholic", "calm", "energetic", "dark", NULL};
const char *const cz_playlist_activities[] = {"workout", "running", "focus",   "relax",
                                              "party",   "sleep",   "commute", NULL};

bool cz_playlist_known(const char *const *names, const char *name) {
    for (; name && *names; names++)
        if (!strcmp(*names, name))
            return true;
    return false;
}

static const context *find(const context *list, size_t n, const char *name) {
    for (size_t i = 0; name && i < n; i++)
        if (!strcmp(list[i].name, name))
            return &list[i];
    return NULL;
}

#define ACTIVITY(name) find(activities, sizeof activities / sizeof *activities, name)
#define MOOD(name) find(moods, sizeof moods / sizeof *moods, name)

float cz_playlist_arc(const char *activity, const char *mood, int i, int n) {
    const context *a = ACTIVITY(activity), *m = MOOD(mood);
    if (!a)
        return m ? m->start : 0.5f;
    float x = n > 1 ? (float)i / (float)(n - 1) : 0.0f, e;
    if (x <= a->peak_at)
        e = a->start + (a->peak - a->start) * (a->peak_at > 0 ? x / a->peak_at : 1.0f);
    else
        e = a->peak + (a->end - a->peak) * (x - a->peak_at) / (1.0f - a->peak_at);
    return m ? 0.75f * e + 0.25f * m->start : e;
}

void cz_playlist_tempo_range(const char *activity, float *lo, float *hi) {
    const context *a = ACTIVITY(activity);
    *lo = a ? a->tempo_lo : 0;
    *hi = a ? a->tempo_hi : 0;
}

/* ---- taste --------------------------------------------------------------- */

int cz_signal_kind_of(const char *name) {
    static const char *const names[] = {"play", "complete", "skip", "like", "dislike"};
    for (int i = 0; i < 5; i++)
        if (!strcmp(names[i], name))
            return i;
    return -1;
}

static float signal_weight(const cz_signal *s) {
    static const float kind[] = {0.1f, 0.5f, -0.2f, 1.0f, -1.0f};
    float w = kind[s->kind];
    if (s->kind == CZ_SIGNAL_SKIP && s->position_s >= 0 && s->position_s < 30)
        w = -0.6f; /* skipped early: did not like what it heard */
    w *= (float)pow(0.5, s->age_s / (30.0 * 86400.0));
    if (s->age_s < 1800)
        w *= 3.0f; /* the session: what they are in the mood for now */
    return w;
}

typedef struct scored {
    uint32_t track;
    float score;
} scored;

static int by_track(const void *a, const void *b) {
    uint32_t x = ((const scored *)a)->track, y = ((const scored *)b)->track;
    return (x > y) - (x < y);
}

static int by_score_desc(const void *a, const void *b) {
    float x = ((const scored *)a)->score, y = ((const scored *)b)->score;
    if (x != y)
        return x < y ? 1 : -1;
    return by_track(a, b); /* ties: the same order every time */
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static bool contains(const uint32_t *sorted, int n, uint32_t v) {
    return n > 0 && bsearch(&v, sorted, (size_t)n, sizeof v, cmp_u32);
}

void cz_taste_free(cz_taste *t) {
    free(t->known);
    free(t->banned);
    free(t->banned_artists);
    memset(t, 0, sizeof *t);
}

void cz_taste_build(const cz_track_index *ix, const cz_signal *s, int n, cz_taste *out) {
    memset(out, 0, sizeof *out);
    scored *per = cz_malloc((size_t)(n > 0 ? n : 1) * sizeof *per);
    uint32_t *disliked = cz_malloc((size_t)(n > 0 ? n : 1) * sizeof *disliked);
    out->known = cz_malloc((size_t)(n > 0 ? n : 1) * sizeof *out->known);
    out->banned = cz_malloc((size_t)(n > 0 ? n : 1) * sizeof *out->banned);
    out->banned_artists = cz_malloc((size_t)(n > 0 ? n : 1) * sizeof *out->banned_artists);
    double sum[CZ_EMBED_DIM] = {0};
    for (int i = 0; i < n; i++) {
        float w = signal_weight(&s[i]);
        const int8_t *e = ix->emb + (size_t)s[i].track * CZ_EMBED_DIM;
        for (int d = 0; d < CZ_EMBED_DIM; d++)
            sum[d] += w * e[d] / 127.0;
        per[i] = (scored){s[i].track, w};
    }
    /* One entry per track: its summed weight; dislikes ban it. */
    qsort(per, (size_t)n, sizeof *per, by_track);
    int tracks = 0;
    for (int i = 0; i < n; i++) {
        if (tracks && per[tracks - 1].track == per[i].track)
            per[tracks - 1].score += per[i].score;
        else
            per[tracks++] = per[i];
    }
    for (int i = 0; i < n; i++)
        if (s[i].kind == CZ_SIGNAL_DISLIKE)
            out->banned[out->n_banned++] = s[i].track;
    qsort(out->banned, (size_t)out->n_banned, sizeof *out->banned, cmp_u32);
    int nb = 0; /* distinct */
    for (int i = 0; i < out->n_banned; i++)
        if (!nb || out->banned[nb - 1] != out->banned[i])
            out->banned[nb++] = out->banned[i];
    out->n_banned = nb;
    for (int i = 0; i < nb; i++)
        disliked[i] = ix->artist[out->banned[i]];
    qsort(disliked, (size_t)nb, sizeof *disliked, cmp_u32);
    for (int i = 1; i < nb; i++)
        if (disliked[i] == disliked[i - 1] &&
            (!out->n_banned_artists ||
             out->banned_artists[out->n_banned_artists - 1] != disliked[i]))
            out->banned_artists[out->n_banned_artists++] = disliked[i];
    for (int i = 0; i < tracks; i++)
        out->known[out->n_known++] = per[i].track; /* sorted already */
    qsort(per, (size_t)tracks, sizeof *per, by_score_desc);
    for (int i = 0; i < tracks && out->n_liked < CZ_TASTE_LIKED && per[i].score > 0; i++)
        out->liked[out->n_liked++] = per[i].track;
    double len = 0;
    for (int d = 0; d < CZ_EMBED_DIM; d++)
        len += sum[d] * sum[d];
    len = sqrt(len);
    out->strength = (float)len;
    for (int d = 0; len > 0 && d < CZ_EMBED_DIM; d++)
        out->vec[d] = (float)(sum[d] / len);
    free(per);
    free(disliked);
}

/* ---- retrieval ----------------------------------------------------------- */

/* A min-heap of the best @p cap scores seen. */
typedef struct heap {
    scored *a;
    int n, cap;
} heap;

static void heap_push(heap *h, uint32_t track, float score) {
    if (h->n == h->cap) {
        if (score <= h->a[0].score)
            return;
        h->a[0] = (scored){track, score}; /* replace the least, sift down */
        for (int i = 0;;) {
            int l = 2 * i + 1, r = l + 1, m = i;
            if (l < h->n && h->a[l].score < h->a[m].score)
                m = l;
            if (r < h->n && h->a[r].score < h->a[m].score)
                m = r;
            if (m == i)
                break;
            scored t = h->a[i];
            h->a[i] = h->a[m], h->a[m] = t, i = m;
        }
        return;
    }
    int i = h->n++;
    h->a[i] = (scored){track, score};
    while (i > 0 && h->a[(i - 1) / 2].score > h->a[i].score) {
        scored t = h->a[i];
        h->a[i] = h->a[(i - 1) / 2], h->a[(i - 1) / 2] = t, i = (i - 1) / 2;
    }
}

static int32_t dot8(const int8_t *x, const int8_t *y) {
    int32_t s = 0;
    for (int d = 0; d < CZ_EMBED_DIM; d++)
        s += x[d] * y[d];
    return s;
}

/* The query: taste, seeds and the context's centre, each a unit vector
 * with its weight. @returns false when there is nothing to aim at. */
static bool query_vector(const cz_track_index *ix, const cz_playlist_request *rq,
                         const cz_taste *taste, int tag, int8_t q[CZ_EMBED_DIM]) {
    float v[CZ_EMBED_DIM] = {0};
    bool any = false;
    if (taste && taste->strength > 0) {
        for (int d = 0; d < CZ_EMBED_DIM; d++)
            v[d] += 1.0f * taste->vec[d];
        any = true;
    }
    for (int i = 0; i < rq->n_seeds; i++) {
        const int8_t *e = ix->emb + (size_t)rq->seeds[i] * CZ_EMBED_DIM;
        for (int d = 0; d < CZ_EMBED_DIM; d++)
            v[d] += 1.5f * e[d] / 127.0f / (float)rq->n_seeds;
        any = true;
    }
    if (tag >= 0 && ix->tag_count[tag]) {
        float len = 0;
        for (int d = 0; d < CZ_EMBED_DIM; d++)
            len += ix->tag_sum[tag][d] * ix->tag_sum[tag][d];
        len = sqrtf(len);
        for (int d = 0; len > 0 && d < CZ_EMBED_DIM; d++)
            v[d] += 0.7f * ix->tag_sum[tag][d] / len;
        any = any || len > 0;
    }
    float len = 0;
    for (int d = 0; d < CZ_EMBED_DIM; d++)
        len += v[d] * v[d];
    len = sqrtf(len);
    for (int d = 0; d < CZ_EMBED_DIM; d++)
        q[d] = (int8_t)(len > 0 ? lrintf(v[d] / len * 127.0f) : 0);
    return any && len > 0;
}

typedef struct build {
    const cz_track_index *ix;
    const cz_playlist_request *rq;
    const cz_taste *taste;
    const context *activity, *mood;
    uint32_t tenant;
    uint32_t *exclude; /* sorted */
    int tag;           /* the context's tag (the mood's, else the activity's), or -1 */
    int8_t q[CZ_EMBED_DIM];
    bool aimed; /* q means something */
} build;

static bool may_hear(const build *b, uint32_t i) {
    if (contains(b->exclude, b->rq->n_exclude, i))
        return false;
    if (b->taste &&
        (contains(b->taste->banned, b->taste->n_banned, i) ||
         contains(b->taste->banned_artists, b->taste->n_banned_artists, b->ix->artist[i])))
        return false;
    return true;
}

/* How far outside its arc's range an activity's tracks may be in energy,
 * and how far from its level a mood's. */
#define ENERGY_SLACK 0.2f
#define MOOD_SLACK 0.3f

/* One pass over the catalogue: the @p h->cap tracks nearest the query
 * (or the most popular, with no query or for the baseline). */
static void retrieve(const build *b, heap *h) {
    const cz_track_index *ix = b->ix;
    float lo, hi;
    cz_playlist_tempo_range(b->rq->activity, &lo, &hi);
    bool by_popularity = !b->aimed || b->rq->popularity_only;
    /* An activity bounds the energy too, or a taste far from it (hip-hop
     * for sleep) fills the pool with tracks the arc cannot use. */
    float e_lo = 0, e_hi = 1;
    if (b->activity) {
        const context *a = b->activity;
        e_lo = fminf(a->start, fminf(a->peak, a->end)) - ENERGY_SLACK;
        e_hi = fmaxf(a->start, fmaxf(a->peak, a->end)) + ENERGY_SLACK;
    }
    if (b->mood) { /* an explicit mood overrides the taste: its level, give or take */
        float lo_m = fmaxf(e_lo, b->mood->start - MOOD_SLACK);
        float hi_m = fminf(e_hi, b->mood->start + MOOD_SLACK);
        if (lo_m <= hi_m) /* else a mood at odds with the activity: the activity decides */
            e_lo = lo_m, e_hi = hi_m;
    }
    for (uint32_t i = 0; i < ix->n; i++) {
        if (ix->tenant[i] && ix->tenant[i] != b->tenant)
            continue;
        if (hi > 0 && (ix->tempo[i] < lo || ix->tempo[i] > hi))
            continue;
        if (ix->energy[i] < e_lo || ix->energy[i] > e_hi)
            continue;
        float s = by_popularity ? ix->popularity[i]
                                : (float)dot8(b->q, ix->emb + (size_t)i * CZ_EMBED_DIM) / 16129.0f;
        if ((h->n < h->cap || s > h->a[0].score) && may_hear(b, i))
            heap_push(h, i, s);
    }
}

/* ---- re-ranking ---------------------------------------------------------- */

static float taste_similarity(const build *b, uint32_t i) {
    if (!b->taste || b->taste->strength <= 0)
        return 0;
    const int8_t *e = b->ix->emb + (size_t)i * CZ_EMBED_DIM;
    float s = 0;
    for (int d = 0; d < CZ_EMBED_DIM; d++)
        s += b->taste->vec[d] * e[d] / 127.0f;
    return s;
}

static float context_fit(const build *b, uint32_t i) {
    const context *c = b->mood ? b->mood : b->activity;
    if (!c)
        return 0;
    float fit = 0;
    if (b->tag >= 0 && (b->ix->tags[i] & (1ull << b->tag)))
        fit += 0.15f;
    if (c->mode >= 0 && b->ix->mode[i] == c->mode)
        fit += 0.05f;
    return fit;
}

static void rerank(const build *b, scored *c, int n) {
    const cz_track_index *ix = b->ix;
    float nov = (float)b->rq->novelty;
    for (int k = 0; k < n; k++) {
        uint32_t i = c[k].track;
        float pop = ix->popularity[i];
        if (b->rq->popularity_only) {
            c[k].score = pop + context_fit(b, i);
            continue;
        }
        bool known = b->taste && contains(b->taste->known, b->taste->n_known, i);
        c[k].score = (b->aimed ? c[k].score : 0) + 0.5f * taste_similarity(b, i) +
                     context_fit(b, i) + 0.3f * (1.0f - 2.0f * nov) * pop +
                     (known ? 0.1f - 0.6f * nov : 0.0f);
    }
    qsort(c, (size_t)n, sizeof *c, by_score_desc);
}

/* ---- sequencing ---------------------------------------------------------- */

static bool fits_after(const build *b, const cz_playlist *p, uint32_t i) {
    const cz_track_index *ix = b->ix;
    if (p->n == 0)
        return true;
    uint32_t prev = p->items[p->n - 1].track;
    if (fabsf(ix->tempo[i] - ix->tempo[prev]) > CZ_PLAYLIST_TEMPO_STEP * ix->tempo[prev])
        return false;
    if (cz_camelot_distance(ix->key[prev], ix->mode[prev], ix->key[i], ix->mode[i]) >
        CZ_PLAYLIST_KEY_STEP)
        return false;
    for (int k = p->n - 1; k >= 0 && k > p->n - CZ_PLAYLIST_WINDOW; k--) {
        uint32_t j = p->items[k].track;
        if (ix->artist[j] == ix->artist[i] ||
            cz_track_index_similarity(ix, i, j) >= CZ_PLAYLIST_NEAR_DUP)
            return false;
    }
    return true;
}

/* The best unused candidate in c[0..n) for position @p at of @p total. */
static int pick(const build *b, const cz_playlist *p, const scored *c, int n, const bool *used,
                int at, int total) {
    const cz_track_index *ix = b->ix;
    float target = cz_playlist_arc(b->rq->activity, b->rq->mood, at, total);
    int best = -1;
    float best_v = -INFINITY;
    for (int k = 0; k < n; k++) {
        uint32_t i = c[k].track;
        if (used[k] || !fits_after(b, p, i))
            continue;
        /* Without a mood or activity there is no arc to follow: its flat
         * 0.5 would pull every listener towards mid-energy tracks. */
        float v = c[k].score;
        if (b->activity || b->mood)
            v -= 2.0f * fabsf(ix->energy[i] - target);
        if (p->n) {
            uint32_t prev = p->items[p->n - 1].track;
            v -= 0.5f * fabsf(ix->tempo[i] - ix->tempo[prev]) / ix->tempo[prev];
            v -= 0.05f *
                 (float)cz_camelot_distance(ix->key[prev], ix->mode[prev], ix->key[i], ix->mode[i]);
        }
        if (v > best_v)
            best_v = v, best = k;
    }
    return best;
}

/* ---- reasons ------------------------------------------------------------- */

static void explain(const build *b, const cz_playlist *p, uint32_t i, int at, int total, char *out,
                    size_t n) {
    const cz_track_index *ix = b->ix;
    const cz_playlist_request *rq = b->rq;
    float seed_sim = -2, liked_sim = -2;
    uint32_t seed = 0, liked = 0;
    for (int k = 0; !rq->popularity_only && k < rq->n_seeds; k++) {
        float s = cz_track_index_similarity(ix, i, rq->seeds[k]);
        if (s > seed_sim)
            seed_sim = s, seed = rq->seeds[k];
    }
    for (int k = 0; !rq->popularity_only && b->taste && k < b->taste->n_liked; k++) {
        float s = cz_track_index_similarity(ix, i, b->taste->liked[k]);
        if (s > liked_sim)
            liked_sim = s, liked = b->taste->liked[k];
    }
    bool known = b->taste && contains(b->taste->known, b->taste->n_known, i);
    int w;
    if (seed_sim >= 0.6f && seed_sim >= liked_sim)
        w = snprintf(out, n, "Sounds like \"%.50s\" by %.40s", cz_track_index_title(ix, seed),
                     cz_track_index_artist(ix, seed));
    else if (liked_sim >= 0.6f)
        w = snprintf(out, n, "Because you liked \"%.50s\" by %.40s",
                     cz_track_index_title(ix, liked), cz_track_index_artist(ix, liked));
    else if (!rq->popularity_only && b->taste && b->taste->strength > 0 &&
             taste_similarity(b, i) >= 0.3f)
        w = snprintf(out, n, "Close to your taste (similarity %.2f to what you play)",
                     taste_similarity(b, i));
    else if (rq->novelty >= 0.5 && !known)
        w = snprintf(out, n, "Something new for you%s",
                     ix->popularity[i] < 0.2f ? ", a less-played find" : "");
    else if (rq->activity)
        w = snprintf(out, n, "Fits your %s at energy %.2f (aiming for %.2f here)", rq->activity,
                     ix->energy[i], cz_playlist_arc(rq->activity, rq->mood, at, total));
    else if (rq->mood)
        w = snprintf(out, n, "Matches the %s mood (energy %.2f)", rq->mood, ix->energy[i]);
    else if (ix->popularity[i] >= 0.3f || rq->popularity_only)
        w = snprintf(out, n, "Popular with listeners (popularity %.2f)", ix->popularity[i]);
    else
        w = snprintf(out, n, "A good fit in sound for this list (similarity %.2f)",
                     b->aimed ? (float)dot8(b->q, ix->emb + (size_t)i * CZ_EMBED_DIM) / 16129.0f
                              : 0.0f);
    if (w < 0 || (size_t)w >= n)
        return;
    char key[4];
    cz_camelot_code(ix->key[i], ix->mode[i], key);
    if (p->n) {
        uint32_t prev = p->items[p->n - 1].track;
        char from[4];
        cz_camelot_code(ix->key[prev], ix->mode[prev], from);
        snprintf(out + w, n - (size_t)w, "; %.0f bpm in %s, %s from %s", ix->tempo[i], key,
                 strcmp(key, from) ? "a step" : "no key change", from);
    } else {
        snprintf(out + w, n - (size_t)w, "; opens at %.0f bpm in %s", ix->tempo[i], key);
    }
}

/* ---- the whole ----------------------------------------------------------- */

/* How many times a playlist may take a track back at a dead end. */
#define MAX_BACKTRACKS 100

void cz_playlist_free(cz_playlist *p) {
    free(p->items);
    memset(p, 0, sizeof *p);
}

void cz_playlist_build(const cz_track_index *ix, const cz_playlist_request *rq,
                       const cz_taste *taste, cz_playlist *out) {
    memset(out, 0, sizeof *out);
    build b = {.ix = ix,
               .rq = rq,
               .taste = taste,
               .activity = ACTIVITY(rq->activity),
               .mood = MOOD(rq->mood),
               .tenant = cz_track_index_tenant(ix, rq->tenant)};
    if (!b.tenant && rq->tenant)
        b.tenant = UINT32_MAX; /* a tenant with no tracks of its own */
    const context *ctx = b.mood ? b.mood : b.activity;
    b.tag = ctx && ctx->tag ? cz_track_index_tag(ix, ctx->tag) : -1;
    /* By minutes, the count is estimated for sizing, then tracks are added
     * until the time is reached. */
    int est = rq->length_tracks ? rq->length_tracks : (int)ceil(rq->length_minutes * 60.0 / 120.0);
    int limit = rq->length_tracks ? rq->length_tracks : CZ_PLAYLIST_MAX_TRACKS;
    if (est > CZ_PLAYLIST_MAX_TRACKS)
        est = CZ_PLAYLIST_MAX_TRACKS;
    if (limit > CZ_PLAYLIST_MAX_TRACKS)
        limit = CZ_PLAYLIST_MAX_TRACKS;
    int cap = est * 40 > 2000 ? est * 40 : 2000;
    heap h = {.a = cz_malloc((size_t)cap * sizeof *h.a), .cap = cap};
    b.exclude = cz_malloc(((size_t)rq->n_exclude + 1) * sizeof *b.exclude);
    out->items = cz_calloc((size_t)limit, sizeof *out->items);
    bool *used = cz_calloc((size_t)cap, sizeof *used);
    cz_playlist_entry *best = cz_malloc((size_t)limit * sizeof *best); /* before a backtrack */
    if (rq->n_exclude > 0) /* exclude may be NULL when there is none */
        memcpy(b.exclude, rq->exclude, (size_t)rq->n_exclude * sizeof *b.exclude);
    qsort(b.exclude, (size_t)rq->n_exclude, sizeof *b.exclude, cmp_u32);
    b.aimed = !rq->popularity_only && query_vector(ix, rq, taste, b.tag, b.q);

    retrieve(&b, &h);
    rerank(&b, h.a, h.n);
    /* Sequence from the best few hundred; widen to all when stuck. */
    int pool = h.n < 12 * est + 400 ? h.n : 12 * est + 400;
    double seconds = 0, best_s = 0;
    int backtracks = 0, best_n = 0;
    for (int at = 0; at < limit; at++) {
        if (rq->length_minutes > 0 && seconds >= rq->length_minutes * 60.0)
            break;
        int total = rq->length_tracks
                        ? limit
                        : (int)ceil(rq->length_minutes * 60.0 / (at ? seconds / at : 120.0));
        int k = pick(&b, out, h.a, pool, used, at, total);
        if (k < 0 && pool < h.n)
            k = pick(&b, out, h.a, pool = h.n, used, at, total);
        if (k < 0 && out->n > 1 && backtracks < MAX_BACKTRACKS) {
            /* A dead end: take the last track back (it stays used, so
             * another takes its place) and go on from there, keeping the
             * longest list so far in case that ends sooner. */
            if (out->n > best_n) {
                memcpy(best, out->items, (size_t)out->n * sizeof *best);
                best_n = out->n, best_s = seconds;
            }
            backtracks++;
            seconds -= ix->duration[out->items[--out->n].track];
            at = out->n - 1;
            continue;
        }
        if (k < 0 && best_n > out->n) {
            memcpy(out->items, best, (size_t)best_n * sizeof *best);
            out->n = best_n, seconds = best_s;
        }
        if (k < 0) {
            snprintf(out->note, sizeof out->note,
                     h.n ? "no track left could follow within the tempo, key and repeat rules"
                         : "no track fits the request");
            break;
        }
        used[k] = true;
        uint32_t i = h.a[k].track;
        explain(&b, out, i, at, total, out->items[out->n].reason, CZ_PLAYLIST_REASON);
        out->items[out->n++].track = i;
        seconds += ix->duration[i];
    }
    if (!out->note[0] && rq->length_minutes > 0 && seconds < rq->length_minutes * 60.0)
        snprintf(out->note, sizeof out->note, "%d tracks is the most a playlist holds",
                 CZ_PLAYLIST_MAX_TRACKS);
    out->duration_s = seconds;
    free(h.a), free(b.exclude), free(used), free(best);
}
