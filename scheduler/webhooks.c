/* The webhook dispatcher.
 *
 * Deliveries are rows in Postgres, written in the transaction that changed
 * the job (common/db/webhooks.c), so they exist exactly when the change
 * does. This thread turns due rows into HTTP requests: it reads the rows
 * that are due (next_attempt_at <= now), signs each body (Standard
 * Webhooks, common/webhook.c), sends it with libcurl's multi interface,
 * and records the attempt: the log row, and the delivery's new state and
 * due time from the schedule, Retry-After and the status (2xx succeeded,
 * 410 gone: the endpoint is disabled).
 *
 * Nothing marks a row as taken in the database. One dispatcher is active
 * at a time (an advisory lock, like the outbox relay's: common/db/leader.h;
 * a second scheduler stands by), and it keeps the ids it is sending, and
 * those it has sent but not yet recorded, out of its reads. A crash
 * therefore leaves every unfinished delivery pending and due, and the next
 * active dispatcher sends it again with the same webhook-id and body: a
 * duplicate at worst, never a loss. Receivers deduplicate on webhook-id.
 *
 * Concurrency is bounded twice: CADENZA_WEBHOOK_CONCURRENCY attempts in
 * flight overall, and CADENZA_WEBHOOK_ENDPOINT_CONCURRENCY per receiver
 * (scheme, host and port), so one slow receiver cannot take every slot.
 * Due deliveries are loaded a little ahead into a queue (at most twice a
 * receiver's limit in hand, in flight and queued together), so a slot
 * that frees up is refilled at once, without waiting for Postgres; reads
 * leave out receivers that have enough in hand.
 *
 * Safety: redirects are not followed, only http and https are spoken, no
 * proxy from the environment is used, and every connection's address is
 * checked by the address guard (common/netguard.h) in curl's open-socket
 * callback, so the address actually connected to is the one judged. Each
 * attempt ends after CADENZA_WEBHOOK_TIMEOUT_S (15 s) at most.
 *
 * Wake-ups: a trigger NOTIFYs cadenza_webhooks when deliveries commit and
 * the connection's socket is one of the descriptors curl_multi_poll()
 * watches, so a new delivery goes out within a millisecond or two of the
 * job's commit; retries are read when their time comes (the dispatcher
 * knows the earliest it scheduled), and a one-second poll catches the rest. */
#include "scheduler/webhooks.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/db/db.h"
#include "common/db/leader.h"
#include "common/db/webhooks.h"
#include "common/ids.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/metrics.h"
#include "common/netguard.h"
#include "common/webhook.h"

#define POLL_MS 1000
#define EXCERPT_MAX 512
/* Finished attempts held while Postgres cannot take them; no new ones start
 * beyond this. */
#define UNRECORDED_MAX 4096
#define STOP_GRACE_MS 2000
/* Finished attempts are written together, on a second connection and
 * without waiting for the answer, so sending never waits on a commit: a
 * batch goes when the one before it is committed and RECORD_EVERY_MS have
 * passed or RECORD_BATCH attempts have gathered. A delivery is out
 * already; only its log line and state wait. */
#define RECORD_EVERY_MS 10
#define RECORD_BATCH 128

typedef struct transfer {
    CURL *easy;
    struct curl_slist *headers;
    const cz_netguard *guard;
    char id[CZ_UUID_LEN];
    char job_id[CZ_UUID_LEN];
    char *url;
    char *origin;
    char *payload;
    char *secret;
    char *previous; /* the rotated-out secret while it still signs, or NULL */
    int attempt;    /* over the delivery's whole life */
    int tries;      /* since its creation or last redelivery: the schedule's index */
    char started_at[CZ_RFC3339_LEN];
    int64_t started_us;
    char refused[CZ_NETGUARD_WHY]; /* set when the guard refused an address */
    char excerpt[EXCERPT_MAX + 1];
    size_t excerpt_len;
    char errbuf[CURL_ERROR_SIZE];
} transfer;

typedef struct receiver {
    char *origin;
    int active; /* attempts in flight */
    int queued; /* loaded, waiting for a slot */
} receiver;

struct cz_webhooks {
    const cz_config *cfg;
    cz_netguard guard;
    cz_webhook_schedule schedule;
    PGconn *db;
    int db_pid;           /* the session the statements were prepared in */
    cz_leader lead;       /* CZ_LOCK_WEBHOOKS, and LISTEN cadenza_webhooks */
    int64_t next_lead_ms; /* the next try to lead: at most one a second */
    CURLM *multi;
    transfer **active;
    int n_active;
    transfer **queue; /* loaded and due, oldest first, not yet started */
    int n_queue, queue_max;
    receiver *receivers; /* receivers with attempts in flight or queued */
    int n_receivers;
    PGconn *record_db;
    int record_pid;
    cJSON *unrecorded; /* finished attempts not yet sent to Postgres */
    int64_t unrecorded_since_ms;
    cJSON *recording; /* the batch sent and not yet committed, or NULL */
    bool read_due;
    int64_t next_read_ms;
};

/* ---- set-up ------------------------------------------------------------------ */

cz_webhooks *cz_webhooks_new(const cz_config *cfg, cz_err *err) {
    cz_webhooks *w = cz_calloc(1, sizeof *w);
    w->cfg = cfg;
    w->lead = (cz_leader){CZ_LOCK_WEBHOOKS, "webhook dispatcher", "cadenza_webhooks", false};
    if (cz_netguard_parse(cfg->webhook_allow, &w->guard, err) ||
        cz_webhook_schedule_parse(cfg->webhook_schedule, &w->schedule, err)) {
        free(w);
        return NULL;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(w->multi = curl_multi_init())) {
        cz_err_set(err, "cannot initialise libcurl");
        free(w);
        return NULL;
    }
    /* Keep a connection per slot for reuse: receivers see keep-alive. */
    curl_multi_setopt(w->multi, CURLMOPT_MAXCONNECTS, (long)cfg->webhook_concurrency);
    w->queue_max = 2 * cfg->webhook_concurrency;
    w->active = cz_calloc((size_t)cfg->webhook_concurrency, sizeof *w->active);
    w->queue = cz_calloc((size_t)w->queue_max, sizeof *w->queue);
    /* A receiver has an attempt in flight or queued: at most both sets' sizes. */
    w->receivers =
        cz_calloc((size_t)(cfg->webhook_concurrency + w->queue_max), sizeof *w->receivers);
    w->unrecorded = cJSON_CreateArray();
    return w;
}

void cz_webhooks_free(cz_webhooks *w) {
    if (!w)
        return;
    if (w->multi)
        curl_multi_cleanup(w->multi);
    free(w->active);
    free(w->queue);
    free(w->receivers);
    cJSON_Delete(w->unrecorded);
    cJSON_Delete(w->recording);
    PQfinish(w->db);
    PQfinish(w->record_db);
    free(w);
}

/* ---- receivers: concurrency per scheme://host:port ------------------------------ */

static receiver *receiver_find(cz_webhooks *w, const char *origin) {
    for (int i = 0; i < w->n_receivers; i++)
        if (!strcmp(w->receivers[i].origin, origin))
            return &w->receivers[i];
    return NULL;
}

/* The receiver of @p origin, made when it has nothing in hand yet. */
static receiver *receiver_get(cz_webhooks *w, const char *origin) {
    receiver *r = receiver_find(w, origin);
    if (r)
        return r;
    r = &w->receivers[w->n_receivers++];
    *r = (receiver){.origin = cz_strdup(origin)};
    return r;
}

/* Forgets a receiver with nothing in flight or queued. */
static void receiver_tidy(cz_webhooks *w, receiver *r) {
    if (r->active > 0 || r->queued > 0)
        return;
    free(r->origin);
    *r = w->receivers[--w->n_receivers];
}

/* How many of a receiver's deliveries may be in hand (in flight and queued). */
static int receiver_cap(const cz_webhooks *w) {
    return 2 * w->cfg->webhook_endpoint_concurrency;
}

/* ---- Postgres array literals ------------------------------------------------------ */

/* Appends @p s to the array literal being built (opened with '{'), quoted. */
static void literal_add(cz_buf *b, const char *s) {
    if (b->len > 1)
        cz_buf_putc(b, ',');
    cz_buf_putc(b, '"');
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            cz_buf_putc(b, '\\');
        cz_buf_putc(b, *s);
    }
    cz_buf_putc(b, '"');
}

/* Closes the literal. @returns its text, which the caller frees. */
static char *literal_close(cz_buf *b) {
    cz_buf_putc(b, '}');
    return cz_buf_take(b);
}

/* The deliveries not to read again: in flight, or finished but not yet
 * committed as such. */
static char *busy_ids(cz_webhooks *w) {
    cz_buf b = {0};
    cz_buf_putc(&b, '{');
    for (int i = 0; i < w->n_active; i++)
        literal_add(&b, w->active[i]->id);
    for (int i = 0; i < w->n_queue; i++)
        literal_add(&b, w->queue[i]->id);
    const cJSON *a;
    cJSON_ArrayForEach(a, w->unrecorded) {
        literal_add(&b, cJSON_GetObjectItem(a, "id")->valuestring);
    }
    cJSON_ArrayForEach(a, w->recording) {
        literal_add(&b, cJSON_GetObjectItem(a, "id")->valuestring);
    }
    return literal_close(&b);
}

static int unrecorded_count(const cz_webhooks *w) {
    return cJSON_GetArraySize(w->unrecorded) + cJSON_GetArraySize(w->recording);
}

/* The receivers with enough in hand: reads leave them out. */
static char *saturated_receivers(cz_webhooks *w) {
    cz_buf b = {0};
    cz_buf_putc(&b, '{');
    for (int i = 0; i < w->n_receivers; i++)
        if (w->receivers[i].active + w->receivers[i].queued >= receiver_cap(w))
            literal_add(&b, w->receivers[i].origin);
    return literal_close(&b);
}

/* ---- one attempt ------------------------------------------------------------------ */

/* curl calls this for every connection it opens: the address is the one it
 * is about to connect to, after resolution, so the guard judges exactly
 * what is reached. */
static curl_socket_t open_socket(void *clientp, curlsocktype purpose,
                                 struct curl_sockaddr *address) {
    transfer *t = clientp;
    if (purpose != CURLSOCKTYPE_IPCXN)
        return CURL_SOCKET_BAD;
    if (!cz_netguard_allows(t->guard, &address->addr, t->refused, sizeof t->refused))
        return CURL_SOCKET_BAD;
    return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

/* Keeps the start of the response for the log; reads and drops the rest so
 * the connection can be reused. */
static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
    transfer *t = userdata;
    size_t len = size * n, room = EXCERPT_MAX - t->excerpt_len;
    size_t take = len < room ? len : room;
    memcpy(t->excerpt + t->excerpt_len, data, take);
    t->excerpt_len += take;
    return len;
}

static void transfer_free(transfer *t) {
    if (!t)
        return;
    if (t->easy)
        curl_easy_cleanup(t->easy);
    curl_slist_free_all(t->headers);
    free(t->url);
    free(t->origin);
    free(t->payload);
    free(t->secret);
    free(t->previous);
    free(t);
}

/* The signature header: one signature per live secret (two while a
 * rotation's old secret still signs). */
static int signature_header(const char *secret, const char *previous, const char *id, long long ts,
                            const char *body, char *out, size_t n) {
    char a[CZ_WEBHOOK_SIG_LEN], b[CZ_WEBHOOK_SIG_LEN];
    if (cz_webhook_sign(secret, id, ts, body, strlen(body), a))
        return -1;
    if (previous && *previous && cz_webhook_sign(previous, id, ts, body, strlen(body), b) == 0)
        snprintf(out, n, "webhook-signature: %s %s", a, b);
    else
        snprintf(out, n, "webhook-signature: %s", a);
    return 0;
}

static int add_header(transfer *t, const char *line) {
    struct curl_slist *l = curl_slist_append(t->headers, line);
    if (!l)
        return -1;
    t->headers = l;
    return 0;
}

static void outcome(cz_webhooks *w, transfer *t, long code, int status, int64_t retry_after,
                    const char *error);

static char *copy(PGresult *res, int i, int col) {
    if (PQgetisnull(res, i, col))
        return NULL;
    return cz_strdup(PQgetvalue(res, i, col));
}

/* Loaded row @p i of @p res, queued to be started when its receiver has a
 * free slot. */
static void transfer_queue(cz_webhooks *w, PGresult *res, int i) {
    transfer *t = cz_calloc(1, sizeof *t);
    t->guard = &w->guard;
    snprintf(t->id, sizeof t->id, "%s", PQgetvalue(res, i, 0));
    snprintf(t->job_id, sizeof t->job_id, "%s", PQgetvalue(res, i, 8));
    t->url = copy(res, i, 1);
    t->origin = copy(res, i, 2);
    t->payload = copy(res, i, 3);
    t->secret = copy(res, i, 6);
    t->previous = copy(res, i, 7);
    int attempts = atoi(PQgetvalue(res, i, 4)), round_start = atoi(PQgetvalue(res, i, 5));
    t->attempt = attempts + 1;
    t->tries = attempts - round_start + 1;
    w->queue[w->n_queue++] = t;
    receiver_get(w, t->origin)->queued++;
}

/* Signs @p t now (its timestamp is the attempt's) and starts it.
 * @returns 0, or -1 when it could not be sent (recorded as an attempt). */
static int transfer_launch(cz_webhooks *w, transfer *t) {
    long long ts = (long long)time(NULL);
    char line[160], sig[2 * CZ_WEBHOOK_SIG_LEN + 32];
    bool ok = t->secret && (t->easy = curl_easy_init()) &&
              signature_header(t->secret, t->previous, t->id, ts, t->payload, sig, sizeof sig) == 0;
    snprintf(line, sizeof line, "webhook-id: %s", t->id);
    ok = ok && !add_header(t, line);
    snprintf(line, sizeof line, "webhook-timestamp: %lld", ts);
    ok = ok && !add_header(t, line) && !add_header(t, sig) &&
         !add_header(t, "Content-Type: application/json") &&
         !add_header(t, "User-Agent: Cadenza-Webhooks/1") && !add_header(t, "Expect:");
    if (!ok) {
        /* Logged as an attempt that sent nothing, so the schedule, not every
         * read, decides when it is tried again. */
        const char *why = !t->secret ? "not sent: no signing secret"
                          : t->easy  ? "not sent: the signing secret cannot be decoded"
                                     : "not sent: out of memory";
        cz_log_job(CZ_LOG_ERROR, t->job_id, NULL, "webhook %s: %s", t->id, why);
        outcome(w, t, 0, 0, -1, why);
        return -1;
    }
    CURL *e = t->easy;
    long timeout_ms = (long)w->cfg->webhook_timeout_s * 1000;
    curl_easy_setopt(e, CURLOPT_URL, t->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, t->payload);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(t->payload));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->headers);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROXY, ""); /* never a proxy from the environment */
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, t);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->errbuf);
    curl_easy_setopt(e, CURLOPT_PRIVATE, t);
    cz_now_rfc3339(t->started_at);
    t->started_us = cz_mono_us();
    if (curl_multi_add_handle(w->multi, e) != CURLM_OK) {
        outcome(w, t, 0, 0, -1, "not sent: libcurl refused the transfer");
        return -1;
    }
    w->active[w->n_active++] = t;
    receiver_get(w, t->origin)->active++;
    return 0;
}

/* Starts queued deliveries, oldest first, while there are free slots
 * overall and at their receivers. */
static void launch_queued(cz_webhooks *w) {
    const int max = w->cfg->webhook_concurrency, per = w->cfg->webhook_endpoint_concurrency;
    int kept = 0;
    for (int i = 0; i < w->n_queue; i++) {
        transfer *t = w->queue[i];
        receiver *r = receiver_find(w, t->origin);
        if (w->n_active >= max || r->active >= per) {
            w->queue[kept++] = t;
            continue;
        }
        r->queued--;
        if (transfer_launch(w, t)) {
            receiver_tidy(w, r);
            transfer_free(t);
        }
    }
    w->n_queue = kept;
}

/* Replaces bytes that are not printable UTF-8 text with '?', so a binary or
 * malformed response still fits a text column and a JSON string. */
static void printable(char *s, size_t len) {
    for (size_t i = 0; i < len;) {
        unsigned char c = (unsigned char)s[i];
        size_t n = c < 0x80             ? 1
                   : (c & 0xe0) == 0xc0 ? 2
                   : (c & 0xf0) == 0xe0 ? 3
                   : (c & 0xf8) == 0xf0 ? 4
                                        : 0;
        bool ok = n > 0 && i + n <= len && (c >= 0x20 || c == '\n' || c == '\t') && c != 0x7f;
        for (size_t k = 1; ok && k < n; k++)
            ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
        if (n > 1 && ok && c < 0xc2)
            ok = false; /* overlong */
        if (!ok) {
            s[i++] = '?';
            continue;
        }
        i += n;
    }
}

/* Queues the record of attempt @p t: HTTP @p code as received (0: none),
 * @p status as judged (0 unless the exchange completed), the receiver's
 * Retry-After (-1: none) and @p error (NULL: none). */
static void outcome(cz_webhooks *w, transfer *t, long code, int status, int64_t retry_after,
                    const char *error) {
    int64_t latency_ms = t->started_us ? (cz_mono_us() - t->started_us + 500) / 1000 : 0;
    uint64_t dice;
    cz_random_bytes(&dice, sizeof dice);
    int64_t delay = 0;
    cz_webhook_verdict v =
        cz_webhook_decide(&w->schedule, t->tries, status, retry_after, dice, &delay);
    if (v == CZ_WEBHOOK_RETRY) {
        int64_t due = cz_mono_ms() + delay;
        if (due < w->next_read_ms)
            w->next_read_ms = due;
    }
    static const char *const verdicts[] = {"succeeded", "retry", "exhausted", "gone"};
    char l[40];
    snprintf(l, sizeof l, "outcome=\"%s\"", verdicts[v]);
    cz_metric_add(cz_metric_counter("cadenza_webhook_attempts_total",
                                    "Webhook delivery attempts, by what followed: succeeded, "
                                    "retry, exhausted (gave up), gone (410, endpoint disabled).",
                                    l),
                  1);
    cz_metric_observe(cz_metric_histogram("cadenza_webhook_attempt_seconds",
                                          "Webhook attempts from connect to answer (or error).", "",
                                          cz_metrics_latency_buckets, cz_metrics_latency_nbuckets),
                      (double)latency_ms / 1000.0);
    if (v != CZ_WEBHOOK_SUCCEEDED)
        cz_log_job(CZ_LOG_INFO, t->job_id, NULL, "webhook %s attempt %d: %s; %s", t->id, t->attempt,
                   error ? error : "failed",
                   v == CZ_WEBHOOK_RETRY  ? "will retry"
                   : v == CZ_WEBHOOK_GONE ? "410 Gone: endpoint disabled"
                                          : "giving up");

    printable(t->excerpt, t->excerpt_len);
    t->excerpt[t->excerpt_len] = '\0';
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "id", t->id);
    cJSON_AddNumberToObject(o, "attempt", t->attempt);
    if (!t->started_at[0])
        cz_now_rfc3339(t->started_at);
    cJSON_AddStringToObject(o, "started_at", t->started_at);
    if (code)
        cJSON_AddNumberToObject(o, "status", (double)code);
    else
        cJSON_AddNullToObject(o, "status");
    cJSON_AddNumberToObject(o, "latency_ms", (double)latency_ms);
    if (error)
        cJSON_AddStringToObject(o, "error", error);
    else
        cJSON_AddNullToObject(o, "error");
    cJSON_AddStringToObject(o, "excerpt", t->excerpt);
    cJSON_AddStringToObject(o, "state", cz_webhook_verdict_state(v));
    cJSON_AddNumberToObject(o, "delay_ms", (double)delay);
    cJSON_AddBoolToObject(o, "gone", v == CZ_WEBHOOK_GONE);
    if (!cJSON_GetArraySize(w->unrecorded))
        w->unrecorded_since_ms = cz_mono_ms();
    cJSON_AddItemToArray(w->unrecorded, o);
}

/* A finished attempt: what came back, and what it means. Its slot is free
 * again, so the next turn reads what is due for it. */
static void transfer_done(cz_webhooks *w, transfer *t, CURLcode result) {
    /* Its receiver's queue running low: read more for it. */
    receiver *r = receiver_find(w, t->origin);
    if (r && r->queued < w->cfg->webhook_endpoint_concurrency)
        w->read_due = true;
    long code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    int status = result == CURLE_OK ? (int)code : 0; /* a cut-short answer is no answer */

    int64_t retry_after = -1;
    struct curl_header *h = NULL;
    if (code && curl_easy_header(t->easy, "Retry-After", 0, CURLH_HEADER, -1, &h) == CURLHE_OK)
        retry_after = cz_webhook_retry_after_ms(h->value, time(NULL));

    char error[CURL_ERROR_SIZE + CZ_NETGUARD_WHY + 64] = "";
    if (result != CURLE_OK && t->refused[0])
        snprintf(error, sizeof error, "refused by the address guard: %s", t->refused);
    else if (result != CURLE_OK)
        snprintf(error, sizeof error, "%s", t->errbuf[0] ? t->errbuf : curl_easy_strerror(result));
    else if (status >= 300 && status < 400)
        snprintf(error, sizeof error, "HTTP %d: redirects are not followed", status);
    else if (status < 200 || status >= 300)
        snprintf(error, sizeof error, "HTTP %d", status);
    outcome(w, t, code, status, retry_after, error[0] ? error : NULL);
}

/* Removes @p t from the active set and frees it. */
static void transfer_drop(cz_webhooks *w, transfer *t) {
    curl_multi_remove_handle(w->multi, t->easy);
    receiver *r = receiver_find(w, t->origin);
    r->active--;
    receiver_tidy(w, r);
    for (int i = 0; i < w->n_active; i++) {
        if (w->active[i] == t) {
            w->active[i] = w->active[--w->n_active];
            break;
        }
    }
    transfer_free(t);
}

static void reap(cz_webhooks *w) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        transfer *t = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&t);
        CURLcode result = m->data.result; /* m is invalid once the handle is removed */
        transfer_done(w, t, result);
        transfer_drop(w, t);
    }
}

/* ---- Postgres: leadership, reads, records ------------------------------------------ */

/* Prepares the statements once per session (a reconnection is a new one).
 * @returns 0 when @p c is ready. */
static int ready(PGconn *c, int *pid) {
    if (cz_db_ensure(c))
        return -1;
    if (PQbackendPID(c) == *pid)
        return 0;
    cz_err err;
    if (cz_db_webhook_prepare(c, &err)) {
        cz_log_warn("webhooks: %s", err.msg);
        return -1;
    }
    *pid = PQbackendPID(c);
    return 0;
}

static bool lead(cz_webhooks *w) {
    if (cz_leader_holds(&w->lead, w->db))
        return true;
    int64_t now = cz_mono_ms();
    if (now < w->next_lead_ms)
        return false;
    w->next_lead_ms = now + 1000;
    cz_err err;
    if (!w->db && !(w->db = cz_db_connect(w->cfg->database_url, &err))) {
        cz_log_warn("webhooks: %s", err.msg);
        return false;
    }
    if (ready(w->db, &w->db_pid) || !cz_leader_try(&w->lead, w->db, &err))
        return false;
    cz_log_info("webhook dispatcher active (%d in flight at most, %d per receiver)",
                w->cfg->webhook_concurrency, w->cfg->webhook_endpoint_concurrency);
    w->read_due = true; /* deliveries may have waited while nobody dispatched */
    return true;
}

/* A batch that failed for want of Postgres goes back in front of what
 * gathered since. One that Postgres refused is dropped: its deliveries are
 * still pending and will be sent again, which is better than wedging every
 * later record behind it. */
static void recording_failed(cz_webhooks *w, const cz_err *err) {
    if (PQstatus(w->record_db) == CONNECTION_OK) {
        cz_log_error("Postgres refused %d webhook attempt records (%s); their deliveries stay "
                     "pending and will be sent again",
                     cJSON_GetArraySize(w->recording), err->msg);
        cJSON_Delete(w->recording);
        w->recording = NULL;
        return;
    }
    cz_log_warn("recording %d webhook attempts: %s; retrying in a second",
                cJSON_GetArraySize(w->recording), err->msg);
    cJSON *later = w->unrecorded;
    w->unrecorded = w->recording;
    w->recording = NULL;
    cJSON *a;
    while ((a = cJSON_DetachItemFromArray(later, 0)))
        cJSON_AddItemToArray(w->unrecorded, a);
    cJSON_Delete(later);
    w->unrecorded_since_ms = cz_mono_ms() + 1000 - RECORD_EVERY_MS;
}

/* Moves finished attempts towards Postgres: collects the answer to the batch
 * in flight, and sends the next batch when it is time. With @p wait (on
 * stop) it waits for the batch in flight, then sends what is left once and
 * waits for that. */
static void record(cz_webhooks *w, bool wait) {
    cz_err err;
    if (w->recording) {
        int rc = cz_db_webhook_record_result(w->record_db, wait, &err);
        if (rc > 0) {
            cJSON_Delete(w->recording);
            w->recording = NULL;
        } else if (rc < 0) {
            recording_failed(w, &err);
        }
    }
    int n = cJSON_GetArraySize(w->unrecorded);
    if (w->recording || !n)
        return;
    if (!wait && n < RECORD_BATCH && cz_mono_ms() - w->unrecorded_since_ms < RECORD_EVERY_MS)
        return;
    if (!w->record_db && !(w->record_db = cz_db_connect(w->cfg->database_url, &err))) {
        cz_log_warn("webhooks: %s", err.msg);
        w->unrecorded_since_ms = cz_mono_ms() + 1000 - RECORD_EVERY_MS;
        return;
    }
    if (ready(w->record_db, &w->record_pid)) {
        w->unrecorded_since_ms = cz_mono_ms() + 1000 - RECORD_EVERY_MS;
        return;
    }
    char *json = cz_json_print(w->unrecorded);
    w->recording = w->unrecorded;
    w->unrecorded = cJSON_CreateArray();
    if (cz_db_webhook_record_send(w->record_db, json, &err))
        recording_failed(w, &err);
    free(json);
    if (wait && w->recording) {
        int rc = cz_db_webhook_record_result(w->record_db, true, &err);
        if (rc > 0) {
            cJSON_Delete(w->recording);
            w->recording = NULL;
        } else {
            recording_failed(w, &err);
        }
    }
}

/* Reads due deliveries into the queue, as many as the receivers' shares
 * allow (receiver_cap in hand each): first the due ids and their receivers
 * (narrow rows), then the bodies of the ones chosen. @returns true when
 * more may be due: every row read was taken and the read was full. (Rows
 * left for a receiver with enough in hand are read again when its queue
 * runs low.) */
static bool dispatch(cz_webhooks *w, int limit) {
    char *ids = busy_ids(w), *full = saturated_receivers(w);
    cz_err err;
    PGresult *due = cz_db_webhook_due(w->db, limit, ids, full, &err);
    free(ids);
    free(full);
    if (!due) {
        cz_log_warn("reading due webhooks: %s", err.msg);
        return false;
    }
    int n = PQntuples(due);
    cz_buf picks = {0};
    cz_buf_putc(&picks, '{');
    int picked = 0, n_seen = 0;
    receiver *seen = cz_calloc((size_t)n + 1, sizeof *seen); /* this read's picks per receiver */
    for (int i = 0; i < n; i++) {
        char *origin = PQgetvalue(due, i, 1);
        receiver *r = NULL;
        for (int k = 0; k < n_seen && !r; k++)
            r = !strcmp(seen[k].origin, origin) ? &seen[k] : NULL;
        if (!r) {
            receiver *known = receiver_find(w, origin);
            r = &seen[n_seen++];
            r->origin = origin;
            r->active = known ? known->active + known->queued : 0;
        }
        if (r->active >= receiver_cap(w))
            continue;
        r->active++;
        literal_add(&picks, PQgetvalue(due, i, 0));
        picked++;
    }
    free(seen);
    char *chosen = literal_close(&picks);
    PQclear(due);
    if (!picked) {
        free(chosen);
        return false;
    }
    PGresult *res = cz_db_webhook_load(w->db, chosen, &err);
    free(chosen);
    if (!res) {
        cz_log_warn("loading due webhooks: %s", err.msg);
        return false;
    }
    for (int i = 0; i < PQntuples(res) && w->n_queue < w->queue_max; i++)
        transfer_queue(w, res, i);
    PQclear(res);
    return n == limit && picked == n;
}

static void drain_notifies(cz_webhooks *w) {
    if (!w->db || PQstatus(w->db) != CONNECTION_OK)
        return;
    PQconsumeInput(w->db);
    PGnotify *n;
    while ((n = PQnotifies(w->db))) {
        w->read_due = true;
        PQfreemem(n);
    }
}

/* Waits for curl, a NOTIFY, a recorded batch, or @p ms, then moves every
 * transfer along. */
static void wait_and_perform(cz_webhooks *w, int ms) {
    struct curl_waitfd fds[2];
    unsigned n = 0;
    bool with_db = w->lead.held && w->db && PQsocket(w->db) >= 0;
    if (with_db)
        fds[n++] = (struct curl_waitfd){.fd = PQsocket(w->db), .events = CURL_WAIT_POLLIN};
    if (w->recording && PQsocket(w->record_db) >= 0)
        fds[n++] = (struct curl_waitfd){.fd = PQsocket(w->record_db), .events = CURL_WAIT_POLLIN};
    curl_multi_poll(w->multi, n ? fds : NULL, n, ms, NULL);
    if (with_db)
        drain_notifies(w);
    int running;
    curl_multi_perform(w->multi, &running);
    reap(w);
}

/* ---- the loop ------------------------------------------------------------------------ */

void cz_webhooks_run(cz_webhooks *w, atomic_bool *stop) {
    while (!atomic_load(stop)) {
        bool leader = lead(w);
        record(w, false);
        int64_t now = cz_mono_ms();
        bool room = w->n_queue < w->queue_max / 2 && unrecorded_count(w) < UNRECORDED_MAX;
        if (leader && room && (w->read_due || now >= w->next_read_ms)) {
            w->read_due = false;
            w->next_read_ms = now + POLL_MS;
            if (dispatch(w, w->queue_max - w->n_queue))
                w->read_due = true; /* more may be waiting */
            room = w->n_queue < w->queue_max / 2;
        }
        launch_queued(w);
        int wait = (int)(w->next_read_ms - cz_mono_ms());
        if (w->read_due && room && leader)
            wait = 0;
        else if (!leader && !w->n_active)
            wait = 200; /* standing by, or Postgres is away */
        if (!w->recording && cJSON_GetArraySize(w->unrecorded)) {
            int until_record = (int)(w->unrecorded_since_ms + RECORD_EVERY_MS - cz_mono_ms());
            wait = until_record < wait ? until_record : wait;
        }
        wait = wait < 0 ? 0 : wait > POLL_MS ? POLL_MS : wait;
        wait_and_perform(w, wait);
        launch_queued(w); /* freed slots are refilled at once, not after a read */
    }

    /* Stop: let attempts in flight finish for a moment, record what ended.
     * Queued ones were never sent; they stay due for the next dispatcher. */
    for (int i = 0; i < w->n_queue; i++) {
        receiver *r = receiver_find(w, w->queue[i]->origin);
        r->queued--;
        receiver_tidy(w, r);
        transfer_free(w->queue[i]);
    }
    w->n_queue = 0;
    int64_t until = cz_mono_ms() + STOP_GRACE_MS;
    while (w->n_active && cz_mono_ms() < until)
        wait_and_perform(w, 50);
    if (w->n_active)
        cz_log_warn("webhook dispatcher stopping with %d attempts in flight; they will be sent "
                    "again",
                    w->n_active);
    while (w->n_active)
        transfer_drop(w, w->active[0]);
    record(w, true);
    if (unrecorded_count(w))
        cz_log_warn("%d finished webhook attempts not recorded; they will be sent again",
                    unrecorded_count(w));
}
