/* The playlist service: see playlists.h.
 *
 * The follower thread holds its own connection and reads new `tracks` rows
 * every sync interval; requests only take the index's read lock, so a sync
 * delays them at most by the time it takes to add one batch. A listener's
 * signals are read before the lock is taken, and the answer is stored
 * after it is dropped. */
#include "common/playlist/service.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/db/db.h"
#include "common/db/playlists.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/playlist/engine.h"
#include "common/redis.h"

struct cz_playlists {
    cz_track_index *ix;
    char *url;
    int sync_ms;
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    bool stopping;
    atomic_bool ready;
};

/* ---- following the tracks table ------------------------------------------ */

static void *follow(void *arg) {
    cz_playlists *p = arg;
    PGconn *c = NULL;
    for (;;) {
        cz_err err;
        if (!c && !(c = cz_db_connect(p->url, &err)))
            cz_log_warn("playlists: %s", err.msg);
        if (c && cz_db_ensure(c) == 0) {
            long n = cz_track_index_sync(p->ix, c, &err);
            if (n < 0)
                cz_log_warn("playlists: reading tracks: %s", err.msg);
            else if (!atomic_exchange(&p->ready, true) || n > 0)
                cz_log_info("playlists: %ld added to the catalogue, %u tracks in all", n, p->ix->n);
            cz_metric_set(cz_metric_gauge("cadenza_playlist_catalogue_tracks",
                                          "Tracks in this process's playlist catalogue.", ""),
                          p->ix->n);
        }
        pthread_mutex_lock(&p->lock);
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += p->sync_ms / 1000;
        until.tv_nsec += (long)(p->sync_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L)
            until.tv_sec++, until.tv_nsec -= 1000000000L;
        while (!p->stopping && pthread_cond_timedwait(&p->wake, &p->lock, &until) == 0)
            ;
        bool stop = p->stopping;
        pthread_mutex_unlock(&p->lock);
        if (stop)
            break;
    }
    PQfinish(c);
    return NULL;
}

cz_playlists *cz_playlists_start(const char *database_url, int sync_ms, cz_err *err) {
    cz_playlists *p = cz_calloc(1, sizeof *p);
    p->ix = cz_track_index_new();
    p->url = cz_strdup(database_url);
    p->sync_ms = sync_ms > 0 ? sync_ms : 2000;
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->wake, NULL);
    if (pthread_create(&p->thread, NULL, follow, p)) {
        cz_track_index_free(p->ix);
        free(p->url);
        free(p);
        cz_err_set(err, "cannot start the catalogue follower");
        return NULL;
    }
    return p;
}

void cz_playlists_stop(cz_playlists *p) {
    if (!p)
        return;
    pthread_mutex_lock(&p->lock);
    p->stopping = true;
    pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->lock);
    pthread_join(p->thread, NULL);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->wake);
    cz_track_index_free(p->ix);
    free(p->url);
    free(p);
}

bool cz_playlists_ready(cz_playlists *p) {
    return atomic_load(&p->ready);
}

/* ---- answering ----------------------------------------------------------- */

typedef struct raw_signal {
    char track[64];
    int kind;
    float position_s;
    double age_s;
} raw_signal;

/* The listener's latest signals. @returns how many, or -1. */
static int read_signals(PGconn *c, const char *tenant, const char *user, raw_signal **out,
                        cz_err *err) {
    PGresult *r = cz_db_playlist_signals(c, tenant, user, CZ_PLAYLIST_SIGNALS, err);
    if (!r)
        return -1;
    int n = PQntuples(r);
    *out = cz_calloc((size_t)(n ? n : 1), sizeof **out);
    for (int i = 0; i < n; i++) {
        snprintf((*out)[i].track, sizeof(*out)[i].track, "%s", PQgetvalue(r, i, 0));
        (*out)[i].kind = cz_signal_kind_of(PQgetvalue(r, i, 1));
        (*out)[i].position_s = strtof(PQgetvalue(r, i, 2), NULL);
        (*out)[i].age_s = strtod(PQgetvalue(r, i, 3), NULL);
    }
    PQclear(r);
    return n;
}

/* Positions of the string ids in array @p a visible to @p tenant; with
 * @p strict, an unknown one stops it and names itself in @p field. */
static int positions(const cz_track_index *ix, const cJSON *a, uint32_t tenant, bool strict,
                     const char *name, uint32_t **out, char field[64]) {
    int n = cJSON_GetArraySize(a), k = 0, i = 0;
    *out = cz_calloc((size_t)(n ? n : 1), sizeof **out);
    for (const cJSON *e = a ? a->child : NULL; e; e = e->next, i++) {
        long pos = cJSON_IsString(e) ? cz_track_index_find(ix, e->valuestring) : -1;
        if (pos >= 0 && ix->tenant[pos] && ix->tenant[pos] != tenant)
            pos = -1; /* another tenant's: as if it did not exist */
        if (pos >= 0)
            (*out)[k++] = (uint32_t)pos;
        else if (strict) {
            snprintf(field, 64, "%s[%d]", name, i);
            return -2;
        }
    }
    return k;
}

static cJSON *track_json(const cz_track_index *ix, const cz_playlist_entry *e, int position) {
    uint32_t i = e->track;
    char key[4];
    cz_camelot_code(ix->key[i], ix->mode[i], key);
    cJSON *t = cJSON_CreateObject();
    cJSON_AddNumberToObject(t, "position", position);
    cJSON_AddStringToObject(t, "track_id", cz_track_index_id(ix, i));
    cJSON_AddStringToObject(t, "title", cz_track_index_title(ix, i));
    cJSON_AddStringToObject(t, "artist", cz_track_index_artist(ix, i));
    cJSON_AddNumberToObject(t, "duration_s", round(ix->duration[i] * 10) / 10);
    cJSON_AddNumberToObject(t, "tempo_bpm", round(ix->tempo[i] * 10) / 10);
    cJSON_AddStringToObject(t, "key", key);
    cJSON_AddNumberToObject(t, "energy", round(ix->energy[i] * 100) / 100);
    cJSON_AddStringToObject(t, "reason", e->reason);
    return t;
}

cz_pl_status cz_playlists_answer(cz_playlists *p, PGconn *c, const char *tenant,
                                 const cJSON *request, char **body, char field[64], cz_err *err) {
    *body = NULL;
    const char *user = cz_json_str(request, "user");
    char id[CZ_UUID_LEN], now[CZ_RFC3339_LEN];
    cz_uuid7(id);
    cz_now_rfc3339(now);
    raw_signal *raw = NULL;
    int nraw = user ? read_signals(c, tenant, user, &raw, err) : 0;
    if (nraw < 0)
        return CZ_PL_FAILED;

    cz_track_index *ix = p->ix;
    cz_track_index_read(ix);
    uint32_t tn = cz_track_index_tenant(ix, tenant);
    uint32_t *seeds = NULL, *exclude = NULL;
    cz_signal *sig = cz_calloc((size_t)(nraw ? nraw : 1), sizeof *sig);
    int nseeds = positions(ix, cJSON_GetObjectItem(request, "seed_tracks"), tn, true, "seed_tracks",
                           &seeds, field);
    int nexcl = positions(ix, cJSON_GetObjectItem(request, "exclude"), tn, false, "exclude",
                          &exclude, field);
    cz_pl_status st = CZ_PL_OK;
    cz_taste taste = {0};
    cz_playlist pl = {0};
    cJSON *out = NULL;
    if (nseeds == -2) {
        st = CZ_PL_UNKNOWN_TRACK;
        cz_err_set(err, "%s names no track this tenant has", field);
        goto done;
    }
    int n = 0;
    for (int i = 0; i < nraw; i++) {
        long pos = cz_track_index_find(ix, raw[i].track);
        if (pos >= 0 && raw[i].kind >= 0)
            sig[n++] = (cz_signal){(uint32_t)pos, raw[i].kind, raw[i].position_s, raw[i].age_s};
    }
    cz_taste_build(ix, sig, n, &taste);
    cz_playlist_request rq = {
        .tenant = tenant,
        .mood = cz_json_str(request, "mood"),
        .activity = cz_json_str(request, "activity"),
        .length_tracks = (int)cz_json_num(request, "length_tracks", 0),
        .length_minutes = cz_json_num(request, "length_minutes", 0),
        .novelty = cz_json_num(request, "novelty", 0.3),
        .seeds = seeds,
        .n_seeds = nseeds,
        .exclude = exclude,
        .n_exclude = nexcl,
    };
    cz_playlist_build(ix, &rq, &taste, &pl);
    out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "object", "playlist");
    cJSON_AddStringToObject(out, "id", id);
    cJSON_AddStringToObject(out, "created_at", now);
    cJSON_AddItemToObject(out, "request", cJSON_Duplicate(request, true));
    cJSON_AddNumberToObject(out, "length_tracks", pl.n);
    cJSON_AddNumberToObject(out, "duration_s", round(pl.duration_s * 10) / 10);
    if (pl.note[0])
        cJSON_AddStringToObject(out, "note", pl.note);
    cJSON *tracks = cJSON_AddArrayToObject(out, "tracks");
    for (int i = 0; i < pl.n; i++)
        cJSON_AddItemToArray(tracks, track_json(ix, &pl.items[i], i + 1));
done:
    cz_track_index_done(ix);
    free(raw), free(sig), free(seeds), free(exclude);
    cz_taste_free(&taste);
    cz_playlist_free(&pl);
    if (st != CZ_PL_OK) {
        cJSON_Delete(out);
        return st;
    }
    char *json = cz_json_print(out), *req = cz_json_canonical(request);
    cJSON_Delete(out);
    int rc = cz_db_playlist_store(c, id, tenant, user, req, json, err);
    free(req);
    if (rc) {
        free(json);
        return CZ_PL_FAILED;
    }
    *body = json;
    return CZ_PL_OK;
}

/* ---- the cache ----------------------------------------------------------- */

void cz_playlists_hash(const char *tenant, const char *canonical, char out[CZ_SHA256_HEX]) {
    size_t nt = strlen(tenant), nc = strlen(canonical);
    char *s = cz_malloc(nt + nc + 2);
    memcpy(s, tenant, nt);
    s[nt] = '\n';
    memcpy(s + nt + 1, canonical, nc + 1);
    cz_sha256_hex(s, nt + nc + 1, out);
    free(s);
}

char *cz_playlists_cached(redisContext *r, const char *hash) {
    /* One round trip: the answer, and the request counted towards demand. */
    redisAppendCommand(r, "GET cz:pl:%s", hash);
    redisAppendCommand(r, "ZINCRBY cz:pl:popular 1 %s", hash);
    redisReply *got = NULL, *counted = NULL;
    if (redisGetReply(r, (void **)&got) == REDIS_OK)
        redisGetReply(r, (void **)&counted);
    char *out = got && got->type == REDIS_REPLY_STRING ? cz_strndup(got->str, got->len) : NULL;
    freeReplyObject(got);
    freeReplyObject(counted);
    return out;
}

void cz_playlists_cache(redisContext *r, const char *hash, const char *tenant, const char *user,
                        const char *canonical, const char *body, int ttl_s) {
    int sent = 0;
    sent += redisAppendCommand(r, "SET cz:pl:%s %s EX %d", hash, body, ttl_s) == REDIS_OK;
    sent += redisAppendCommand(r, "SET cz:pl:req:%s %s\n%s EX 86400", hash, tenant, canonical) ==
            REDIS_OK;
    if (user) {
        sent += redisAppendCommand(r, "SADD cz:pl:user:%s:%s %s", tenant, user, hash) == REDIS_OK;
        sent += redisAppendCommand(r, "EXPIRE cz:pl:user:%s:%s 86400", tenant, user) == REDIS_OK;
    }
    for (int i = 0; i < sent; i++) {
        redisReply *rep = NULL;
        if (redisGetReply(r, (void **)&rep) != REDIS_OK)
            break;
        freeReplyObject(rep);
    }
}

void cz_playlists_forget_user(redisContext *r, const char *tenant, const char *user) {
    static const char script[] = "local hs = redis.call('SMEMBERS', KEYS[1])\n"
                                 "for _, h in ipairs(hs) do redis.call('DEL', 'cz:pl:' .. h) end\n"
                                 "redis.call('DEL', KEYS[1])\n"
                                 "return #hs\n";
    char key[300];
    snprintf(key, sizeof key, "cz:pl:user:%s:%s", tenant, user);
    const char *argv[] = {key};
    freeReplyObject(cz_redis_script(r, script, 1, 1, argv));
}

int cz_playlists_refresh(cz_playlists *p, PGconn *c, redisContext *r, int top, int ttl_s,
                         int ahead_s, cz_err *err) {
    redisReply *list = redisCommand(r, "ZREVRANGE cz:pl:popular 0 %d", top - 1);
    if (!list || list->type != REDIS_REPLY_ARRAY) {
        freeReplyObject(list);
        return cz_err_set(err, "redis: %s", r->err ? r->errstr : "unexpected reply");
    }
    int remade = 0;
    for (size_t i = 0; i < list->elements; i++) {
        const char *hash = list->element[i]->str;
        redisReply *ttl = redisCommand(r, "TTL cz:pl:%s", hash);
        long long left = ttl && ttl->type == REDIS_REPLY_INTEGER ? ttl->integer : -2;
        freeReplyObject(ttl);
        if (left >= ahead_s)
            continue;
        redisReply *req = redisCommand(r, "GET cz:pl:req:%s", hash);
        char *text = req && req->type == REDIS_REPLY_STRING ? cz_strndup(req->str, req->len) : NULL;
        freeReplyObject(req);
        char *nl = text ? strchr(text, '\n') : NULL;
        cJSON *request = nl ? cJSON_Parse(nl + 1) : NULL;
        if (!request) { /* forgotten: nothing to remake it from */
            freeReplyObject(redisCommand(r, "ZREM cz:pl:popular %s", hash));
            free(text);
            continue;
        }
        *nl = '\0';
        char *body = NULL, field[64];
        cz_err e;
        if (cz_playlists_answer(p, c, text, request, &body, field, &e) == CZ_PL_OK) {
            cz_playlists_cache(r, hash, text, cz_json_str(request, "user"), nl + 1, body, ttl_s);
            remade++;
        } else {
            cz_log_warn("playlists: refreshing %.12s: %s", hash, e.msg);
        }
        free(body);
        cJSON_Delete(request);
        free(text);
    }
    freeReplyObject(list);
    /* Demand decays, so what was popular last week makes way. */
    freeReplyObject(redisCommand(r, "ZUNIONSTORE cz:pl:popular 1 cz:pl:popular WEIGHTS 0.9"));
    freeReplyObject(redisCommand(r, "ZREMRANGEBYSCORE cz:pl:popular -inf (0.5"));
    return remade;
}
