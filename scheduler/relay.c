/* The outbox relay.
 *
 * The API commits a job and its outbox row together; this loop moves the
 * row to Kafka. It reads unpublished rows in id order, produces each
 * (idempotent producer, key = job id), and marks rows published only when
 * their delivery report says Kafka has them. A crash between the report and
 * the mark re-publishes the row after restart: a duplicate, never a loss.
 * Consumers tolerate duplicates (guarded transitions).
 *
 * Rows handed to librdkafka but not yet reported are "in flight" and are
 * excluded from the next read, so a broker outage does not re-produce the
 * same rows every second; when a delivery finally fails (message timeout),
 * the row leaves the in-flight set and is produced again on the next pass.
 *
 * Only one relay publishes at a time: it holds a Postgres advisory lock for
 * as long as its session lives (common/db/leader.h); a second scheduler
 * waits as a standby, trying once a second.
 * Wake-ups come from LISTEN cadenza_outbox (a trigger NOTIFYs at commit),
 * with a one-second poll as the fallback. */
#include "scheduler/relay.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/db/db.h"
#include "common/db/leader.h"
#include "common/db/outbox.h"
#include "common/json.h"
#include "common/kafka.h"
#include "common/log.h"
#include "common/mem.h"

#define RELAY_BATCH 500
#define RELAY_MAX_IN_FLIGHT 20000
#define RELAY_POLL_MS 1000

/* A growable set of outbox ids; small, so linear scans are fine. */
typedef struct id_list {
    long long *v;
    size_t n, cap;
} id_list;

static void ids_add(id_list *l, long long id) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->v = cz_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = id;
}

static void ids_remove(id_list *l, long long id) {
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i] == id) {
            l->v[i] = l->v[--l->n];
            return;
        }
    }
}

/* Postgres array literal "{1,2,3}" of the ids; caller frees. */
static char *ids_literal(const id_list *l) {
    char *s = cz_malloc(l->n * 21 + 3), *w = s;
    *w++ = '{';
    for (size_t i = 0; i < l->n; i++)
        w += sprintf(w, i ? ",%lld" : "%lld", l->v[i]);
    *w++ = '}';
    *w = '\0';
    return s;
}

typedef struct relay {
    const cz_config *cfg;
    PGconn *db;
    cz_leader lead; /* CZ_LOCK_RELAY, and LISTEN cadenza_outbox */
    rd_kafka_t *producer;
    id_list in_flight, delivered;
    bool topics_ready;
    int64_t topics_next_try_ms;
    bool read_due;        /* news in the outbox: a NOTIFY, a full batch, a failed delivery */
    int64_t next_read_ms; /* the fallback poll (also finds retries whose backoff ended) */
} relay;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    relay *r = opaque;
    long long id = (long long)(intptr_t)m->_private;
    if (m->err) {
        /* Timed out or refused: release the row so the next pass re-produces it. */
        cz_log_warn("outbox row %lld not delivered: %s", id, rd_kafka_err2str(m->err));
        ids_remove(&r->in_flight, id);
        r->read_due = true;
    } else {
        ids_add(&r->delivered, id);
    }
}

static int produce_row(relay *r, PGresult *res, int i) {
    long long id = atoll(PQgetvalue(res, i, 0));
    cJSON *h = cJSON_Parse(PQgetvalue(res, i, 4));
    const char *attempt = cz_json_str(h, "attempt");
    cz_msg_meta meta = {
        .job_id = PQgetvalue(res, i, 2),
        .tenant = cz_json_str(h, "tenant"),
        .traceparent = cz_json_str(h, "traceparent"),
        .attempt = attempt ? atoi(attempt) : 1,
    };
    cz_err err;
    const char *payload = PQgetvalue(res, i, 3);
    int rc = cz_kafka_produce(r->producer, PQgetvalue(res, i, 1), &meta, payload,
                              (size_t)PQgetlength(res, i, 3), (void *)(intptr_t)id, &err);
    cJSON_Delete(h);
    if (rc) {
        cz_log_warn("outbox row %lld: %s", id, err.msg);
        return -1;
    }
    ids_add(&r->in_flight, id);
    return 0;
}

/* Records delivered rows as published. On a database error they stay in
 * `delivered` and the next pass tries again. */
static void mark_delivered(relay *r) {
    if (!r->delivered.n)
        return;
    char *lit = ids_literal(&r->delivered);
    cz_err err;
    if (cz_db_outbox_mark_published(r->db, lit, &err)) {
        cz_log_warn("marking outbox rows published: %s", err.msg);
    } else {
        for (size_t i = 0; i < r->delivered.n; i++)
            ids_remove(&r->in_flight, r->delivered.v[i]);
        r->delivered.n = 0;
    }
    free(lit);
}

/* Produces the next batch. @returns the number of rows read, -1 on error. */
static int publish_batch(relay *r) {
    if (r->in_flight.n >= RELAY_MAX_IN_FLIGHT)
        return 0;
    char *exclude = ids_literal(&r->in_flight);
    cz_err err;
    PGresult *res = cz_db_outbox_fetch(r->db, RELAY_BATCH, exclude, &err);
    free(exclude);
    if (!res) {
        cz_log_warn("reading the outbox: %s", err.msg);
        return -1;
    }
    int n = PQntuples(res);
    for (int i = 0; i < n; i++)
        if (produce_row(r, res, i))
            break; /* local queue full: the rest waits for the next pass */
    PQclear(res);
    return n;
}

/* Waits for a NOTIFY on the connection, at most @p ms.
 * @returns true when one (or more) arrived. */
static bool wait_notify(PGconn *c, int ms) {
    int fd = PQsocket(c);
    if (fd >= 0) {
        fd_set fds;
        FD_ZERO(&fds);
        FD_SET(fd, &fds);
        struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
        select(fd + 1, &fds, NULL, NULL, &tv);
    } else {
        usleep((useconds_t)ms * 1000);
    }
    PQconsumeInput(c);
    bool notified = false;
    PGnotify *n;
    while ((n = PQnotifies(c))) {
        notified = true;
        PQfreemem(n);
    }
    return notified;
}

/* Connects, takes the relay lock and listens. @returns 0 when this process is
 * the active relay. */
static int become_leader(relay *r) {
    cz_err err;
    if (!r->db && !(r->db = cz_db_connect(r->cfg->database_url, &err))) {
        cz_log_warn("relay: %s", err.msg);
        return -1;
    }
    if (cz_db_ensure(r->db))
        return -1;
    if (!cz_leader_try(&r->lead, r->db, &err)) {
        if (err.msg[0]) /* the lock was taken, LISTEN failed */
            cz_log_warn("relay: %s", err.msg);
        return -1;
    }
    cz_log_info("outbox relay active");
    return 0;
}

static void ensure_topics(relay *r) {
    int64_t now = cz_mono_ms();
    if (r->topics_ready || now < r->topics_next_try_ms)
        return;
    cz_err err;
    if (cz_kafka_ensure_topics(r->producer, r->cfg->kafka_partitions, 5000, &err)) {
        cz_log_warn("%s; retrying", err.msg);
        r->topics_next_try_ms = now + 5000;
        return;
    }
    r->topics_ready = true;
    cz_log_info("kafka topics ready (%d partitions)", r->cfg->kafka_partitions);
}

void cz_relay_run(const cz_config *cfg, atomic_bool *stop) {
    relay r = {.cfg = cfg, .lead = {CZ_LOCK_RELAY, "relay", "cadenza_outbox", false}};
    cz_err err;
    if (!(r.producer = cz_kafka_producer(cfg->kafka_brokers, on_delivery, &r, &err))) {
        cz_log_error("relay: %s", err.msg);
        return;
    }
    while (!atomic_load(stop)) {
        ensure_topics(&r);
        if (!cz_leader_holds(&r.lead, r.db)) {
            bool leader = become_leader(&r) == 0;
            r.read_due = leader; /* rows may have waited while nobody relayed */
            if (!leader) {
                sleep(1);
                continue;
            }
        }
        rd_kafka_poll(r.producer, 0);
        mark_delivered(&r);
        /* Read the outbox only when there may be something new in it: the
         * in-flight rows it would skip can number thousands in an outage. */
        int64_t now = cz_mono_ms();
        if (r.read_due || now >= r.next_read_ms) {
            r.read_due = false;
            r.next_read_ms = now + RELAY_POLL_MS;
            if (publish_batch(&r) == RELAY_BATCH) {
                r.read_due = true; /* more waiting: keep going */
                continue;
            }
        }
        /* Deliveries pending: come back soon for their reports. */
        int wait = r.in_flight.n ? 5 : (int)(r.next_read_ms - now);
        if (wait_notify(r.db, wait > 0 ? wait : 0))
            r.read_due = true;
    }
    /* Stop: give Kafka a few seconds for what is in flight, then record it. */
    rd_kafka_flush(r.producer, 10000);
    if (r.db && PQstatus(r.db) == CONNECTION_OK)
        mark_delivered(&r);
    if (r.in_flight.n)
        cz_log_warn("relay stopping with %zu rows unconfirmed; they will be re-published",
                    r.in_flight.n);
    rd_kafka_destroy(r.producer);
    PQfinish(r.db);
    free(r.in_flight.v);
    free(r.delivered.v);
}
