/* Postgres helpers and the connection pool: see db.h.
 *
 * The pool is a stack of idle connections under a mutex and a condition
 * variable: request threads borrow one for the length of a request. A
 * connection that the server dropped (a restart, say) is reset when it is
 * next borrowed, before the request uses it, so the API heals without a
 * restart of its own and without failing the first request on each. */
#include "common/db/db.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

static const char *pg_message(PGconn *c, PGresult *r) {
    const char *m = r ? PQresultErrorMessage(r) : NULL;
    if (!m || !*m)
        m = PQerrorMessage(c);
    return m;
}

static void trim_newline(cz_err *err) {
    if (!err)
        return;
    size_t n = strlen(err->msg);
    while (n && (err->msg[n - 1] == '\n' || err->msg[n - 1] == ' '))
        err->msg[--n] = '\0';
}

/* Server notices ("relation already exists, skipping") are expected and
 * not worth a line on stderr. */
static void ignore_notice(void *arg, const char *message) {
    (void)arg, (void)message;
}

PGconn *cz_db_connect(const char *url, cz_err *err) {
    PGconn *c = PQconnectdb(url);
    PQsetNoticeProcessor(c, ignore_notice, NULL);
    if (PQstatus(c) != CONNECTION_OK) {
        cz_err_set(err, "cannot connect to Postgres: %s(is it running? see deploy/local/)",
                   PQerrorMessage(c));
        trim_newline(err);
        PQfinish(c);
        return NULL;
    }
    return c;
}

PGresult *cz_db_query(PGconn *c, const char *sql, int n, const char *const *params, cz_err *err) {
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    cz_err_set(err, "database: %s", pg_message(c, r));
    trim_newline(err);
    PQclear(r);
    return NULL;
}

long cz_db_exec(PGconn *c, const char *sql, int n, const char *const *params, cz_err *err) {
    PGresult *r = cz_db_query(c, sql, n, params, err);
    if (!r)
        return -1;
    long rows = atol(PQcmdTuples(r));
    PQclear(r);
    return rows;
}

int cz_db_begin(PGconn *c, cz_err *err) {
    return cz_db_exec(c, "BEGIN", 0, NULL, err) < 0 ? -1 : 0;
}

int cz_db_commit(PGconn *c, cz_err *err) {
    return cz_db_exec(c, "COMMIT", 0, NULL, err) < 0 ? -1 : 0;
}

void cz_db_rollback(PGconn *c) {
    PQclear(PQexec(c, "ROLLBACK"));
}

/* Runs "<verb> <name>": savepoint names cannot be parameters. */
static int savepoint_verb(PGconn *c, const char *verb, const char *name, cz_err *err) {
    char sql[128];
    snprintf(sql, sizeof sql, "%s %s", verb, name);
    return cz_db_exec(c, sql, 0, NULL, err) < 0 ? -1 : 0;
}

int cz_db_savepoint(PGconn *c, const char *name, cz_err *err) {
    return savepoint_verb(c, "SAVEPOINT", name, err);
}

int cz_db_savepoint_release(PGconn *c, const char *name, cz_err *err) {
    return savepoint_verb(c, "RELEASE SAVEPOINT", name, err);
}

int cz_db_savepoint_rollback(PGconn *c, const char *name, cz_err *err) {
    return savepoint_verb(c, "ROLLBACK TO SAVEPOINT", name, err);
}

int cz_db_ping(PGconn *c, cz_err *err) {
    PGresult *r = cz_db_query(c, "SELECT 1", 0, NULL, err);
    if (!r)
        return -1;
    PQclear(r);
    return 0;
}

int cz_db_ensure(PGconn *c) {
    if (PQstatus(c) == CONNECTION_OK)
        return 0;
    PQreset(c);
    return PQstatus(c) == CONNECTION_OK ? 0 : -1;
}

int cz_db_ensure_idle(PGconn *c) {
    /* A shutdown or a terminated backend sends a FATAL message and closes
     * the socket; an idle connection has nothing else to read. */
    struct pollfd fd = {.fd = PQsocket(c), .events = POLLIN};
    if (PQstatus(c) == CONNECTION_OK && fd.fd >= 0 && poll(&fd, 1, 0) > 0)
        PQreset(c);
    return cz_db_ensure(c);
}

int cz_db_exec_script(PGconn *c, const char *sql, cz_err *err) {
    /* Multi-statement text needs the simple protocol: PQexec. */
    PGresult *r = PQexec(c, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK;
    if (!ok) {
        cz_err_set(err, "%s", pg_message(c, r));
        trim_newline(err);
    }
    PQclear(r);
    return ok ? 0 : -1;
}

/* ---- pool -------------------------------------------------------------- */

struct cz_db_pool {
    pthread_mutex_t lock;
    pthread_cond_t freed;
    int size, idle;
    PGconn **conns; /* conns[0..idle) are idle */
};

cz_db_pool *cz_db_pool_new(const char *url, int size, cz_err *err) {
    cz_db_pool *p = cz_calloc(1, sizeof *p);
    p->conns = cz_calloc((size_t)size, sizeof *p->conns);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->freed, NULL);
    p->size = size;
    for (; p->idle < size; p->idle++) {
        if (!(p->conns[p->idle] = cz_db_connect(url, err))) {
            cz_db_pool_free(p);
            return NULL;
        }
    }
    return p;
}

PGconn *cz_db_pool_get(cz_db_pool *p) {
    pthread_mutex_lock(&p->lock);
    while (p->idle == 0)
        pthread_cond_wait(&p->freed, &p->lock);
    PGconn *c = p->conns[--p->idle];
    pthread_mutex_unlock(&p->lock);
    cz_db_ensure_idle(c); /* a failed reset surfaces as the query's error */
    return c;
}

void cz_db_pool_put(cz_db_pool *p, PGconn *c) {
    /* Never hand on a connection stuck in a transaction. */
    if (PQtransactionStatus(c) != PQTRANS_IDLE)
        cz_db_rollback(c);
    pthread_mutex_lock(&p->lock);
    p->conns[p->idle++] = c;
    pthread_cond_signal(&p->freed);
    pthread_mutex_unlock(&p->lock);
}

void cz_db_pool_free(cz_db_pool *p) {
    if (!p)
        return;
    for (int i = 0; i < p->idle; i++)
        PQfinish(p->conns[i]);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->freed);
    free(p->conns);
    free(p);
}

char *cz_db_take_text(PGresult *r) {
    char *out = r && PQntuples(r) == 1 ? cz_strdup(PQgetvalue(r, 0, 0)) : NULL;
    PQclear(r);
    return out;
}
