/* The playlist endpoints: see playlists.h.
 *
 * A playlist request is checked field by field and rewritten canonically
 * (known fields only, defaults filled, exclusions sorted), so two requests
 * that mean the same thing share a cache entry. The cache is looked at
 * first; a miss is computed from the in-memory catalogue, stored, cached
 * and counted towards the scheduler's precomputation. The answer says
 * which in its `Cadenza-Cache: hit|miss` header. */
#include "api/playlists.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/db/db.h"
#include "common/db/playlists.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/playlist/engine.h"
#include "common/playlist/service.h"
#include "common/redis.h"

#define USER_MAX 63 /* characters of a listener id */
#define TRACK_ID_MAX 64
#define SIGNALS_MAX 100

/* Listener ids are the tenant's own: letters, digits and . _ - : @ */
static bool user_id_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > USER_MAX)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              strchr("._-:@", *s)))
            return false;
    return true;
}

static bool track_id_ok(const cJSON *v) {
    return cJSON_IsString(v) && v->valuestring[0] && strlen(v->valuestring) <= TRACK_ID_MAX;
}

static enum MHD_Result invalid(cz_http_req *r, const char *field, const char *detail) {
    return cz_http_problem(r, 422, "invalid-field", detail, field);
}

/* The answer when Postgres does not answer (cz_http_unavailable). */
#define STORE_DOWN "the playlist store is unavailable; retry"

static void names_of(const char *const *names, char *out, size_t n) {
    out[0] = '\0';
    for (; *names; names++)
        snprintf(out + strlen(out), n - strlen(out), "%s%s", out[0] ? ", " : "", *names);
}

/* ---- signals ------------------------------------------------------------- */

/* Checks one signal and appends its canonical form to @p out.
 * @returns NULL, or the problem's detail (with the field in @p field). */
static const char *check_signal(const cJSON *s, int i, cJSON *out, char field[64]) {
    static const char *const known[] = {"track_id", "kind", "position_s", NULL};
    if (!cJSON_IsObject(s)) {
        snprintf(field, 64, "signals[%d]", i);
        return "each signal is an object with track_id and kind";
    }
    for (const cJSON *m = s->child; m; m = m->next) {
        bool ok = false;
        for (int k = 0; known[k]; k++)
            ok |= !strcmp(m->string, known[k]);
        if (!ok) {
            snprintf(field, 64, "signals[%d].%.30s", i, m->string);
            return "a signal has track_id, kind and position_s only";
        }
    }
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(s, "track_id");
    const cJSON *k = cJSON_GetObjectItemCaseSensitive(s, "kind");
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(s, "position_s");
    if (!track_id_ok(t)) {
        snprintf(field, 64, "signals[%d].track_id", i);
        return "track_id must be a track's id (1 to 64 characters)";
    }
    if (!cJSON_IsString(k) || cz_signal_kind_of(k->valuestring) < 0) {
        snprintf(field, 64, "signals[%d].kind", i);
        return "kind must be one of play, complete, skip, like, dislike";
    }
    if (p && (!cJSON_IsNumber(p) || !(p->valuedouble >= 0 && p->valuedouble <= 86400))) {
        snprintf(field, 64, "signals[%d].position_s", i);
        return "position_s must be a number of seconds from 0 to 86400";
    }
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "track_id", t->valuestring);
    cJSON_AddStringToObject(c, "kind", k->valuestring);
    if (p)
        cJSON_AddNumberToObject(c, "position_s", p->valuedouble);
    cJSON_AddItemToArray(out, c);
    return NULL;
}

enum MHD_Result cz_api_signals_create(cz_api *api, cz_http_req *r, const char *user) {
    if (!user_id_ok(user))
        return cz_http_problem(r, 404, "not-found",
                               "a listener id is 1 to 63 letters, digits or . _ - : @", NULL);
    static const char *const fields[] = {"signals", "track_id", "kind", "position_s", NULL};
    static const cz_http_body how = {"the body", true, fields};
    enum MHD_Result res;
    cJSON *body = cz_http_read_object(r, &how, &res);
    if (!body)
        return res;
    /* One signal as the body, or {"signals": [...]}. */
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(body, "signals");
    cJSON *single = NULL;
    if (!list) {
        single = cJSON_CreateArray();
        cJSON_AddItemReferenceToArray(single, body);
        list = single;
    } else if (cJSON_GetArraySize(body) != 1) {
        cJSON_Delete(body);
        return invalid(r, "signals", "send one signal, or {\"signals\": [...]}, not both");
    }
    int n = cJSON_GetArraySize(list);
    const char *problem = NULL;
    char field[64] = "signals";
    cJSON *clean = cJSON_CreateArray();
    if (!cJSON_IsArray(list) || n < 1 || n > SIGNALS_MAX)
        problem = "signals must be an array of 1 to 100 signals";
    int i = 0;
    for (const cJSON *s = list->child; !problem && s; s = s->next)
        problem = check_signal(s, i++, clean, field);
    cJSON_Delete(single);
    cJSON_Delete(body);
    if (problem) {
        cJSON_Delete(clean);
        return invalid(r, field, problem);
    }
    char *json = cz_json_print(clean);
    cJSON_Delete(clean);
    cz_err err;
    int bad = 0, accepted = 0;
    PGconn *c = cz_db_pool_get(api->db);
    /* All or nothing: an unknown track (or another tenant's) stores none. */
    int unknown = cz_db_playlist_add_signals(c, r->key.tenant, user, json, &bad, &accepted, &err);
    cz_db_pool_put(api->db, c);
    free(json);
    if (unknown < 0)
        return cz_http_unavailable(r, "signals", &err, STORE_DOWN);
    if (unknown) {
        snprintf(field, sizeof field, "signals[%d].track_id", bad);
        return cz_http_problem(r, 422, "unknown-track", "no such track; nothing was recorded",
                               field);
    }
    /* The listener's taste moved: their cached playlists are stale. */
    redisContext *rc = cz_redis_borrow(api->redis, &err);
    if (rc)
        cz_playlists_forget_user(rc, r->key.tenant, user);
    cz_redis_give_back(api->redis, rc);
    char out[160];
    snprintf(out, sizeof out, "{\"object\":\"signals\",\"user\":\"%s\",\"accepted\":%d}", user,
             accepted);
    return cz_http_json(r, 202, out);
}

/* ---- playlists ----------------------------------------------------------- */

static int by_string(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* A string array of at most @p max ids, canonical in @p out (sorted and
 * unique when @p sort). @returns 0, or -1 with the problem in @p detail. */
static int id_list(const cJSON *v, int max, bool sort, cJSON **out, char *detail, size_t n) {
    snprintf(detail, n, "must be an array of at most %d track ids", max);
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > max)
        return -1;
    int count = cJSON_GetArraySize(v), k = 0;
    const char **ids = cz_calloc((size_t)(count ? count : 1), sizeof *ids);
    for (const cJSON *e = v->child; e; e = e->next) {
        if (!track_id_ok(e)) {
            free(ids);
            return -1;
        }
        ids[k++] = e->valuestring;
    }
    if (sort)
        qsort(ids, (size_t)k, sizeof *ids, by_string);
    *out = cJSON_CreateArray();
    for (int i = 0; i < k; i++)
        if (!sort || i == 0 || strcmp(ids[i], ids[i - 1]))
            cJSON_AddItemToArray(*out, cJSON_CreateString(ids[i]));
    free(ids);
    return 0;
}

/* Copies field @p name, when present, if it is one of @p names.
 * @returns 0, or -1 with the problem in @p detail. */
static int one_of(const cJSON *b, const char *name, const char *const *names, cJSON *c,
                  char *detail, size_t n) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(b, name);
    if (!v)
        return 0;
    if (!cJSON_IsString(v) || !cz_playlist_known(names, v->valuestring)) {
        char list[160];
        names_of(names, list, sizeof list);
        snprintf(detail, n, "%s must be one of %s", name, list);
        return -1;
    }
    cJSON_AddStringToObject(c, name, v->valuestring);
    return 0;
}

/* Checks a playlist request and builds its canonical form in *@p out.
 * @returns NULL, or the failing field with the problem in @p detail. */
static const char *canonical_request(const cJSON *b, cJSON **out, char *detail, size_t n) {
    cJSON *c = *out = cJSON_CreateObject();
    const cJSON *v;
    if ((v = cJSON_GetObjectItemCaseSensitive(b, "user"))) {
        if (!cJSON_IsString(v) || !user_id_ok(v->valuestring)) {
            snprintf(detail, n, "user must be 1 to 63 letters, digits or . _ - : @");
            return "user";
        }
        cJSON_AddStringToObject(c, "user", v->valuestring);
    }
    if (one_of(b, "mood", cz_playlist_moods, c, detail, n))
        return "mood";
    if (one_of(b, "activity", cz_playlist_activities, c, detail, n))
        return "activity";
    const cJSON *lt = cJSON_GetObjectItemCaseSensitive(b, "length_tracks");
    const cJSON *lm = cJSON_GetObjectItemCaseSensitive(b, "length_minutes");
    if (lt && lm) {
        snprintf(detail, n, "give length_tracks or length_minutes, not both");
        return "length_minutes";
    }
    if (lm) {
        if (!cJSON_IsNumber(lm) || !(lm->valuedouble > 0) ||
            lm->valuedouble > CZ_PLAYLIST_MAX_MINUTES) {
            snprintf(detail, n, "length_minutes must be a number above 0 and at most %d",
                     CZ_PLAYLIST_MAX_MINUTES);
            return "length_minutes";
        }
        cJSON_AddNumberToObject(c, "length_minutes", lm->valuedouble);
    } else {
        if (lt && (!cJSON_IsNumber(lt) || !cz_json_is_integer(lt->valuedouble) ||
                   lt->valuedouble < 1 || lt->valuedouble > CZ_PLAYLIST_MAX_TRACKS)) {
            snprintf(detail, n, "length_tracks must be a whole number from 1 to %d",
                     CZ_PLAYLIST_MAX_TRACKS);
            return "length_tracks";
        }
        cJSON_AddNumberToObject(c, "length_tracks", lt ? lt->valuedouble : 20);
    }
    v = cJSON_GetObjectItemCaseSensitive(b, "novelty");
    if (v && (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= 1))) {
        snprintf(detail, n, "novelty must be a number from 0 to 1");
        return "novelty";
    }
    cJSON_AddNumberToObject(c, "novelty", v ? v->valuedouble : 0.3);
    cJSON *ids = NULL;
    if ((v = cJSON_GetObjectItemCaseSensitive(b, "seed_tracks"))) {
        if (id_list(v, CZ_PLAYLIST_MAX_SEEDS, false, &ids, detail, n))
            return "seed_tracks";
        cJSON_AddItemToObject(c, "seed_tracks", ids);
    }
    if ((v = cJSON_GetObjectItemCaseSensitive(b, "exclude"))) {
        if (id_list(v, CZ_PLAYLIST_MAX_EXCLUDE, true, &ids, detail, n))
            return "exclude";
        cJSON_AddItemToObject(c, "exclude", ids);
    }
    return NULL;
}

static enum MHD_Result answer(cz_http_req *r, const char *body, bool hit) {
    cz_metric_add(cz_metric_counter("cadenza_playlists_total", "Playlists answered, by cache.",
                                    hit ? "cache=\"hit\"" : "cache=\"miss\""),
                  1);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, "Cadenza-Cache", hit ? "hit" : "miss");
    enum MHD_Result rc = cz_http_queue(r, 200, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result cz_api_playlists_create(cz_api *api, cz_http_req *r, const char *unused) {
    (void)unused;
    static const char *const fields[] = {"user",          "mood",           "activity",
                                         "length_tracks", "length_minutes", "novelty",
                                         "seed_tracks",   "exclude",        NULL};
    static const cz_http_body how = {"the body", true, fields};
    enum MHD_Result res;
    cJSON *body = cz_http_read_object(r, &how, &res);
    if (!body)
        return res;
    cJSON *req = NULL;
    char detail[200];
    const char *bad = canonical_request(body, &req, detail, sizeof detail);
    cJSON_Delete(body);
    if (bad) {
        cJSON_Delete(req);
        return invalid(r, bad, detail);
    }
    if (!cz_playlists_ready(api->playlists)) {
        cJSON_Delete(req);
        r->retry_after_s = 2;
        return cz_http_problem(r, 503, "unavailable", "the catalogue is still loading; retry",
                               NULL);
    }
    char *canonical = cz_json_canonical(req), hash[CZ_SHA256_HEX];
    if (!canonical) {
        cJSON_Delete(req);
        return MHD_NO;
    }
    cz_playlists_hash(r->key.tenant, canonical, hash);
    cz_err err;
    redisContext *rc = cz_redis_borrow(api->redis, &err);
    char *cached = rc ? cz_playlists_cached(rc, hash) : NULL;
    if (cached) {
        cz_redis_give_back(api->redis, rc);
        res = answer(r, cached, true);
        free(cached);
        free(canonical);
        cJSON_Delete(req);
        return res;
    }
    cz_redis_give_back(api->redis, rc);

    char *json = NULL, field[64] = "";
    PGconn *c = cz_db_pool_get(api->db);
    cz_pl_status st =
        cz_playlists_answer(api->playlists, c, r->key.tenant, req, &json, field, &err);
    cz_db_pool_put(api->db, c);
    if (st == CZ_PL_UNKNOWN_TRACK)
        res = cz_http_problem(r, 422, "unknown-track", err.msg, field);
    else if (st != CZ_PL_OK)
        res = cz_http_unavailable(r, "playlists", &err, STORE_DOWN);
    else {
        if ((rc = cz_redis_borrow(api->redis, &err))) {
            cz_playlists_cache(rc, hash, r->key.tenant, cz_json_str(req, "user"), canonical, json,
                               api->cfg->playlist_ttl_s);
        }
        cz_redis_give_back(api->redis, rc);
        res = answer(r, json, false);
    }
    free(json);
    free(canonical);
    cJSON_Delete(req);
    return res;
}

enum MHD_Result cz_api_playlists_get(cz_api *api, cz_http_req *r, const char *id) {
    if (!cz_uuid_valid(id))
        return cz_http_problem(r, 404, "not-found", "no such playlist", NULL);
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    char *json = cz_db_playlist_get(c, r->key.tenant, id, &err);
    cz_db_pool_put(api->db, c);
    if (!json && err.msg[0])
        return cz_http_unavailable(r, "playlists", &err, STORE_DOWN);
    if (!json)
        return cz_http_problem(r, 404, "not-found", "no such playlist", NULL);
    enum MHD_Result res = cz_http_json(r, 200, json);
    free(json);
    return res;
}
