/* SQL for the outbox: see db_outbox.h. */
#include "common/db/outbox.h"

#include <stdio.h>

#include "common/db/db.h"
#include "common/job_state.h"

PGresult *cz_db_outbox_fetch(PGconn *c, int limit, const char *exclude, cz_err *err) {
    char lim[12];
    snprintf(lim, sizeof lim, "%d", limit);
    const char *p[] = {lim, exclude};
    return cz_db_query(c,
                       "SELECT id, topic, key, payload::text, headers::text FROM outbox"
                       " WHERE published_at IS NULL AND available_at <= now()"
                       "   AND id <> ALL($2::bigint[])"
                       " ORDER BY id LIMIT $1",
                       2, p, err);
}

int cz_db_outbox_mark_published(PGconn *c, const char *ids, cz_err *err) {
    char from[CZ_STATE_LIST_LEN];
    cz_job_event_from_states(CZ_EV_DISPATCHED, from);
    const char *p[] = {ids, from};
    return cz_db_exec(c,
                      "WITH done AS ("
                      "  UPDATE outbox SET published_at = now()"
                      "   WHERE id = ANY($1::bigint[]) AND published_at IS NULL"
                      "  RETURNING topic, payload"
                      "), d AS ("
                      "  UPDATE jobs j SET state = 'dispatched', updated_at = now() FROM done"
                      "   WHERE done.topic = 'cadenza.jobs.generate'"
                      "     AND j.id = (done.payload->>'job_id')::uuid"
                      "     AND j.attempt = (done.payload->>'attempt')::int"
                      "     AND j.state = ANY($2::text[])"
                      "  RETURNING j.id, j.attempt"
                      ")"
                      "INSERT INTO job_events (job_id, attempt, event, state)"
                      " SELECT id, attempt, 'dispatched', 'dispatched' FROM d",
                      2, p, err) < 0
               ? -1
               : 0;
}

long cz_db_outbox_lock_generate(PGconn *c, const char *job_id, cz_err *err) {
    const char *p[] = {job_id};
    return cz_db_exec(c,
                      "SELECT 1 FROM outbox WHERE key = $1::text AND published_at IS NULL"
                      "   AND topic = 'cadenza.jobs.generate' FOR UPDATE",
                      1, p, err);
}

/* One read-only snapshot over the outbox, jobs and webhook_deliveries; it
 * lives here because the outbox is the first table it reads (db.h). */
PGresult *cz_db_outbox_backlogs(PGconn *c, cz_err *err) {
    return cz_db_query(c,
                       "SELECT (SELECT count(*) FROM outbox WHERE published_at IS NULL),"
                       " coalesce((SELECT extract(epoch FROM now() - min(updated_at)) FROM jobs"
                       "  WHERE state = 'in_review'), 0),"
                       " (SELECT count(*) FROM webhook_deliveries WHERE state = 'pending'),"
                       " coalesce((SELECT extract(epoch FROM now() - min(next_attempt_at))"
                       "  FROM webhook_deliveries WHERE state = 'pending'"
                       "   AND next_attempt_at <= now()), 0)",
                       0, NULL, err);
}
