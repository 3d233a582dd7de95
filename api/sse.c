/* Live job events: see sse.h. */
#include "api/sse.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/db/db.h"
#include "common/db/jobs.h"
#include "common/ids.h"
#include "common/job_state.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/redis.h"

#define SSE_BATCH 500             /* history rows read per job per look */
#define SSE_TICK_MS 250           /* the hub's longest sleep */
#define SSE_POLL_MS 500           /* how often every job is read while Redis is down */
#define SSE_SAFETY_MS 5000        /* ... and while it is up (changes not announced) */
#define SSE_RETRY_MS 2000         /* the reconnection delay suggested to clients */
#define SSE_MAX_PENDING (1 << 20) /* a client this far behind is cut off */

typedef struct stream {
    cz_sse *hub;
    char job_id[CZ_UUID_LEN];
    long long last_id; /* last event queued; -1 before the submission event */
    cz_buf buf;        /* bytes queued; from off on not yet taken by libmicrohttpd */
    size_t off;
    bool look;   /* the hub should read the job's history */
    bool done;   /* the job ended (or the hub stops): end after buf */
    bool closed; /* libmicrohttpd let go of it: the hub frees it */
    struct stream *next;
} stream;

struct cz_sse {
    const cz_config *cfg;
    pthread_t thread;
    pthread_mutex_t mu;    /* guards the list and every stream in it */
    pthread_cond_t queued; /* broadcast when bytes are queued or streams end */
    stream *streams;
    int wake; /* eventfd: a new stream wants its first look */
    atomic_bool stop;
};

/* ---- queueing ------------------------------------------------------------ */

/* Appends @p text to @p s; under mu. The stream's thread is woken by the
 * caller's broadcast. */
static void queue(stream *s, const char *text, size_t n) {
    if (s->closed)
        return;
    if (s->buf.len - s->off + n > SSE_MAX_PENDING) { // a client that does not read
        s->done = true;
        return;
    }
    if (s->off > 0 && s->off == s->buf.len) {
        cz_buf_reset(&s->buf);
        s->off = 0;
    }
    cz_buf_append(&s->buf, text, n);
}

/* libmicrohttpd asks for the next bytes of a stream, on the connection's
 * own thread (a thread per connection), which waits here until the hub
 * queues some: at the latest the next heartbeat. */
static ssize_t reader(void *cls, uint64_t pos, char *out, size_t max) {
    (void)pos;
    stream *s = cls;
    cz_sse *hub = s->hub;
    pthread_mutex_lock(&hub->mu);
    while (s->buf.len == s->off && !s->done)
        pthread_cond_wait(&hub->queued, &hub->mu);
    ssize_t n = MHD_CONTENT_READER_END_OF_STREAM;
    if (s->buf.len > s->off) {
        n = (ssize_t)(s->buf.len - s->off < max ? s->buf.len - s->off : max);
        memcpy(out, s->buf.data + s->off, (size_t)n);
        s->off += (size_t)n;
    }
    pthread_mutex_unlock(&hub->mu);
    return n;
}

/* libmicrohttpd is done with a stream (client gone, or the stream ended). */
static void release(void *cls) {
    stream *s = cls;
    cz_sse *hub = s->hub;
    pthread_mutex_lock(&hub->mu);
    s->closed = true;
    pthread_mutex_unlock(&hub->mu);
}

/* ---- the hub --------------------------------------------------------------- */

/* Whether the state named @p state is one a job ends in. */
static bool terminal(const char *state) {
    int s = cz_job_state_parse(state);
    return s >= 0 && cz_job_state_terminal((cz_job_state)s);
}

/* One SSE event from a history row: id, event type, data (a JSON object). */
static void format_event(char *out, size_t n, const char *job, PGresult *r, int i) {
    const char *event = PQgetvalue(r, i, 1), *state = PQgetvalue(r, i, 2);
    bool progress = !strcmp(event, "progress");
    char extra[160] = "";
    if (!PQgetisnull(r, i, 4))
        snprintf(extra, sizeof extra, ",\"stage\":\"%.64s\"", PQgetvalue(r, i, 4));
    if (!PQgetisnull(r, i, 5))
        snprintf(extra + strlen(extra), sizeof extra - strlen(extra), ",\"percent\":%.32s",
                 PQgetvalue(r, i, 5));
    snprintf(out, n,
             "id: %s\nevent: %s\ndata: {\"job_id\":\"%s\",\"event\":\"%.40s\",\"state\":"
             "\"%.20s\"%s,\"at\":\"%s\"}\n\n",
             PQgetvalue(r, i, 0), progress ? "progress" : "state", job, event, state, extra,
             PQgetvalue(r, i, 3));
}

/* Reads the history of @p job after @p after and queues it on every live
 * stream of the job that has not had it yet. @returns -1 when Postgres failed. */
static int look(cz_sse *hub, PGconn *db, const char *job, long long after) {
    cz_err err;
    PGresult *r = cz_db_job_history(db, job, after < 0 ? 0 : after, SSE_BATCH, &err);
    if (!r) {
        cz_log_warn("event streams: reading job %s: %s", job, err.msg);
        return -1;
    }
    int rows = PQntuples(r);
    bool events = rows > 0 && !PQgetisnull(r, 0, 0);
    bool ended = rows > 0 && terminal(PQgetvalue(r, 0, 6)) && (!events || rows < SSE_BATCH);
    pthread_mutex_lock(&hub->mu);
    for (stream *s = hub->streams; s; s = s->next) {
        if (strcmp(s->job_id, job) || s->closed || s->done)
            continue;
        char text[1024];
        if (s->last_id < 0 && rows > 0) { // the submission, which has no history row
            snprintf(text, sizeof text,
                     "retry: %d\nid: 0\nevent: state\ndata: {\"job_id\":\"%s\",\"event\":"
                     "\"submitted\",\"state\":\"queued\",\"at\":\"%s\"}\n\n",
                     SSE_RETRY_MS, job, PQgetvalue(r, 0, 7));
            queue(s, text, strlen(text));
            s->last_id = 0;
        }
        for (int i = 0; events && i < rows; i++) {
            long long id = atoll(PQgetvalue(r, i, 0));
            if (id <= s->last_id)
                continue;
            format_event(text, sizeof text, job, r, i);
            queue(s, text, strlen(text));
            s->last_id = id;
        }
        s->done = ended;
        s->look = events && rows == SSE_BATCH; // more to read
    }
    pthread_cond_broadcast(&hub->queued);
    pthread_mutex_unlock(&hub->mu);
    PQclear(r);
    return 0;
}

/* Marks the streams of the job a channel name announces. */
static void announced(cz_sse *hub, const char *channel) {
    const char *job = channel + strlen(CZ_JOB_CHANNEL);
    pthread_mutex_lock(&hub->mu);
    for (stream *s = hub->streams; s; s = s->next)
        if (!strcmp(s->job_id, job))
            s->look = true;
    pthread_mutex_unlock(&hub->mu);
}

/* Frees streams libmicrohttpd has let go of; under mu. */
static void reap(cz_sse *hub) {
    for (stream **p = &hub->streams; *p;) {
        stream *s = *p;
        if (s->closed) {
            *p = s->next;
            cz_buf_free(&s->buf);
            free(s);
        } else {
            p = &s->next;
        }
    }
}

/* The jobs to read now (each once), with the oldest position among their streams. */
typedef struct wanted {
    char job[CZ_UUID_LEN];
    long long after;
} wanted;

static size_t collect(cz_sse *hub, bool all, wanted **out) {
    pthread_mutex_lock(&hub->mu);
    reap(hub);
    size_t n = 0, cap = 0;
    wanted *w = NULL;
    for (stream *s = hub->streams; s; s = s->next) {
        if (s->done || !(all || s->look))
            continue;
        s->look = false;
        size_t i = 0;
        while (i < n && strcmp(w[i].job, s->job_id))
            i++;
        if (i < n) {
            w[i].after = s->last_id < w[i].after ? s->last_id : w[i].after;
            continue;
        }
        if (n == cap) {
            cap = cap * 2 + 16;
            w = cz_realloc(w, cap * sizeof *w);
        }
        snprintf(w[n].job, sizeof w[n].job, "%s", s->job_id);
        w[n++].after = s->last_id;
    }
    pthread_mutex_unlock(&hub->mu);
    *out = w;
    return n;
}

static void heartbeat(cz_sse *hub) {
    static const char ping[] = ": heartbeat\n\n";
    pthread_mutex_lock(&hub->mu);
    for (stream *s = hub->streams; s; s = s->next)
        if (!s->done)
            queue(s, ping, sizeof ping - 1);
    pthread_cond_broadcast(&hub->queued);
    pthread_mutex_unlock(&hub->mu);
}

/* Reads what Redis has sent, without blocking; @returns -1 when the link broke. */
static int drain(cz_sse *hub, redisContext *rc) {
    if (redisBufferRead(rc) != REDIS_OK)
        return -1;
    for (;;) {
        redisReply *m = NULL;
        if (redisGetReplyFromReader(rc, (void **)&m) != REDIS_OK)
            return -1;
        if (!m)
            return 0;
        // pmessage, pattern, channel, payload
        if (m->type == REDIS_REPLY_ARRAY && m->elements == 4 &&
            m->element[2]->type == REDIS_REPLY_STRING)
            announced(hub, m->element[2]->str);
        freeReplyObject(m);
    }
}

static redisContext *subscribe(const cz_config *cfg) {
    cz_err err;
    redisContext *rc = cz_redis_connect(cfg->redis_url, 200, &err);
    redisReply *r = rc ? redisCommand(rc, "PSUBSCRIBE " CZ_JOB_CHANNEL "*") : NULL;
    if (!r) {
        cz_log_debug("event streams: no Redis (%s); reading Postgres every %d ms",
                     rc ? rc->errstr : err.msg, SSE_POLL_MS);
        redisFree(rc);
        return NULL;
    }
    freeReplyObject(r);
    return rc;
}

static void *hub_run(void *arg) {
    cz_sse *hub = arg;
    PGconn *db = NULL;
    redisContext *rc = NULL;
    int64_t now = cz_mono_ms(), next_sub = now, next_all = now, next_beat = now;
    int64_t beat_ms = (int64_t)hub->cfg->sse_heartbeat_s * 1000;
    while (!atomic_load(&hub->stop)) {
        now = cz_mono_ms();
        if (!rc && now >= next_sub) {
            if (!(rc = subscribe(hub->cfg)))
                next_sub = now + 2000;
            next_all = now; // a look at everything missed while it was down
        }
        struct pollfd fds[2] = {{.fd = hub->wake, .events = POLLIN},
                                {.fd = rc ? rc->fd : -1, .events = POLLIN}};
        if (poll(fds, 2, SSE_TICK_MS) > 0) {
            uint64_t v;
            if (fds[0].revents & POLLIN && read(hub->wake, &v, sizeof v) < 0 && errno != EAGAIN)
                cz_log_warn("event streams: wake: %s", strerror(errno));
            if (rc && fds[1].revents && drain(hub, rc) < 0) {
                cz_log_warn("event streams: lost Redis; reading Postgres every %d ms", SSE_POLL_MS);
                redisFree(rc);
                rc = NULL;
                next_sub = cz_mono_ms() + 1000;
            }
        }
        now = cz_mono_ms();
        bool all = now >= next_all;
        if (all)
            next_all = now + (rc ? SSE_SAFETY_MS : SSE_POLL_MS);
        wanted *w = NULL;
        size_t n = collect(hub, all, &w);
        if (n && !db) {
            cz_err err;
            if (!(db = cz_db_connect(hub->cfg->database_url, &err)))
                cz_log_warn("event streams: %s", err.msg);
        }
        for (size_t i = 0; db && i < n; i++)
            if (look(hub, db, w[i].job, w[i].after) < 0 && cz_db_ensure(db) != 0) {
                PQfinish(db);
                db = NULL;
            }
        free(w);
        if (now >= next_beat) {
            heartbeat(hub);
            next_beat = now + beat_ms;
        }
    }
    redisFree(rc);
    PQfinish(db);
    return NULL;
}

cz_sse *cz_sse_start(const cz_config *cfg, cz_err *err) {
    cz_sse *hub = cz_calloc(1, sizeof *hub);
    hub->cfg = cfg;
    pthread_mutex_init(&hub->mu, NULL);
    pthread_cond_init(&hub->queued, NULL);
    hub->wake = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (hub->wake < 0 || pthread_create(&hub->thread, NULL, hub_run, hub)) {
        cz_err_set(err, "cannot start the event stream thread");
        if (hub->wake >= 0)
            close(hub->wake);
        free(hub);
        return NULL;
    }
    return hub;
}

void cz_sse_stop(cz_sse *hub) {
    if (!hub)
        return;
    atomic_store(&hub->stop, true);
    pthread_join(hub->thread, NULL);
    pthread_mutex_lock(&hub->mu);
    for (stream *s = hub->streams; s; s = s->next)
        s->done = true; // their threads end the streams, so the connections can close
    pthread_cond_broadcast(&hub->queued);
    pthread_mutex_unlock(&hub->mu);
}

void cz_sse_free(cz_sse *hub) {
    if (!hub)
        return;
    for (stream *s = hub->streams, *next; s; s = next) {
        next = s->next;
        cz_buf_free(&s->buf);
        free(s);
    }
    close(hub->wake);
    pthread_cond_destroy(&hub->queued);
    pthread_mutex_destroy(&hub->mu);
    free(hub);
}

/* ---- the endpoint ------------------------------------------------------------ */

enum MHD_Result cz_api_jobs_events_get(cz_api *api, cz_http_req *r, const char *id) {
    if (!cz_uuid_valid(id))
        return cz_http_problem(r, 404, "not-found", "no such job", NULL);
    const char *last = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Last-Event-ID");
    long long after = -1;
    if (last) {
        char *end;
        errno = 0;
        after = strtoll(last, &end, 10);
        if (!*last || *end || errno || after < 0)
            return cz_http_problem(r, 400, "invalid-header",
                                   "Last-Event-ID must be the id of an event this stream sent",
                                   "Last-Event-ID");
    }
    cz_err err;
    PGconn *c = cz_db_pool_get(api->db);
    int found = cz_db_job_exists(c, r->key.tenant, id, &err);
    cz_db_pool_put(api->db, c);
    if (found < 0)
        return cz_http_problem(r, 503, "unavailable", "the job store is unavailable", NULL);
    if (!found)
        return cz_http_problem(r, 404, "not-found", "no such job", NULL);

    stream *s = cz_calloc(1, sizeof *s);
    s->hub = api->sse;
    s->last_id = after;
    s->look = true;
    snprintf(s->job_id, sizeof s->job_id, "%s", id);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, reader, s, release);
    if (!resp) {
        free(s);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    pthread_mutex_lock(&api->sse->mu);
    s->next = api->sse->streams;
    api->sse->streams = s;
    pthread_mutex_unlock(&api->sse->mu);
    uint64_t one = 1;
    if (write(api->sse->wake, &one, sizeof one) < 0)
        cz_log_warn("event streams: wake: %s", strerror(errno));
    enum MHD_Result res = cz_http_queue(r, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return res;
}
