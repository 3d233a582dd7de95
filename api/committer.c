/* Group commit of submissions: see committer.h.
 *
 * One mutex guards a FIFO of waiting submissions. A request thread links
 * its item in, signals `work`, and sleeps on `done` until its item is
 * marked finished. A committer thread takes up to batch_max items off the
 * front, stores them without holding the lock, then marks them finished
 * and broadcasts `done` (every waiter re-checks its own item). */
#include "api/committer.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/db/db.h"
#include "common/log.h"
#include "common/mem.h"

typedef struct item {
    cz_job_submit *s;
    int rc;
    cz_err err;
    bool finished;
    struct item *next;
} item;

struct cz_committer {
    pthread_mutex_t lock;
    pthread_cond_t work, done;
    item *head, **tail;
    bool stopping;
    int batch_max, nthreads, nconns;
    pthread_t *threads;
    PGconn **conns;
};

typedef struct worker_arg {
    cz_committer *cm;
    int index;
} worker_arg;

/* Stores one batch on @p c; retries its items one by one if it fails. */
static void store(PGconn *c, item **batch, int n) {
    cz_job_submit *subs[n];
    cz_err err;
    for (int i = 0; i < n; i++)
        subs[i] = batch[i]->s;
    cz_db_ensure_idle(c);
    if (cz_db_job_submit_batch(c, subs, n, &err) == 0) {
        for (int i = 0; i < n; i++)
            batch[i]->rc = 0;
        return;
    }
    if (n == 1) {
        batch[0]->rc = -1;
        batch[0]->err = err;
        return;
    }
    cz_log_warn("a batch of %d submissions failed (%s); storing them one by one", n, err.msg);
    for (int i = 0; i < n; i++) {
        cz_db_ensure(c);
        batch[i]->rc = cz_db_job_submit_batch(c, &subs[i], 1, &batch[i]->err);
    }
}

static void *run(void *arg) {
    worker_arg *w = arg;
    cz_committer *cm = w->cm;
    PGconn *c = cm->conns[w->index];
    free(w);
    item *batch[cm->batch_max];
    for (;;) {
        pthread_mutex_lock(&cm->lock);
        while (!cm->head && !cm->stopping)
            pthread_cond_wait(&cm->work, &cm->lock);
        if (!cm->head) { /* stopping, and nothing left */
            pthread_mutex_unlock(&cm->lock);
            return NULL;
        }
        int n = 0;
        while (cm->head && n < cm->batch_max) {
            batch[n++] = cm->head;
            cm->head = cm->head->next;
        }
        if (!cm->head)
            cm->tail = &cm->head;
        pthread_mutex_unlock(&cm->lock);

        store(c, batch, n);

        pthread_mutex_lock(&cm->lock);
        for (int i = 0; i < n; i++)
            batch[i]->finished = true;
        pthread_cond_broadcast(&cm->done);
        pthread_mutex_unlock(&cm->lock);
    }
}

cz_committer *cz_committer_start(const char *url, int threads, int batch_max, cz_err *err) {
    cz_committer *cm = cz_calloc(1, sizeof *cm);
    cm->threads = cz_calloc((size_t)threads, sizeof *cm->threads);
    cm->conns = cz_calloc((size_t)threads, sizeof *cm->conns);
    pthread_mutex_init(&cm->lock, NULL);
    pthread_cond_init(&cm->work, NULL);
    pthread_cond_init(&cm->done, NULL);
    cm->tail = &cm->head;
    cm->batch_max = batch_max;
    for (int i = 0; i < threads; i++) {
        if (!(cm->conns[i] = cz_db_connect(url, err))) {
            cz_committer_stop(cm);
            return NULL;
        }
        cm->nconns++;
    }
    for (int i = 0; i < threads; i++) {
        worker_arg *w = cz_malloc(sizeof *w);
        *w = (worker_arg){cm, i};
        if (pthread_create(&cm->threads[i], NULL, run, w)) {
            free(w);
            cz_err_set(err, "cannot start a committer thread");
            cz_committer_stop(cm);
            return NULL;
        }
        cm->nthreads++;
    }
    return cm;
}

int cz_committer_submit(cz_committer *cm, cz_job_submit *s, cz_err *err) {
    item it = {.s = s};
    pthread_mutex_lock(&cm->lock);
    *cm->tail = &it;
    cm->tail = &it.next;
    pthread_cond_signal(&cm->work);
    while (!it.finished)
        pthread_cond_wait(&cm->done, &cm->lock);
    pthread_mutex_unlock(&cm->lock);
    if (it.rc)
        *err = it.err;
    return it.rc;
}

void cz_committer_stop(cz_committer *cm) {
    if (!cm)
        return;
    pthread_mutex_lock(&cm->lock);
    cm->stopping = true;
    pthread_cond_broadcast(&cm->work);
    pthread_mutex_unlock(&cm->lock);
    for (int i = 0; i < cm->nthreads; i++)
        pthread_join(cm->threads[i], NULL);
    for (int i = 0; i < cm->nconns; i++)
        PQfinish(cm->conns[i]);
    pthread_mutex_destroy(&cm->lock);
    pthread_cond_destroy(&cm->work);
    pthread_cond_destroy(&cm->done);
    free(cm->threads);
    free(cm->conns);
    free(cm);
}
