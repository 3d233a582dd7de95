/* The registry snapshot: see registry.h.
 *
 * One mutex guards the current snapshot, its reference counts and when to
 * read again; reading Postgres happens outside it. The registry holds one
 * reference to its current snapshot and each caller of cz_registry_get
 * another, so a snapshot is freed by whoever drops its last one. */
#include "api/registry.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/mem.h"

typedef struct snap {
    cz_models_snap pub; /* first: a caller's pointer is the snap's */
    int refs;
    cz_model *rows;
} snap;

struct cz_registry {
    pthread_mutex_t lock;
    cz_db_pool *db;
    int ttl_ms;
    snap *cur;       /* NULL until the first read succeeds */
    int64_t next_ms; /* when to read again */
    bool reading;    /* a thread is reading while others use cur */
};

cz_registry *cz_registry_new(cz_db_pool *db, int ttl_ms) {
    cz_registry *rg = cz_calloc(1, sizeof *rg);
    pthread_mutex_init(&rg->lock, NULL);
    rg->db = db;
    rg->ttl_ms = ttl_ms;
    return rg;
}

static snap *load(PGconn *c, cz_err *err) {
    cz_model *rows;
    if (!c) {
        cz_err_set(err, "no database connection");
        return NULL;
    }
    int n = cz_db_models_load(c, &rows, err);
    if (n < 0)
        return NULL;
    snap *s = cz_calloc(1, sizeof *s);
    s->rows = rows;
    s->pub.rows = rows;
    s->pub.n = n;
    s->refs = 1; /* the registry's */
    return s;
}

/* Under the lock. */
static void unref(snap *s) {
    if (s && --s->refs == 0) {
        free(s->rows);
        free(s);
    }
}

/* Under the lock: @p fresh (NULL: the read failed) becomes current. */
static void settle(cz_registry *rg, snap *fresh) {
    if (fresh) {
        unref(rg->cur);
        rg->cur = fresh;
    }
    rg->next_ms = cz_mono_ms() + rg->ttl_ms;
}

const cz_models_snap *cz_registry_get(cz_registry *rg, cz_err *err) {
    pthread_mutex_lock(&rg->lock);
    snap *s = rg->cur;
    bool stale = cz_mono_ms() >= rg->next_ms, mine = s && stale && !rg->reading;
    if (s && !mine) { /* fresh, or another thread is reading: this one will do */
        s->refs++;
        pthread_mutex_unlock(&rg->lock);
        return &s->pub;
    }
    if (mine)
        rg->reading = true;
    pthread_mutex_unlock(&rg->lock);

    PGconn *c = cz_db_pool_get(rg->db);
    snap *fresh = load(c, err);
    cz_db_pool_put(rg->db, c);

    pthread_mutex_lock(&rg->lock);
    settle(rg, fresh);
    if (mine)
        rg->reading = false;
    s = rg->cur;
    if (s)
        s->refs++;
    pthread_mutex_unlock(&rg->lock);
    if (!fresh && s)
        cz_log_warn("model registry not read (%s); routing with the last snapshot", err->msg);
    return s ? &s->pub : NULL;
}

void cz_registry_release(cz_registry *rg, const cz_models_snap *s) {
    if (!s)
        return;
    pthread_mutex_lock(&rg->lock);
    unref((snap *)s);
    pthread_mutex_unlock(&rg->lock);
}

int cz_registry_reload(cz_registry *rg, PGconn *c, cz_err *err) {
    snap *fresh = load(c, err);
    if (!fresh)
        return -1;
    pthread_mutex_lock(&rg->lock);
    settle(rg, fresh);
    pthread_mutex_unlock(&rg->lock);
    return 0;
}

void cz_registry_free(cz_registry *rg) {
    if (!rg)
        return;
    unref(rg->cur);
    pthread_mutex_destroy(&rg->lock);
    free(rg);
}
