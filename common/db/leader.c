/* Leadership by advisory lock: see leader.h.
 *
 * pg_try_advisory_lock is re-entrant within a session: a try after a
 * failed LISTEN takes the lock a second time, which is harmless, since the
 * session's end drops every level at once. */
#include "common/db/leader.h"

#include <stdio.h>
#include <string.h>

#include "common/db/db.h"
#include "common/log.h"

bool cz_leader_holds(cz_leader *l, PGconn *c) {
    if (l->held && c && PQstatus(c) == CONNECTION_OK)
        return true;
    if (l->held)
        cz_log_warn("%s lost its database session; reconnecting", l->name);
    l->held = false;
    return false;
}

bool cz_leader_try(cz_leader *l, PGconn *c, cz_err *err) {
    cz_err_clear(err);
    char id[24];
    snprintf(id, sizeof id, "%d", (int)l->lock);
    const char *p[] = {id};
    cz_err ignored;
    PGresult *r = cz_db_query(c, "SELECT pg_try_advisory_lock($1::bigint)", 1, p, &ignored);
    bool locked = r && !strcmp(PQgetvalue(r, 0, 0), "t");
    PQclear(r);
    if (!locked)
        return false;
    if (l->channel) {
        /* A channel is an identifier, not a value: it cannot be a parameter. */
        char sql[96];
        snprintf(sql, sizeof sql, "LISTEN %s", l->channel);
        if (cz_db_exec(c, sql, 0, NULL, err) < 0)
            return false;
    }
    l->held = true;
    return true;
}

int cz_leader_wait(cz_leader *l, PGconn *c, cz_err *err) {
    char id[24];
    snprintf(id, sizeof id, "%d", (int)l->lock);
    const char *p[] = {id};
    if (cz_db_exec(c, "SELECT pg_advisory_lock($1::bigint)", 1, p, err) < 0)
        return -1;
    l->held = true;
    return 0;
}

void cz_leader_release(cz_leader *l, PGconn *c) {
    if (!l->held)
        return;
    char id[24];
    snprintf(id, sizeof id, "%d", (int)l->lock);
    const char *p[] = {id};
    cz_err ignored;
    PQclear(cz_db_query(c, "SELECT pg_advisory_unlock($1::bigint)", 1, p, &ignored));
    l->held = false;
}
