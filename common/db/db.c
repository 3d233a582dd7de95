/* Postgres helpers, pool and migrations: see db.h.
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

#include "common/db/leader.h"
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

/* ---- migrations -------------------------------------------------------- */

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

static int is_migration(const struct dirent *d) {
    size_t n = strlen(d->d_name);
    return n > 9 && d->d_name[0] >= '0' && d->d_name[0] <= '9' &&
           !strcmp(d->d_name + n - 4, ".sql");
}

static char *read_file(const char *path, cz_err *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        cz_err_set(err, "cannot open migration %s: %s", path, strerror(errno));
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *s = cz_malloc((size_t)len + 1);
    if (fread(s, 1, (size_t)len, f) != (size_t)len) {
        free(s);
        s = NULL;
    }
    fclose(f);
    if (!s) {
        cz_err_set(err, "cannot read migration %s", path);
        return NULL;
    }
    s[len] = '\0';
    return s;
}

static int apply_one(PGconn *c, const char *dir, const char *name, cz_err *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *sql = read_file(path, err);
    if (!sql)
        return -1;
    const char *p[] = {name};
    int rc = -1;
    if (cz_db_begin(c, err) == 0) {
        /* Multi-statement text needs the simple protocol: PQexec. */
        PGresult *r = PQexec(c, sql);
        if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
            cz_err_set(err, "migration %s failed: %s", name, pg_message(c, r));
            trim_newline(err);
        } else if (cz_db_exec(c, "INSERT INTO schema_migrations (name) VALUES ($1)", 1, p, err) ==
                       1 &&
                   cz_db_commit(c, err) == 0) {
            rc = 0;
        }
        PQclear(r);
        if (rc)
            cz_db_rollback(c);
    }
    free(sql);
    return rc;
}

int cz_db_migrate(PGconn *c, const char *dir, cz_err *err) {
    if (cz_db_exec(c,
                   "CREATE TABLE IF NOT EXISTS schema_migrations ("
                   " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
                   0, NULL, err) < 0)
        return -1;
    /* Session lock: two deploys migrating at once apply each file once. */
    cz_leader lock = {.lock = CZ_LOCK_MIGRATIONS, .name = "migrations"};
    if (cz_leader_wait(&lock, c, err))
        return -1;

    struct dirent **names = NULL;
    int n = scandir(dir, &names, is_migration, by_name);
    int applied = 0;
    if (n < 0) {
        cz_err_set(err, "cannot list migrations in %s: %s", dir, strerror(errno));
        applied = -1;
    }
    for (int i = 0; i < n; i++) {
        if (applied >= 0) {
            const char *p[] = {names[i]->d_name};
            PGresult *r =
                cz_db_query(c, "SELECT 1 FROM schema_migrations WHERE name = $1", 1, p, err);
            if (!r) {
                applied = -1;
            } else {
                int done = PQntuples(r) > 0;
                PQclear(r);
                if (!done)
                    applied = apply_one(c, dir, names[i]->d_name, err) ? -1 : applied + 1;
            }
        }
        free(names[i]);
    }
    free(names);
    cz_leader_release(&lock, c);
    return applied;
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
