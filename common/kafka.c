/* Kafka producers, consumers and topics: see kafka.h. */
#include "common/kafka.h"

#include "common/log.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* librdkafka's own messages go through our logger, so every line on stderr
 * stays one JSON object. Its levels are syslog's: 0-3 errors, 4 warning. */
static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf) {
    cz_log_job(level <= 4   ? CZ_LOG_WARN
               : level <= 6 ? CZ_LOG_INFO
                            : CZ_LOG_DEBUG,
               NULL, NULL, "kafka %s %s: %s", rd_kafka_name(rk), fac, buf);
}

/* Eager rebalancing, as librdkafka would do it without a callback, plus a
 * log line: operators see when and how partitions move between workers. */
static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque) {
    (void)opaque;
    bool assigned = err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS;
    cz_log_info("kafka %s: %s %d partition%s", rd_kafka_name(rk), assigned ? "assigned" : "revoked",
                parts->cnt, parts->cnt == 1 ? "" : "s");
    rd_kafka_assign(rk, assigned ? parts : NULL);
    /* A consumer keeps a partition's paused flag after losing it: one that
     * a worker paused during a long job, lost in a rebalance and got back
     * later would stay paused for good, its messages never read. Whatever
     * is assigned starts resumed; a worker that is still busy pauses it
     * again (workers/pool.c). */
    if (assigned)
        rd_kafka_resume_partitions(rk, parts);
}

typedef struct setting {
    const char *name, *value;
} setting;

/* Every client: where the brokers are, and never give up on a broker that
 * is down (reconnect with a short backoff). */
static const setting common_settings[] = {
    {"client.id", "cadenza"},
    {"reconnect.backoff.max.ms", "2000"},
    {"log_level", "4"},
    /* An idle broker closing a connection is routine, not news. */
    {"log.connection.close", "false"},
    {NULL, NULL},
};

static int apply(rd_kafka_conf_t *conf, const setting *s, cz_err *err) {
    char errstr[512];
    for (; s->name; s++)
        if (rd_kafka_conf_set(conf, s->name, s->value, errstr, sizeof errstr) != RD_KAFKA_CONF_OK)
            return cz_err_set(err, "kafka config %s: %s", s->name, errstr);
    return 0;
}

/* Creates a client of @p type with the common settings, then @p extra. */
static rd_kafka_t *new_client(rd_kafka_type_t type, const char *brokers, const setting *extra,
                              cz_kafka_dr_fn *dr, void *opaque, cz_err *err) {
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const setting where[] = {{"bootstrap.servers", brokers}, {NULL, NULL}};
    if (apply(conf, where, err) || apply(conf, common_settings, err) || apply(conf, extra, err)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    rd_kafka_conf_set_log_cb(conf, on_log);
    if (type == RD_KAFKA_CONSUMER)
        rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    if (dr)
        rd_kafka_conf_set_dr_msg_cb(conf, dr);
    rd_kafka_conf_set_opaque(conf, opaque);
    char errstr[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, errstr, sizeof errstr);
    if (!rk) /* rd_kafka_new freed conf */
        cz_err_set(err, "kafka %s: %s", type == RD_KAFKA_PRODUCER ? "producer" : "consumer",
                   errstr);
    return rk;
}

rd_kafka_t *cz_kafka_producer(const char *brokers, cz_kafka_dr_fn *dr, void *opaque, cz_err *err) {
    static const setting settings[] = {
        {"enable.idempotence", "true"},
        {"acks", "all"},
        /* Latency over batching: a job's next stage waits on this message. */
        {"linger.ms", "1"},
        {"socket.nagle.disable", "true"},
        {"compression.type", "lz4"},
        /* A message waits up to 5 minutes for a broker; then its delivery
         * report fails and the caller decides (the relay re-publishes). */
        {"message.timeout.ms", "300000"},
        {NULL, NULL},
    };
    return new_client(RD_KAFKA_PRODUCER, brokers, settings, dr, opaque, err);
}

rd_kafka_t *cz_kafka_lag_client(const char *brokers, const char *group, cz_err *err) {
    const setting settings[] = {
        {"group.id", group},
        {"enable.auto.commit", "false"},
        {"allow.auto.create.topics", "false"},
        {NULL, NULL},
    };
    return new_client(RD_KAFKA_CONSUMER, brokers, settings, NULL, NULL, err);
}

int cz_kafka_group_lag(rd_kafka_t *rk, const char *topic, int timeout_ms, long long *lag,
                       long long *consumed, cz_err *err) {
    rd_kafka_topic_t *t = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t e =
        t ? rd_kafka_metadata(rk, 0, t, &md, timeout_ms) : RD_KAFKA_RESP_ERR__INVALID_ARG;
    if (t)
        rd_kafka_topic_destroy(t);
    if (e || md->topic_cnt != 1 || md->topics[0].err) {
        cz_err_set(err, "kafka metadata of %s: %s", topic,
                   rd_kafka_err2str(e               ? e
                                    : md->topic_cnt ? md->topics[0].err
                                                    : RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC));
        if (md)
            rd_kafka_metadata_destroy(md);
        return -1;
    }
    int n = md->topics[0].partition_cnt;
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(n);
    for (int i = 0; i < n; i++)
        rd_kafka_topic_partition_list_add(parts, topic, md->topics[0].partitions[i].id);
    rd_kafka_metadata_destroy(md);
    int rc = 0;
    *lag = *consumed = 0;
    if ((e = rd_kafka_committed(rk, parts, timeout_ms))) {
        rc = cz_err_set(err, "kafka committed offsets of %s: %s", topic, rd_kafka_err2str(e));
        goto out;
    }
    for (int i = 0; i < parts->cnt; i++) {
        int64_t lo, hi;
        rd_kafka_topic_partition_t *p = &parts->elems[i];
        if ((e = rd_kafka_query_watermark_offsets(rk, topic, p->partition, &lo, &hi, timeout_ms))) {
            rc = cz_err_set(err, "kafka watermarks of %s[%d]: %s", topic, p->partition,
                            rd_kafka_err2str(e));
            goto out;
        }
        int64_t at = p->err || p->offset < lo ? lo : p->offset;
        *lag += hi > at ? hi - at : 0;
        *consumed += at;
    }
out:
    rd_kafka_topic_partition_list_destroy(parts);
    return rc;
}

rd_kafka_t *cz_kafka_consumer(const char *brokers, const char *group, const char *topic,
                              cz_err *err) {
    const setting settings[] = {
        {"group.id", group},
        /* Eager assignor: cooperative-sticky has bugs in librdkafka 2.0.2. */
        {"partition.assignment.strategy", "roundrobin"},
        {"enable.auto.offset.store", "false"},
        {"enable.auto.commit", "true"},
        {"auto.commit.interval.ms", "1000"},
        {"auto.offset.reset", "earliest"},
        {"session.timeout.ms", "10000"},
        {"heartbeat.interval.ms", "2000"},
        /* Workers keep polling (partitions paused) while they work, so 30 s
         * of silence means a stuck process. It is also how long a rebalance
         * waits for a member that was killed (kill -9 sends no LeaveGroup),
         * so it is kept short: the group recovers in 30 s, not minutes. */
        {"max.poll.interval.ms", "30000"},
        /* A waiting stage should not sit out the broker's default 500 ms. */
        {"fetch.wait.max.ms", "10"},
        {"socket.nagle.disable", "true"},
        /* Topics may be created by the scheduler after a worker subscribes. */
        {"topic.metadata.refresh.interval.ms", "5000"},
        {"allow.auto.create.topics", "false"},
        {NULL, NULL},
    };
    rd_kafka_t *rk = new_client(RD_KAFKA_CONSUMER, brokers, settings, NULL, NULL, err);
    if (!rk)
        return NULL;
    rd_kafka_poll_set_consumer(rk);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, topic, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(rk, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        cz_err_set(err, "kafka subscribe %s: %s", topic, rd_kafka_err2str(e));
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

int cz_kafka_ensure_topics(rd_kafka_t *rk, int partitions, int timeout_ms, cz_err *err) {
    static const char *const names[] = {CZ_TOPIC_GENERATE, CZ_TOPIC_POST, CZ_TOPIC_EVENTS,
                                        CZ_TOPIC_DLQ};
    enum { N = sizeof names / sizeof *names };
    rd_kafka_NewTopic_t *topics[N];
    char errstr[512];
    for (int i = 0; i < N; i++)
        topics[i] = rd_kafka_NewTopic_new(names[i], partitions, 1, errstr, sizeof errstr);

    rd_kafka_AdminOptions_t *opts = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(opts, timeout_ms, errstr, sizeof errstr);
    rd_kafka_AdminOptions_set_request_timeout(opts, timeout_ms, errstr, sizeof errstr);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, topics, N, opts, q);

    int rc = 0;
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, timeout_ms + 2000);
    if (!ev) {
        rc = cz_err_set(err, "kafka: no answer creating topics within %d ms", timeout_ms);
    } else if (rd_kafka_event_error(ev)) {
        rc = cz_err_set(err, "kafka: creating topics: %s", rd_kafka_event_error_string(ev));
    } else {
        size_t n;
        const rd_kafka_topic_result_t **res =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        for (size_t i = 0; i < n && !rc; i++) {
            rd_kafka_resp_err_t e = rd_kafka_topic_result_error(res[i]);
            if (e && e != RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS)
                rc = cz_err_set(err, "kafka: creating topic %s: %s",
                                rd_kafka_topic_result_name(res[i]),
                                rd_kafka_topic_result_error_string(res[i]));
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(opts);
    rd_kafka_NewTopic_destroy_array(topics, N);
    return rc;
}

int cz_kafka_produce(rd_kafka_t *rk, const char *topic, const cz_msg_meta *meta,
                     const char *payload, size_t len, void *msg_opaque, cz_err *err) {
    char attempt[16];
    snprintf(attempt, sizeof attempt, "%d", meta->attempt);
    rd_kafka_headers_t *h = rd_kafka_headers_new(4);
    rd_kafka_header_add(h, "job_id", -1, meta->job_id, -1);
    rd_kafka_header_add(h, "attempt", -1, attempt, -1);
    if (meta->tenant)
        rd_kafka_header_add(h, "tenant", -1, meta->tenant, -1);
    if (meta->traceparent)
        rd_kafka_header_add(h, "traceparent", -1, meta->traceparent, -1);

    rd_kafka_resp_err_t e = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(meta->job_id, strlen(meta->job_id)),
        RD_KAFKA_V_VALUE((void *)payload, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_HEADERS(h), RD_KAFKA_V_OPAQUE(msg_opaque), RD_KAFKA_V_END);
    if (e) {
        rd_kafka_headers_destroy(h); /* ownership passes only on success */
        return cz_err_set(err, "kafka produce to %s: %s", topic, rd_kafka_err2str(e));
    }
    return 0;
}

int cz_kafka_header(const rd_kafka_message_t *m, const char *name, char *out, size_t n) {
    rd_kafka_headers_t *h = NULL;
    const void *v;
    size_t len;
    if (rd_kafka_message_headers(m, &h) || rd_kafka_header_get_last(h, name, &v, &len))
        return -1;
    if (len >= n)
        len = n - 1;
    memcpy(out, v, len);
    out[len] = '\0';
    return 0;
}

static int one_partition(rd_kafka_t *rk, const rd_kafka_message_t *m, int64_t offset, bool seek,
                         cz_err *err) {
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, rd_kafka_topic_name(m->rkt), m->partition)->offset =
        offset;
    rd_kafka_error_t *e = NULL;
    rd_kafka_resp_err_t rc = seek ? RD_KAFKA_RESP_ERR_NO_ERROR : rd_kafka_offsets_store(rk, l);
    if (seek)
        e = rd_kafka_seek_partitions(rk, l, 5000);
    if (!rc && !e && l->elems[0].err)
        rc = l->elems[0].err;
    int out = 0;
    if (e) {
        out = cz_err_set(err, "kafka seek: %s", rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
    } else if (rc) {
        out = cz_err_set(err, "kafka %s: %s", seek ? "seek" : "offset store", rd_kafka_err2str(rc));
    }
    rd_kafka_topic_partition_list_destroy(l);
    return out;
}

int cz_kafka_store_offset(rd_kafka_t *rk, const rd_kafka_message_t *m, cz_err *err) {
    return one_partition(rk, m, m->offset + 1, false, err);
}

int cz_kafka_rewind(rd_kafka_t *rk, const rd_kafka_message_t *m, cz_err *err) {
    return one_partition(rk, m, m->offset, true, err);
}
