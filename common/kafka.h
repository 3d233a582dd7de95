/* Kafka over librdkafka 2.0.2: the topics, and producers and consumers
 * configured the way every Cadenza process needs them.
 *
 * Producers are idempotent (acks=all, ordered, no duplicates from internal
 * retries). Consumers use the eager round-robin assignor (cooperative-sticky
 * has bugs in 2.0.2), start from the earliest offset, and never store an
 * offset automatically: a process stores a message's offset only once the
 * work it caused is durable (events acknowledged, rows committed), and the
 * background auto-commit then commits what was stored. A crash therefore
 * replays work, never skips it. */
#ifndef CZ_KAFKA_H
#define CZ_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "common/err.h"

#define CZ_TOPIC_GENERATE "cadenza.jobs.generate"
#define CZ_TOPIC_POST "cadenza.jobs.post"
#define CZ_TOPIC_EVENTS "cadenza.jobs.events"
#define CZ_TOPIC_DLQ "cadenza.jobs.dlq"

/** A delivery report callback, as librdkafka's rd_kafka_conf_set_dr_msg_cb takes it. */
typedef void cz_kafka_dr_fn(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque);

/** Headers every job message carries (W3C traceparent, job id, attempt, tenant). */
typedef struct cz_msg_meta {
    const char *job_id;
    const char *tenant;
    const char *traceparent;
    int attempt;
} cz_msg_meta;

/**
 * @brief Creates an idempotent producer for @p brokers. @p dr (may be NULL) is
 * called from rd_kafka_poll()/rd_kafka_flush() with each delivery report.
 * @returns the handle (rd_kafka_destroy it), or NULL with @p err filled.
 */
rd_kafka_t *cz_kafka_producer(const char *brokers, cz_kafka_dr_fn *dr, void *opaque, cz_err *err);

/**
 * @brief Creates a handle that reads @p group's committed offsets without
 * joining the group (for measuring lag; never subscribe it).
 * @returns the handle (rd_kafka_destroy it), or NULL with @p err filled.
 */
rd_kafka_t *cz_kafka_lag_client(const char *brokers, const char *group, cz_err *err);

/**
 * @brief The lag of the lag client's group on @p topic: the sum over
 * partitions of the high watermark less the committed offset (the low
 * watermark where nothing is committed), and in @p consumed the sum of the
 * committed offsets (its growth is the group's throughput).
 * @returns 0, or -1 with @p err filled.
 */
int cz_kafka_group_lag(rd_kafka_t *rk, const char *topic, int timeout_ms, long long *lag,
                       long long *consumed, cz_err *err);

/**
 * @brief Creates a consumer in @p group subscribed to @p topic.
 * @returns the handle (rd_kafka_consumer_close, then rd_kafka_destroy), or NULL.
 */
rd_kafka_t *cz_kafka_consumer(const char *brokers, const char *group, const char *topic,
                              cz_err *err);

/**
 * @brief Creates the four job topics with @p partitions partitions each if they
 * do not exist yet. Waits at most @p timeout_ms.
 * @returns 0, or -1 with @p err filled (e.g. the broker is unreachable).
 */
int cz_kafka_ensure_topics(rd_kafka_t *rk, int partitions, int timeout_ms, cz_err *err);

/**
 * @brief Enqueues @p payload on @p topic keyed by the job id, with @p meta as
 * headers; @p msg_opaque comes back in the delivery report. Non-blocking.
 * @returns 0, or -1 with @p err filled (e.g. the local queue is full).
 */
int cz_kafka_produce(rd_kafka_t *rk, const char *topic, const cz_msg_meta *meta,
                     const char *payload, size_t len, void *msg_opaque, cz_err *err);

/**
 * @brief Stores the offset after @p m, to be committed by auto-commit: call
 * once the work the message caused is durable.
 * @returns 0, or -1 with @p err filled (e.g. the partition was revoked).
 */
int cz_kafka_store_offset(rd_kafka_t *rk, const rd_kafka_message_t *m, cz_err *err);

/**
 * @brief Seeks the consumer back to @p m so it is delivered again: for work
 * that could not be finished now (a broker down) and must not be skipped.
 * @returns 0, or -1 with @p err filled.
 */
int cz_kafka_rewind(rd_kafka_t *rk, const rd_kafka_message_t *m, cz_err *err);

/**
 * @brief Reads header @p name of @p m into @p out (NUL-terminated, truncated).
 * @returns 0, or -1 when absent.
 */
int cz_kafka_header(const rd_kafka_message_t *m, const char *name, char *out, size_t n);

#endif
