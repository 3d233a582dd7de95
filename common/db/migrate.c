/* The migration runner: see migrate.h.
 *
 * Each migrations/NNNN_*.sql not yet in schema_migrations runs in its own
 * transaction together with the row that records it, so a file is applied
 * whole or not at all. Runners on several hosts take turns on the
 * migrations' advisory lock (leader.h), so each file is applied once. */
#include "common/db/migrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/db/db.h"
#include "common/db/leader.h"
#include "common/mem.h"

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
        cz_err why;
        if (cz_db_exec_script(c, sql, &why)) {
            cz_err_set(err, "migration %s failed: %s", name, why.msg);
        } else if (cz_db_exec(c, "INSERT INTO schema_migrations (name) VALUES ($1)", 1, p, err) ==
                       1 &&
                   cz_db_commit(c, err) == 0) {
            rc = 0;
        }
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
