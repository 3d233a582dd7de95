/* Leadership by Postgres advisory lock, and every advisory lock id Cadenza
 * takes, in one place.
 *
 * A loop that must run once in the whole deployment (the outbox relay, the
 * webhook dispatcher) leads while its session holds a session-level
 * advisory lock. Postgres gives the lock to one session at a time and drops
 * it when the session ends, so a leader that crashes or loses its
 * connection is replaced by a standby at the standby's next try, with no
 * lease to expire. Taking the lead also LISTENs on the leader's wake-up
 * channel: leading means holding both.
 *
 * A leader never gives the lock back on its own: the session's end does,
 * so stopping never waits on a Postgres that does not answer. How often a
 * standby tries is the caller's: the relay sleeps a second between tries;
 * the dispatcher, which must keep its transfers moving, tries at most once
 * a second without blocking. */
#ifndef CZ_DB_LEADER_H
#define CZ_DB_LEADER_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "common/err.h"

/** Every fixed advisory lock id. The only other advisory lock, the quota
 * check's per-tenant transaction lock (common/db/jobs.c), is keyed on
 * hashtext('cadenza:quota:' || tenant). */
typedef enum cz_lock_id {
    CZ_LOCK_MIGRATIONS = 7410001, /* cz_db_migrate: concurrent runners apply each file once */
    CZ_LOCK_RELAY = 7410002,      /* the active outbox relay (scheduler/relay.c) */
    CZ_LOCK_WEBHOOKS = 7410003,   /* the active webhook dispatcher (scheduler/webhooks.c) */
} cz_lock_id;

/** A claim on a lock, by one session at a time. */
typedef struct cz_leader {
    cz_lock_id lock;
    const char *name;    /* who leads, in log lines: "relay", "webhook dispatcher" */
    const char *channel; /* LISTENed to on taking the lead; NULL for none */
    bool held;           /* the session took the lock (and listens) */
} cz_leader;

/**
 * @brief Whether @p l leads now: it took the lock and @p c, its session, is
 * still alive. When the session has been lost, logs "<name> lost its
 * database session; reconnecting" once and forgets the lock, which Postgres
 * dropped with the session.
 * @returns true while leading.
 */
bool cz_leader_holds(cz_leader *l, PGconn *c);

/**
 * @brief Tries once, without waiting, to take the lead on @p c (connected):
 * the lock, then LISTEN on l->channel.
 * @returns true when this session now leads. false when another session
 * holds the lock or the lock's statement failed (the next try finds out),
 * both with @p err empty; or when LISTEN failed, with @p err filled.
 */
bool cz_leader_try(cz_leader *l, PGconn *c, cz_err *err);

/**
 * @brief Waits for the lock on @p c, for work that must not run twice at
 * once (migrations). @returns 0 holding it, or -1 with @p err filled.
 */
int cz_leader_wait(cz_leader *l, PGconn *c, cz_err *err);

/**
 * @brief Gives the lock back on @p c now, when held, rather than at the
 * session's end; errors are ignored (the session's end drops it anyway).
 */
void cz_leader_release(cz_leader *l, PGconn *c);

#endif
