/* Playlist precomputation: see precompute.h.
 *
 * The scheduler keeps its own copy of the catalogue in memory (the same
 * follower the API uses). A round remakes what would otherwise expire
 * before the round after next, so an entry that is still asked for never
 * lapses; an entry nobody asks for any more sinks out of the demand set
 * and is left to expire. */
#include "scheduler/precompute.h"

#include <unistd.h>

#include "common/db/db.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/playlist/service.h"
#include "common/redis.h"

void cz_precompute_run(const cz_config *cfg, atomic_bool *stop) {
    if (cfg->playlist_top <= 0)
        return;
    cz_err err;
    cz_playlists *p = cz_playlists_start(cfg->database_url, cfg->playlist_sync_ms, &err);
    if (!p) {
        cz_log_error("precompute: %s", err.msg);
        return;
    }
    PGconn *db = NULL;
    redisContext *r = NULL;
    int ahead = 2 * cfg->playlist_refresh_s;
    while (!atomic_load(stop)) {
        if (!db && !(db = cz_db_connect(cfg->database_url, &err)))
            cz_log_warn("precompute: %s", err.msg);
        if (!r && !(r = cz_redis_connect(cfg->redis_url, 2000, &err)))
            cz_log_warn("precompute: %s", err.msg);
        if (db && r && cz_playlists_ready(p) && cz_db_ensure(db) == 0) {
            int n = cz_playlists_refresh(p, db, r, cfg->playlist_top, cfg->playlist_ttl_s,
                                         ahead < cfg->playlist_ttl_s ? ahead : cfg->playlist_ttl_s,
                                         &err);
            if (n < 0) {
                cz_log_warn("precompute: %s", err.msg);
                redisFree(r);
                r = NULL;
            } else if (n > 0) {
                cz_metric_add(cz_metric_counter("cadenza_playlists_precomputed_total",
                                                "Playlists remade ahead of demand.", ""),
                              n);
                cz_log_info("precompute: %d playlists remade", n);
            }
        }
        for (int slept = 0; slept < cfg->playlist_refresh_s * 10 && !atomic_load(stop); slept++)
            usleep(100 * 1000);
    }
    redisFree(r);
    PQfinish(db);
    cz_playlists_stop(p);
}
