/* The status-event consumer: see events.h.
 *
 * Poison messages (not JSON, unknown schema) are logged and skipped so they
 * never block a partition. A database outage is different: every later
 * event would fail the same way, so the consumer retries the same event
 * with a growing pause until Postgres answers again, and stops only when
 * asked to. */
#include "events.h"

#include <unistd.h>

#include "../common/db.h"
#include "../common/db_jobs.h"
#include "../common/event.h"
#include "../common/kafka.h"
#include "../common/log.h"

#define GROUP "cadenza-scheduler"

/* Applies one event, retrying through database outages.
 * @returns 0 when the event is done with (applied, no-op or poison). */
static int handle(const cz_config *cfg, PGconn **db, const rd_kafka_message_t *m,
                  atomic_bool *stop) {
    cz_err err;
    cz_event ev;
    if (cz_event_parse(m->payload, m->len, &ev, &err)) {
        cz_log_warn("skipping event at %s[%d]@%lld: %s", rd_kafka_topic_name(m->rkt), m->partition,
                    (long long)m->offset, err.msg);
        return 0;
    }
    unsigned pause_ms = 200;
    int rc = -1;
    while (!atomic_load(stop)) {
        if (!*db)
            *db = cz_db_connect(cfg->database_url, &err);
        if (*db && cz_db_ensure(*db) == 0 &&
            (rc = cz_db_job_apply(*db, &ev, cfg->lease_s, &err)) >= 0)
            break;
        cz_log_job(CZ_LOG_WARN, ev.job_id, NULL, "applying %s: %s; retrying",
                   cz_job_event_name(ev.type), err.msg);
        usleep(pause_ms * 1000);
        pause_ms = pause_ms < 5000 ? pause_ms * 2 : 5000;
    }
    if (rc == 1 && ev.type != CZ_EV_PROGRESS)
        cz_log_job(CZ_LOG_INFO, ev.job_id, NULL, "%s (attempt %d)", cz_job_event_name(ev.type),
                   ev.attempt);
    else if (rc == 0)
        cz_log_job(CZ_LOG_DEBUG, ev.job_id, NULL, "%s ignored: duplicate or late",
                   cz_job_event_name(ev.type));
    cz_event_free(&ev);
    return rc >= 0 ? 0 : -1;
}

void cz_events_run(const cz_config *cfg, atomic_bool *stop) {
    cz_err err;
    rd_kafka_t *rk = cz_kafka_consumer(cfg->kafka_brokers, GROUP, CZ_TOPIC_EVENTS, &err);
    if (!rk) {
        cz_log_error("events: %s", err.msg);
        return;
    }
    PGconn *db = NULL;
    while (!atomic_load(stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(rk, 500);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                cz_log_debug("events consumer: %s", rd_kafka_message_errstr(m));
        } else if (handle(cfg, &db, m, stop) == 0) {
            if (cz_kafka_store_offset(rk, m, &err))
                cz_log_warn("events: %s", err.msg);
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consumer_close(rk); /* commits the stored offsets */
    rd_kafka_destroy(rk);
    PQfinish(db);
}
