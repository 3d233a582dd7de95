/* The worker loop: see pool.h. */
#include "workers/pool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/event.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/redis.h"

struct cz_worker {
    const cz_config *cfg;
    const cz_pool_def *pool;
    atomic_bool *stop;
    rd_kafka_t *consumer, *producer;
    char name[96];
    int undelivered; /* delivery failures since the job began */
    bool busy;       /* a job is in hand */
    bool paused;     /* ...and it ran long enough to pause the partitions */
    int64_t job_started_ms;
    redisContext *redis;    /* cancel flags; NULL while Redis is unreachable */
    int64_t redis_retry_ms; /* when to try connecting again */
};

const cz_config *cz_worker_config(const cz_worker *w) {
    return w->cfg;
}

void *cz_worker_state(const cz_worker *w) {
    return w->pool->state;
}

const char *cz_worker_name(const cz_worker *w) {
    return w->name;
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque) {
    (void)rk;
    cz_worker *w = opaque;
    if (m->err) {
        w->undelivered++;
        cz_log_warn("delivery to %s failed: %s", rd_kafka_topic_name(m->rkt),
                    rd_kafka_err2str(m->err));
    }
}

cJSON *cz_worker_event(cz_worker *w, const cz_job_msg *job, cz_job_event type) {
    return cz_event_new(type, job->job_id, job->attempt, w->name);
}

int cz_worker_send(cz_worker *w, const cz_job_msg *job, const char *topic, const cJSON *msg) {
    char *text = cz_json_print(msg);
    if (!text)
        return -1;
    cz_msg_meta meta = {
        .job_id = job->job_id,
        .tenant = job->tenant,
        .traceparent = job->traceparent[0] ? job->traceparent : NULL,
        .attempt = job->attempt,
    };
    cz_err err;
    int rc;
    /* A full local queue drains as the broker acknowledges: wait a little. */
    for (int tries = 0;
         (rc = cz_kafka_produce(w->producer, topic, &meta, text, strlen(text), NULL, &err)) &&
         tries < 50;
         tries++)
        rd_kafka_poll(w->producer, 100);
    free(text);
    if (rc)
        cz_log_job(CZ_LOG_ERROR, job->job_id, job->trace_id, "%s", err.msg);
    return rc;
}

int cz_worker_emit(cz_worker *w, const cz_job_msg *job, cz_job_event type, const char *stage) {
    cJSON *ev = cz_worker_event(w, job, type);
    cJSON_AddStringToObject(ev, "stage", stage);
    int rc = cz_worker_send(w, job, CZ_TOPIC_EVENTS, ev);
    cJSON_Delete(ev);
    return rc;
}

int cz_worker_fail(cz_worker *w, const cz_job_msg *job, const char *failure_class,
                   const char *detail) {
    cz_log_job(CZ_LOG_WARN, job->job_id, job->trace_id, "failed (%s): %s", failure_class, detail);
    cJSON *ev = cz_worker_event(w, job, CZ_EV_FAILED);
    cJSON *f = cJSON_AddObjectToObject(ev, "failure");
    cJSON_AddStringToObject(f, "class", failure_class);
    cJSON_AddStringToObject(f, "detail", detail);
    int rc = cz_worker_send(w, job, CZ_TOPIC_EVENTS, ev);
    cJSON_Delete(ev);
    return rc;
}

bool cz_worker_canceled(cz_worker *w, const cz_job_msg *job) {
    int64_t now = cz_mono_ms();
    if (!w->redis && now >= w->redis_retry_ms) {
        cz_err err;
        if (!(w->redis = cz_redis_connect(w->cfg->redis_url, 200, &err))) {
            cz_log_debug("cancel flags unavailable: %s", err.msg);
            w->redis_retry_ms = now + 5000;
        }
    }
    if (!w->redis)
        return false;
    redisReply *r = redisCommand(w->redis, "EXISTS cadenza:cancel:%s", job->job_id);
    if (!r) { /* connection lost: forget it and reconnect later */
        redisFree(w->redis);
        w->redis = NULL;
        w->redis_retry_ms = now + 1000;
        return false;
    }
    bool canceled = r->type == REDIS_REPLY_INTEGER && r->integer > 0;
    freeReplyObject(r);
    return canceled;
}

bool cz_worker_stopping(cz_worker *w) {
    return atomic_load(w->stop);
}

/* Pausing or resuming every assigned partition. */
static void pause_all(cz_worker *w, bool pause) {
    rd_kafka_topic_partition_list_t *parts = NULL;
    if (rd_kafka_assignment(w->consumer, &parts) || !parts)
        return;
    if (pause)
        rd_kafka_pause_partitions(w->consumer, parts);
    else
        rd_kafka_resume_partitions(w->consumer, parts);
    rd_kafka_topic_partition_list_destroy(parts);
}

/* Puts back a message that arrived while the worker is busy, to be read
 * again once it is free: the partitions are paused, then the message's
 * partition seeks back to it. In that order: pausing records the position
 * after the last message handed over as where to resume, so a seek made
 * before it is forgotten and the message skipped (librdkafka issue 3471,
 * still so in 2.0.2). */
static void put_back(cz_worker *w, const rd_kafka_message_t *m) {
    cz_err err;
    pause_all(w, true);
    w->paused = true;
    if (cz_kafka_rewind(w->consumer, m, &err))
        cz_log_warn("%s", err.msg);
}

/* A job that takes longer than this pauses the partitions and keeps polling.
 * Shorter ones don't: pausing restarts every fetcher, which costs more than
 * a short job takes. */
#define PAUSE_AFTER_MS 1000

void cz_worker_poll(cz_worker *w) {
    rd_kafka_poll(w->producer, 0);
    if (!w->busy)
        return;
    if (!w->paused) {
        if (cz_mono_ms() - w->job_started_ms < PAUSE_AFTER_MS)
            return;
        pause_all(w, true);
        w->paused = true;
    }
    /* Keeps the consumer alive in its group (and lets rebalances finish)
     * while a long job is in hand. Paused partitions deliver nothing; one
     * that a rebalance assigned meanwhile might: put its message back. */
    rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, 0);
    if (m && !m->err)
        put_back(w, m);
    if (m)
        rd_kafka_message_destroy(m);
}

/* Reads the fields every job message has. @returns 0, or -1 for a message
 * that is not a job message at all (poison: skipped). */
static int parse_job(const rd_kafka_message_t *m, cJSON **root, cz_job_msg *job) {
    memset(job, 0, sizeof *job);
    *root = cJSON_ParseWithLength(m->payload, m->len);
    job->msg = *root;
    job->job_id = cz_json_str(*root, "job_id");
    job->attempt = (int)cz_json_num(*root, "attempt", 0);
    job->tenant = cz_json_str(*root, "tenant");
    job->trace_id = cz_json_str(*root, "trace_id");
    job->request = cJSON_GetObjectItemCaseSensitive(*root, "request");
    if (cz_kafka_header(m, "traceparent", job->traceparent, sizeof job->traceparent))
        job->traceparent[0] = '\0';
    return cz_uuid_valid(job->job_id) && job->attempt >= 1 && cJSON_IsObject(job->request) ? 0 : -1;
}

/* The worker's own metrics: jobs by outcome, time per job, busy or not. */
static void count_job(const cz_worker *w, const char *outcome, double seconds) {
    char l[128];
    snprintf(l, sizeof l, "pool=\"%s\",outcome=\"%s\"", w->pool->name, outcome);
    cz_metric_add(cz_metric_counter("cadenza_worker_jobs_total",
                                    "Job messages this worker handled, by outcome (done, "
                                    "handed_back, redo).",
                                    l),
                  1);
    snprintf(l, sizeof l, "pool=\"%s\"", w->pool->name);
    cz_metric_observe(cz_metric_histogram("cadenza_worker_job_seconds",
                                          "Wall time this worker spent per job message.", l,
                                          cz_metrics_latency_buckets, cz_metrics_latency_nbuckets),
                      seconds);
    cz_metric_add(cz_metric_counter("cadenza_worker_busy_seconds_total",
                                    "Wall time this worker spent on jobs (compute seconds).", l),
                  seconds);
}

static void set_busy(const cz_worker *w, bool busy) {
    char l[64];
    snprintf(l, sizeof l, "pool=\"%s\"", w->pool->name);
    cz_metric_set(cz_metric_gauge("cadenza_worker_busy", "1 while a job is in hand.", l), busy);
}

/* A message in hand: the consumed message and its parsed job. */
typedef struct held {
    rd_kafka_message_t *m;
    cJSON *root;
    cz_job_msg job;
    int rc; /* the stage's answer */
} held;

/* Parses @p m into @p h. A malformed message is skipped (its offset
 * stored, so it is never read again) and the message freed.
 * @returns 0 for a job to do. */
static int take(cz_worker *w, rd_kafka_message_t *m, held *h) {
    cz_err err;
    h->m = m;
    if (parse_job(m, &h->root, &h->job) == 0)
        return 0;
    cz_log_warn("skipping malformed message at %s[%d]@%lld", rd_kafka_topic_name(m->rkt),
                m->partition, (long long)m->offset);
    cJSON_Delete(h->root);
    cz_kafka_store_offset(w->consumer, m, &err);
    rd_kafka_message_destroy(m);
    return -1;
}

/* Settles one job of a finished batch, in consumption order: its offset is
 * stored once everything it produced is on the broker; otherwise it is
 * handed back (stopping) or read again. A partition read again from one
 * job on stores nothing more in this batch: the jobs after it come again. */
static void settle(cz_worker *w, held *h, bool delivered, int32_t *redo, int *nredo, double s) {
    cz_err err;
    const cz_job_msg *job = &h->job;
    bool again = false;
    for (int i = 0; i < *nredo; i++)
        again |= redo[i] == h->m->partition;
    if (!again && h->rc == 0 && delivered) {
        if (cz_kafka_store_offset(w->consumer, h->m, &err))
            cz_log_job(CZ_LOG_WARN, job->job_id, job->trace_id, "%s", err.msg);
        count_job(w, "done", s);
    } else if (atomic_load(w->stop)) {
        /* Handed back: the offset stays unstored and another worker takes it. */
        cz_log_job(CZ_LOG_INFO, job->job_id, job->trace_id, "stopping: job handed back");
        count_job(w, "handed_back", s);
    } else if (!again) {
        count_job(w, "redo", s);
        cz_log_job(CZ_LOG_WARN, job->job_id, job->trace_id,
                   "job not finished or not handed on; it will be done again");
        if (cz_kafka_rewind(w->consumer, h->m, &err))
            cz_log_job(CZ_LOG_WARN, job->job_id, job->trace_id, "%s", err.msg);
        redo[(*nredo)++] = h->m->partition;
    } else {
        count_job(w, "redo", s);
    }
}

/* How many jobs each run took together (1 for a job alone). */
static void count_batch(const cz_worker *w, int n) {
    static const double sizes[] = {1, 2, 4, 8, 16, 32, 64};
    char l[64];
    snprintf(l, sizeof l, "pool=\"%s\"", w->pool->name);
    cz_metric_observe(cz_metric_histogram("cadenza_worker_batch_size",
                                          "Jobs this worker ran together in one batch.", l, sizes,
                                          sizeof sizes / sizeof sizes[0]),
                      n);
}

/* Runs the jobs in hand (one, or a batch of one key) and settles each. */
static void run(cz_worker *w, held *h, int n) {
    count_batch(w, n);
    w->undelivered = 0;
    w->busy = true;
    w->job_started_ms = cz_mono_ms();
    set_busy(w, true);
    if (n == 1) {
        h[0].rc = w->pool->stage(w, &h[0].job);
    } else {
        cz_job_msg *jobs = cz_malloc(sizeof *jobs * (size_t)n);
        int *rcs = cz_malloc(sizeof *rcs * (size_t)n);
        for (int i = 0; i < n; i++)
            jobs[i] = h[i].job;
        w->pool->batch(w, jobs, n, rcs);
        for (int i = 0; i < n; i++)
            h[i].rc = rcs[i];
        free(jobs);
        free(rcs);
    }
    /* Everything these jobs produced must be on the broker before we move on. */
    /* Short enough to stay well inside max.poll.interval.ms (30 s). */
    rd_kafka_resp_err_t flushed = rd_kafka_flush(w->producer, 10000);
    bool delivered = flushed == RD_KAFKA_RESP_ERR_NO_ERROR && w->undelivered == 0;
    double seconds = (double)(cz_mono_ms() - w->job_started_ms) / 1000.0;
    int32_t *redo = cz_malloc(sizeof *redo * (size_t)n);
    int nredo = 0;
    for (int i = 0; i < n; i++)
        settle(w, &h[i], delivered, redo, &nredo, seconds);
    free(redo);
    if (nredo && !atomic_load(w->stop))
        sleep(1);
    w->busy = false;
    set_busy(w, false);
    if (w->paused)
        pause_all(w, false);
    w->paused = false;
    for (int i = 0; i < n; i++) {
        cJSON_Delete(h[i].root);
        rd_kafka_message_destroy(h[i].m);
    }
}

/* Gathers more jobs with the first one's batch key: until max_batch are in
 * hand or max_queue_delay_ms has passed since the first arrived. A message
 * of another key is put back, to be read first once this batch is done.
 * @returns how many jobs are in hand. */
static int gather(cz_worker *w, held *h, const char *key) {
    int n = 1;
    int64_t deadline = cz_mono_ms() + w->pool->max_queue_delay_ms;
    while (n < w->pool->max_batch && !atomic_load(w->stop)) {
        int64_t left = deadline - cz_mono_ms();
        if (left <= 0)
            break;
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w->consumer, (int)left);
        rd_kafka_poll(w->producer, 0);
        if (!m)
            continue;
        if (m->err) {
            rd_kafka_message_destroy(m);
            continue;
        }
        if (take(w, m, &h[n]))
            continue;
        const char *k = w->pool->batch_key(w->pool->state, &h[n].job);
        if (k && !strcmp(k, key)) {
            n++;
            continue;
        }
        put_back(w, m); /* the partitions resume when the batch is done */
        cJSON_Delete(h[n].root);
        rd_kafka_message_destroy(m);
        break;
    }
    return n;
}

/* Takes @p m and whatever joins its batch, and does them. */
static void handle(cz_worker *w, rd_kafka_message_t *m) {
    int cap = w->pool->batch ? w->pool->max_batch : 1;
    held *h = cz_calloc((size_t)(cap > 1 ? cap : 1), sizeof *h);
    if (take(w, m, &h[0]) == 0) {
        const char *key = cap > 1 ? w->pool->batch_key(w->pool->state, &h[0].job) : NULL;
        w->paused = false;
        run(w, h, key ? gather(w, h, key) : 1);
    }
    free(h);
}

int cz_pool_run(const cz_config *cfg, const cz_pool_def *pool, atomic_bool *stop) {
    cz_worker w = {.cfg = cfg, .pool = pool, .stop = stop};
    char host[64] = "localhost";
    gethostname(host, sizeof host - 1);
    snprintf(w.name, sizeof w.name, "%s:%ld", host, (long)getpid());
    char group[64];
    snprintf(group, sizeof group, "cadenza-%s", pool->name);

    cz_err err;
    if (!(w.producer = cz_kafka_producer(cfg->kafka_brokers, on_delivery, &w, &err)) ||
        !(w.consumer = cz_kafka_consumer(cfg->kafka_brokers, group, pool->topic, &err))) {
        cz_log_error("%s", err.msg);
        if (w.producer)
            rd_kafka_destroy(w.producer);
        return 1;
    }
    if (cz_kafka_ensure_topics(w.producer, cfg->kafka_partitions, 5000, &err))
        cz_log_warn("%s (the scheduler creates them too)", err.msg);
    cz_log_info("%s worker %s consuming %s", pool->name, w.name, pool->topic);
    set_busy(&w, false);
    if (cz_metrics_serve(cz_env("CADENZA_METRICS_LISTEN", NULL), &err))
        cz_log_warn("%s: serving no metrics", err.msg);

    while (!atomic_load(stop)) {
        rd_kafka_message_t *m = rd_kafka_consumer_poll(w.consumer, 500);
        rd_kafka_poll(w.producer, 0);
        if (!m)
            continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                cz_log_debug("consumer: %s", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
        } else {
            handle(&w, m); /* takes m */
        }
    }
    cz_log_info("stopping: committing offsets");
    rd_kafka_flush(w.producer, 10000);
    rd_kafka_consumer_close(w.consumer);
    rd_kafka_destroy(w.consumer);
    rd_kafka_destroy(w.producer);
    redisFree(w.redis);
    return 0;
}
