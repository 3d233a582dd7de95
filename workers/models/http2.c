/* http@2: see http2.h for what it does and docs/http2.md for the contract.
 *
 * One batch is one loop over a curl multi handle. Each job is an item
 * with a state:
 *
 *   SUBMIT    waiting to go out in a POST with the others of its group
 *   POSTED    its group's POST is in flight
 *   FOLLOW    a prediction id; its event stream is open (or reopened)
 *   FETCH     succeeded; its audio is downloading
 *   SPLIT     failed with oom inside a group of more than one: waits for
 *             the rest of its group to end, then the oom'd ones go out
 *             again as two groups of half the size
 *   DONE      finished (cz_gen_job_finish called)
 *
 * Groups are the POSTs: at first the jobs in slices of the server's
 * max_batch, then the halves of the ones that ran out of memory. Every
 * 250 ms each live job is told its progress (the server's, from its
 * events) and asked whether to stop; a canceled job's prediction gets a
 * DELETE, a job handed back because the worker stops leaves its prediction
 * running for the next worker. The loop ends when every job is done and
 * the last DELETEs are answered (or 5 s have passed).
 *
 * Discovery: GET /v1/models (and /v1/health) when the worker starts, and
 * again before a batch when it failed or is older than a minute: the
 * model's version, max_batch and declared parameters. A job's
 * "parameters" are checked against the declaration before anything is
 * sent.
 *
 * Configuration, read once when the worker starts:
 *   CADENZA_HTTP2_MODEL_URL    the server's base URL (default:
 *                              CADENZA_HTTP_MODEL_URL, one server for both)
 *   CADENZA_HTTP2_MODEL        which of its models (default: the first)
 *   CADENZA_HTTP2_TIMEOUT_S    one prediction, submission to audio; 900 */
#include "workers/models/http2.h"

#include <curl/curl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "workers/models/http.h"

#define CONTRACT "cadenza.predict/2"
#define CONNECT_MS 5000
#define TICK_MS 250
#define DISCOVER_EVERY_MS 60000
#define STREAM_RETRY_MS 1000
#define STREAM_GIVE_UP 10 /* reconnections in a row without an event */
#define DELETE_WAIT_MS 5000
#define EVENT_MAX (256 * 1024) /* one event's data */

typedef struct http2 {
    char url[1024]; /* "" when not configured */
    char want[128]; /* CADENZA_HTTP2_MODEL, "" for the first */
    long timeout_ms;
    /* What the server declared (discover()). */
    bool known;
    int64_t discovered_ms;
    char model[128], version[128];
    int max_batch;
    cJSON *params;  /* the model's declared parameters, owned */
    char why[2048]; /* why discovery failed */
} http2;

/* ================================================================ requests */

/* The write callback that collects a body (bounded: answers are small). */
static size_t body_append(char *data, size_t size, size_t n, void *user) {
    cz_buf *b = user;
    if (b->len + size * n > 4 * 1024 * 1024)
        return 0;
    cz_buf_append(b, data, size * n);
    return size * n;
}

/* A blocking GET for discovery. @returns the HTTP status (0: no answer). */
static long get_json(const char *url, cz_buf *body, cz_err *err) {
    CURL *c = curl_easy_init();
    if (!c)
        return cz_err_set(err, "libcurl could not make a handle"), 0;
    cz_buf_reset(body);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 2000L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, body_append);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    CURLcode rc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        cz_err_set(err, "%s: %s", url, curl_easy_strerror(rc));
        return 0;
    }
    return status;
}

/* Reads the server's models and health. @returns 0, or -1 with m->why. */
static int discover(http2 *m) {
    char url[1200];
    cz_buf body = {0};
    cz_err err = {{0}};
    m->discovered_ms = cz_mono_ms();
    snprintf(url, sizeof url, "%s/v1/health", m->url);
    long status = get_json(url, &body, &err);
    const cJSON *models = NULL, *pick = NULL;
    cJSON *doc = NULL;
    if (status != 200) {
        if (status)
            snprintf(m->why, sizeof m->why,
                     "model server %s is not healthy (HTTP %ld on /v1/health)", m->url, status);
        else
            snprintf(m->why, sizeof m->why, "model server unreachable: %s", err.msg);
        goto fail;
    }
    snprintf(url, sizeof url, "%s/v1/models", m->url);
    status = get_json(url, &body, &err);
    doc = status == 200 ? cJSON_Parse(body.data) : NULL;
    models = cJSON_GetObjectItemCaseSensitive(doc, "models");
    for (const cJSON *x = cJSON_IsArray(models) ? models->child : NULL; x && !pick; x = x->next)
        if (!m->want[0] || (cz_json_str(x, "name") && !strcmp(cz_json_str(x, "name"), m->want)))
            pick = x;
    if (!pick || !cz_json_str(pick, "name")) {
        snprintf(m->why, sizeof m->why,
                 "model server %s declares no model%s%s on /v1/models (HTTP %ld); see "
                 "docs/http2.md",
                 m->url, m->want[0] ? " named " : "", m->want, status);
        goto fail;
    }
    snprintf(m->model, sizeof m->model, "%s", cz_json_str(pick, "name"));
    const char *v = cz_json_str(pick, "version");
    snprintf(m->version, sizeof m->version, "%s", v ? v : "");
    m->max_batch = (int)cz_json_num(pick, "max_batch", 1);
    if (m->max_batch < 1)
        m->max_batch = 1;
    cJSON_Delete(m->params);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(pick, "parameters");
    m->params = cJSON_IsObject(p) ? cJSON_Duplicate(p, true) : cJSON_CreateObject();
    if (!m->known)
        cz_log_info("http@2: %s serves %s version %s, batches of up to %d", m->url, m->model,
                    m->version, m->max_batch);
    m->known = true;
    cJSON_Delete(doc);
    cz_buf_free(&body);
    return 0;
fail:
    m->known = false;
    cJSON_Delete(doc);
    cz_buf_free(&body);
    return -1;
}

/* Checks a job's "parameters" against what the model declares. @returns 0,
 * or -1 with @p err (the job is invalid_input: it would fail the same way). */
static int check_parameters(const http2 *m, const cJSON *given, cz_err *err) {
    if (!given)
        return 0;
    for (const cJSON *g = given->child; g; g = g->next) {
        const cJSON *d = cJSON_GetObjectItemCaseSensitive(m->params, g->string);
        if (!d) {
            cz_buf names = {0};
            for (const cJSON *x = m->params->child; x; x = x->next)
                cz_buf_appendf(&names, "%s%s", names.len ? ", " : "", x->string);
            cz_err_set(err,
                       "parameter %s is not declared by %s@%s at %s (it declares: %s); remove it "
                       "from the job's parameters",
                       g->string, m->model, m->version, m->url, names.len ? names.data : "none");
            cz_buf_free(&names);
            return -1;
        }
        const char *type = cz_json_str(d, "type");
        bool number = type && (!strcmp(type, "number") || !strcmp(type, "integer"));
        if (number) {
            double lo = cz_json_num(d, "minimum", -INFINITY),
                   hi = cz_json_num(d, "maximum", INFINITY);
            if (!cJSON_IsNumber(g) || g->valuedouble < lo || g->valuedouble > hi ||
                (!strcmp(type, "integer") && !cz_json_is_integer(g->valuedouble)))
                return cz_err_set(err, "parameter %s must be %s from %g to %g for %s@%s", g->string,
                                  !strcmp(type, "integer") ? "an integer" : "a number", lo, hi,
                                  m->model, m->version);
        } else if (type && !strcmp(type, "boolean") && !cJSON_IsBool(g)) {
            return cz_err_set(err, "parameter %s must be true or false for %s@%s", g->string,
                              m->model, m->version);
        } else if (type && !strcmp(type, "string") && !cJSON_IsString(g)) {
            return cz_err_set(err, "parameter %s must be a string for %s@%s", g->string, m->model,
                              m->version);
        }
    }
    return 0;
}

/* ================================================================ the batch */

enum { SUBMIT, POSTED, FOLLOW, FETCH, SPLIT, DONE };

typedef struct item {
    cz_gen_job *job;
    int state;
    int group;
    char key[96];
    char id[128]; /* the prediction's, once known */
    bool resumed; /* the server already had it */
    int batch_size;
    double progress; /* the server's, 0..1 */
    int64_t started_ms, next_stream_ms;
    int stream_failures;
    struct xfer *stream; /* its open event stream, or NULL */
    bool delete_sent;
    char ended[16]; /* a terminal event seen on the stream: succeeded, failed, canceled */
    char error_type[32];
    char error_detail[300];
    cz_artifact_file scratch; /* the downloaded answer */
} item;

typedef struct group {
    int *members;
    int n;
} group;

enum { X_POST, X_STREAM, X_FETCH, X_DELETE };

/* One transfer in the multi handle. */
typedef struct xfer {
    int kind;
    int index; /* the group (POST) or the item */
    CURL *curl;
    struct curl_slist *headers;
    char *body;
    cz_buf in;   /* POST/DELETE answers; a stream's unparsed bytes */
    cz_buf data; /* a stream: the data lines of the event being read */
    char event[32];
    FILE *file;
    curl_off_t bytes, max_bytes;
    struct batch *b;
    struct xfer *prev, *next; /* every transfer of the batch */
} xfer;

typedef struct batch {
    http2 *m;
    CURLM *multi;
    item *items;
    int n;
    group *groups;
    int n_groups, cap_groups;
    int live;      /* items not DONE */
    int transfers; /* in the multi handle */
    xfer *xfers;   /* ...and their list */
    int splits;    /* oom splits done */
} batch;

static void xfer_free(batch *b, struct xfer *x);
static void split_if_ready(batch *b, int gi);

static void item_finish(batch *b, item *it, int rc) {
    if (it->state == DONE)
        return;
    if (it->scratch.tmp[0])
        unlink(it->scratch.tmp);
    if (it->stream) { /* nothing more to hear from it */
        xfer_free(b, it->stream);
        it->stream = NULL;
    }
    it->state = DONE;
    b->live--;
    cz_gen_job_finish(it->job, rc);
    if (it->group >= 0)
        split_if_ready(b, it->group); /* the last of an oom'd group to end */
}

static void item_fail(batch *b, item *it, const char *class, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void item_fail(batch *b, item *it, const char *class, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->job->err.msg, sizeof it->job->err.msg, fmt, ap);
    va_end(ap);
    it->job->out->failure_class = class;
    item_finish(b, it, -1);
}

static xfer *xfer_start(batch *b, int kind, int index, const char *url) {
    xfer *x = cz_calloc(1, sizeof *x);
    x->kind = kind, x->index = index, x->b = b;
    if (!(x->curl = curl_easy_init())) {
        free(x);
        return NULL;
    }
    curl_easy_setopt(x->curl, CURLOPT_URL, url);
    curl_easy_setopt(x->curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(x->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(x->curl, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_MS);
    curl_easy_setopt(x->curl, CURLOPT_PRIVATE, x);
    curl_easy_setopt(x->curl, CURLOPT_WRITEFUNCTION, body_append);
    curl_easy_setopt(x->curl, CURLOPT_WRITEDATA, &x->in);
    return x;
}

static void xfer_go(batch *b, xfer *x) {
    curl_multi_add_handle(b->multi, x->curl);
    b->transfers++;
    x->next = b->xfers;
    if (b->xfers)
        b->xfers->prev = x;
    b->xfers = x;
}

/* Drops a transfer made by xfer_start (gone or not yet to the multi handle). */
static void xfer_drop(xfer *x) {
    curl_easy_cleanup(x->curl);
    curl_slist_free_all(x->headers);
    free(x->body);
    if (x->file)
        fclose(x->file);
    free(x);
}

static void xfer_free(batch *b, xfer *x) {
    if (x->prev)
        x->prev->next = x->next;
    else
        b->xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    curl_multi_remove_handle(b->multi, x->curl);
    curl_easy_cleanup(x->curl);
    curl_slist_free_all(x->headers);
    free(x->body);
    cz_buf_free(&x->in);
    cz_buf_free(&x->data);
    if (x->file)
        fclose(x->file);
    free(x);
    b->transfers--;
}

/* ---------------------------------------------------------------- submit */

/* What the model is asked, the same on every attempt of a job. */
static cJSON *input_of(const cz_gen_request *req) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "seed", (double)req->seed);
    const char *prompt = cz_json_str(req->request, "prompt");
    cJSON_AddStringToObject(o, "prompt", prompt ? prompt : "");
    cJSON_AddItemToObject(o, "controls", cz_controls_json(req->controls));
    cJSON_AddNumberToObject(o, "duration_s", req->duration_s);
    cJSON_AddNumberToObject(o, "sample_rate", CZ_GEN_SAMPLE_RATE);
    cJSON_AddNumberToObject(o, "channels", 2);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(req->request, "parameters");
    cJSON_AddItemToObject(o, "parameters", p ? cJSON_Duplicate(p, true) : cJSON_CreateObject());
    return o;
}

/* The prediction's name: "cadenza-<job id>-<16 hex of the input's sha256>".
 * Every attempt of a job asks the same, so it finds the same prediction;
 * the input's hash keeps two different asks under one job id (cadenza-worker
 * render's, or a job whose request changed) from sharing one. */
static void key_of(const cz_gen_request *req, char *key, size_t n) {
    cJSON *in = input_of(req);
    char *text = cz_json_canonical(in), hex[CZ_SHA256_HEX];
    cz_sha256_hex(text, strlen(text), hex);
    snprintf(key, n, "cadenza-%s-%.16s", req->job_id ? req->job_id : "", hex);
    free(text);
    cJSON_Delete(in);
}

static cJSON *input_json(const item *it) {
    const cz_gen_request *req = it->job->req;
    cJSON *o = input_of(req);
    cJSON_AddStringToObject(o, "key", it->key);
    cJSON_AddStringToObject(o, "job_id", req->job_id ? req->job_id : "");
    cJSON_AddNumberToObject(o, "attempt", req->attempt);
    if (req->traceparent && req->traceparent[0])
        cJSON_AddStringToObject(o, "traceparent", req->traceparent);
    return o;
}

static int group_add(batch *b, const int *members, int n) {
    if (b->n_groups == b->cap_groups) {
        b->cap_groups = b->cap_groups ? 2 * b->cap_groups : 8;
        b->groups = cz_realloc(b->groups, sizeof *b->groups * (size_t)b->cap_groups);
    }
    group *g = &b->groups[b->n_groups];
    g->members = cz_malloc(sizeof *g->members * (size_t)(n > 0 ? n : 1));
    memcpy(g->members, members, sizeof *members * (size_t)n);
    g->n = n;
    for (int k = 0; k < n; k++) { /* a prediction to make afresh */
        item *it = &b->items[members[k]];
        it->group = b->n_groups;
        it->state = SUBMIT;
        it->batch_size = n;
        it->id[0] = it->ended[0] = it->error_type[0] = '\0';
        it->progress = 0;
        it->stream_failures = 0;
    }
    return b->n_groups++;
}

static void post_group(batch *b, int gi) {
    group *g = &b->groups[gi];
    char url[1200];
    snprintf(url, sizeof url, "%s/v1/predictions", b->m->url);
    xfer *x = xfer_start(b, X_POST, gi, url);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "contract", CONTRACT);
    cJSON_AddStringToObject(o, "model", b->m->model);
    cJSON *inputs = cJSON_AddArrayToObject(o, "inputs");
    int live = 0;
    for (int k = 0; k < g->n; k++) {
        item *it = &b->items[g->members[k]];
        if (it->state != SUBMIT || it->group != gi) /* an item moves to a later group */
            continue;
        cJSON_AddItemToArray(inputs, input_json(it));
        it->state = POSTED;
        live++;
    }
    if (!live || !x) {
        cJSON_Delete(o);
        if (x)
            xfer_drop(x);
        for (int k = 0; k < b->groups[gi].n; k++)
            if (b->items[b->groups[gi].members[k]].state == POSTED)
                item_fail(b, &b->items[b->groups[gi].members[k]], "internal",
                          "libcurl could not make a handle");
        return;
    }
    x->body = cz_json_print(o);
    cJSON_Delete(o);
    x->headers = curl_slist_append(NULL, "Content-Type: application/json");
    x->headers = curl_slist_append(x->headers, "Accept: application/json");
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->curl, CURLOPT_POSTFIELDS, x->body);
    curl_easy_setopt(x->curl, CURLOPT_TIMEOUT_MS, 30000L);
    xfer_go(b, x);
}

/* The class of a problem or a prediction error's type. */
static const char *class_of_type(const char *type) {
    if (!type)
        return "model_error";
    const char *t = strrchr(type, ':'), *s = strrchr(type, '/');
    t = t && (!s || t > s) ? t + 1 : s ? s + 1 : type;
    if (!strcmp(t, "oom"))
        return "oom";
    if (!strcmp(t, "timeout"))
        return "timeout";
    if (!strcmp(t, "unavailable"))
        return "backend_unavailable";
    if (!strcmp(t, "invalid-input") || !strcmp(t, "invalid_input"))
        return "invalid_input";
    return "model_error";
}

/* The class of an HTTP status other than 2xx. */
static const char *class_of_status(long status, const char *type) {
    if (status == 429 || status == 502 || status == 503 || status == 504)
        return "backend_unavailable";
    if (status == 507)
        return "oom";
    if (status == 408)
        return "timeout";
    if (status == 422)
        return "invalid_input";
    return class_of_type(type);
}

/* Puts the oom'd items of group @p gi back as two halves, once none of
 * the group is still running. */
static void split_if_ready(batch *b, int gi) {
    int n = b->groups[gi].n, *members = b->groups[gi].members; /* groups may move below */
    int waiting = 0, *oom = cz_malloc(sizeof *oom * (size_t)n);
    for (int k = 0; k < n; k++) {
        int s = b->items[members[k]].state;
        if (b->items[members[k]].group != gi)
            continue;
        if (s == POSTED || s == FOLLOW) {
            free(oom);
            return;
        }
        if (s == SPLIT)
            oom[waiting++] = members[k];
    }
    if (waiting > 0) {
        int half = (waiting + 1) / 2;
        cz_log_job(CZ_LOG_WARN, b->items[oom[0]].job->req->job_id, NULL,
                   "http@2: out of memory in a batch of %d; submitting it again as %d + %d", n,
                   half, waiting - half);
        b->splits++;
        group_add(b, oom, half);
        if (waiting - half > 0)
            group_add(b, oom + half, waiting - half);
    }
    free(oom);
}

/* An item of a group of more than one ran out of memory: split later;
 * alone, it fails oom. */
static void item_oom(batch *b, item *it, const char *detail) {
    if (b->groups[it->group].n > 1) {
        it->state = SPLIT;
        it->id[0] = '\0';
        split_if_ready(b, it->group);
    } else {
        item_fail(b, it, "oom", "model server %s ran out of memory on this job alone: %s",
                  b->m->url, detail);
    }
}

static void post_done(batch *b, xfer *x, CURLcode rc) {
    int gn = b->groups[x->index].n, *members = b->groups[x->index].members;
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    cJSON *doc = cJSON_Parse(x->in.data ? x->in.data : "");
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(doc, "predictions");
    if (rc != CURLE_OK || status < 200 || status > 299 || !cJSON_IsArray(list)) {
        const char *type = cz_json_str(doc, "type"), *detail = cz_json_str(doc, "detail");
        const char *class = rc != CURLE_OK ? "backend_unavailable" : class_of_status(status, type);
        char why[1600];
        if (rc != CURLE_OK)
            snprintf(why, sizeof why, "model server %s unreachable: %s", b->m->url,
                     curl_easy_strerror(rc));
        else
            snprintf(why, sizeof why, "model server %s refused the predictions (HTTP %ld): %s",
                     b->m->url, status, detail ? detail : "no detail");
        bool too_big = status == 413 && gn > 1;
        for (int k = 0; k < gn; k++) {
            item *it = &b->items[members[k]];
            if (it->state != POSTED || it->group != x->index)
                continue;
            if (too_big || !strcmp(class, "oom"))
                item_oom(b, it, why);
            else
                item_fail(b, it, class, "%s", why);
        }
        cJSON_Delete(doc);
        return;
    }
    for (int k = 0; k < gn; k++) {
        item *it = &b->items[members[k]];
        if ((it->state != POSTED && it->state != DONE) || it->group != x->index)
            continue;
        const cJSON *p = NULL;
        for (const cJSON *q = list->child; q && !p; q = q->next)
            if (cz_json_str(q, "key") && !strcmp(cz_json_str(q, "key"), it->key))
                p = q;
        const char *id = cz_json_str(p, "id");
        if (it->state == DONE) { /* canceled while it was being submitted */
            if (id)
                snprintf(it->id, sizeof it->id, "%s", id);
            continue;
        }
        if (!id) {
            item_fail(b, it, "model_error", "model server %s answered no prediction for key %s",
                      b->m->url, it->key);
            continue;
        }
        snprintf(it->id, sizeof it->id, "%s", id);
        const cJSON *created = cJSON_GetObjectItemCaseSensitive(p, "created");
        it->resumed = cJSON_IsFalse(created);
        const cJSON *bt = cJSON_GetObjectItemCaseSensitive(p, "batch");
        if (cJSON_IsObject(bt))
            it->batch_size = (int)cz_json_num(bt, "size", it->batch_size);
        it->progress = cz_json_num(p, "progress", 0);
        it->state = FOLLOW;
        it->next_stream_ms = 0;
        cz_log_job(CZ_LOG_INFO, it->job->req->job_id, NULL,
                   "http@2: prediction %s %s (%s, batch of %d)", id,
                   it->resumed ? "resumed" : "submitted",
                   cz_json_str(p, "status") ? cz_json_str(p, "status") : "?", gn);
    }
    cJSON_Delete(doc);
}

/* ---------------------------------------------------------------- events */

/* One whole event of a prediction's stream. */
static void stream_event(item *it, const char *event, const char *data) {
    cJSON *p = cJSON_Parse(data);
    if (p) {
        double f = cz_json_num(p, "progress", it->progress);
        if (f >= 0 && f <= 1)
            it->progress = f;
    }
    if (!strcmp(event, "succeeded") || !strcmp(event, "failed") || !strcmp(event, "canceled")) {
        snprintf(it->ended, sizeof it->ended, "%.15s", event);
        const cJSON *e = cJSON_GetObjectItemCaseSensitive(p, "error");
        const char *type = cz_json_str(e, "type"), *detail = cz_json_str(e, "detail");
        snprintf(it->error_type, sizeof it->error_type, "%s", type ? type : "");
        snprintf(it->error_detail, sizeof it->error_detail, "%s", detail ? detail : "no detail");
    }
    cJSON_Delete(p);
}

/* Server-sent events, line by line (WHATWG: "event:", "data:", a blank
 * line ends an event, ":" lines are comments). */
static size_t stream_write(char *bytes, size_t size, size_t n, void *user) {
    xfer *x = user;
    item *it = &x->b->items[x->index];
    cz_buf_append(&x->in, bytes, size * n);
    char *start = x->in.data, *nl;
    while ((nl = memchr(start, '\n', x->in.len - (size_t)(start - x->in.data)))) {
        *nl = '\0';
        if (nl > start && nl[-1] == '\r')
            nl[-1] = '\0';
        if (!*start) {
            if (x->data.len)
                stream_event(it, x->event[0] ? x->event : "message", x->data.data);
            cz_buf_reset(&x->data);
            x->event[0] = '\0';
        } else if (!strncmp(start, "event:", 6)) {
            snprintf(x->event, sizeof x->event, "%s", start + 6 + (start[6] == ' '));
        } else if (!strncmp(start, "data:", 5)) {
            if (x->data.len)
                cz_buf_putc(&x->data, '\n');
            cz_buf_puts(&x->data, start + 5 + (start[5] == ' '));
        }
        start = nl + 1;
    }
    size_t rest = x->in.len - (size_t)(start - x->in.data);
    memmove(x->in.data, start, rest);
    x->in.len = rest;
    x->in.data[rest] = '\0';
    if (x->in.len + x->data.len > EVENT_MAX)
        return 0; /* not an event stream */
    return size * n;
}

static void stream_open(batch *b, int i) {
    item *it = &b->items[i];
    char url[1400];
    snprintf(url, sizeof url, "%s/v1/predictions/%s/events", b->m->url, it->id);
    xfer *x = xfer_start(b, X_STREAM, i, url);
    if (!x) {
        it->next_stream_ms = cz_mono_ms() + STREAM_RETRY_MS;
        return;
    }
    x->headers = curl_slist_append(NULL, "Accept: text/event-stream");
    curl_easy_setopt(x->curl, CURLOPT_HTTPHEADER, x->headers);
    curl_easy_setopt(x->curl, CURLOPT_WRITEFUNCTION, stream_write);
    curl_easy_setopt(x->curl, CURLOPT_WRITEDATA, x);
    /* A stream that says nothing for 30 s (not even a keep-alive) is dead. */
    curl_easy_setopt(x->curl, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(x->curl, CURLOPT_LOW_SPEED_TIME, 30L);
    it->stream = x;
    xfer_go(b, x);
}

static void fetch_start(batch *b, int i);

/* What a prediction's end means for its job. */
static void item_ended(batch *b, int i) {
    item *it = &b->items[i];
    if (!strcmp(it->ended, "succeeded")) {
        fetch_start(b, i);
        return;
    }
    if (!strcmp(it->ended, "canceled")) {
        item_fail(b, it, "model_error", "model server %s canceled prediction %s", b->m->url,
                  it->id);
        return;
    }
    const char *class = class_of_type(it->error_type);
    if (!strcmp(class, "oom"))
        item_oom(b, it, it->error_detail);
    else
        item_fail(b, it, class, "model server %s: prediction %s failed (%s): %s", b->m->url, it->id,
                  it->error_type[0] ? it->error_type : "no type", it->error_detail);
}

static void stream_done(batch *b, xfer *x, CURLcode rc) {
    item *it = &b->items[x->index];
    it->stream = NULL;
    if (it->state != FOLLOW)
        return;
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    if (it->ended[0]) {
        item_ended(b, x->index);
        return;
    }
    if (status == 404) {
        item_fail(b, it, "backend_unavailable",
                  "model server %s no longer knows prediction %s (restarted?); it will be "
                  "submitted again on the job's retry",
                  b->m->url, it->id);
        return;
    }
    /* Dropped before the end: reopen, unless it keeps failing. */
    it->stream_failures = rc == CURLE_OK && status == 200 ? 0 : it->stream_failures + 1;
    if (it->stream_failures >= STREAM_GIVE_UP) {
        item_fail(b, it, "backend_unavailable",
                  "model server %s: the events of prediction %s cannot be read (%s, HTTP %ld)",
                  b->m->url, it->id, curl_easy_strerror(rc), status);
        return;
    }
    it->next_stream_ms = cz_mono_ms() + STREAM_RETRY_MS;
}

/* ---------------------------------------------------------------- fetch */

static size_t fetch_write(char *data, size_t size, size_t n, void *user) {
    xfer *x = user;
    size_t len = size * n;
    if (x->bytes + (curl_off_t)len > x->max_bytes) {
        x->bytes = x->max_bytes + 1; /* too big: not the audio asked for */
        return 0;
    }
    x->bytes += (curl_off_t)len;
    return fwrite(data, 1, len, x->file);
}

static void fetch_start(batch *b, int i) {
    item *it = &b->items[i];
    const cz_gen_request *req = it->job->req;
    cz_err err;
    it->state = FETCH;
    if (cz_artifact_prepare_in(req->dir, "http2-answer.wav", &it->scratch, &err) != 0) {
        item_fail(b, it, "internal", "%s", err.msg);
        return;
    }
    char url[1400];
    snprintf(url, sizeof url, "%s/v1/predictions/%s/output", b->m->url, it->id);
    xfer *x = xfer_start(b, X_FETCH, i, url);
    FILE *f = fopen(it->scratch.tmp, "wb");
    if (!x || !f) {
        if (f)
            fclose(f);
        if (x)
            xfer_drop(x);
        item_fail(b, it, "internal", "cannot download into %s", it->scratch.tmp);
        return;
    }
    x->file = f;
    x->max_bytes = (curl_off_t)((req->duration_s + 1) * CZ_GEN_SAMPLE_RATE * 2 * 8) + 65536;
    curl_easy_setopt(x->curl, CURLOPT_WRITEFUNCTION, fetch_write);
    curl_easy_setopt(x->curl, CURLOPT_WRITEDATA, x);
    curl_easy_setopt(x->curl, CURLOPT_TIMEOUT_MS, 300000L);
    xfer_go(b, x);
}

static void fetch_done(batch *b, xfer *x, CURLcode rc) {
    item *it = &b->items[x->index];
    if (it->state != FETCH)
        return;
    long status = 0;
    curl_easy_getinfo(x->curl, CURLINFO_RESPONSE_CODE, &status);
    bool closed = fclose(x->file) == 0;
    x->file = NULL;
    if (rc != CURLE_OK || status != 200 || !closed) {
        const char *class = rc == CURLE_WRITE_ERROR && x->bytes > x->max_bytes ? "model_error"
                            : rc != CURLE_OK ? "backend_unavailable"
                                             : class_of_status(status, NULL);
        item_fail(b, it, class,
                  "model server %s: fetching the audio of prediction %s failed (%s, HTTP %ld)",
                  b->m->url, it->id, curl_easy_strerror(rc), status);
        return;
    }
    cz_gen_result *out = it->job->out;
    cz_err *err = &it->job->err;
    const cz_gen_request *req = it->job->req;
    out->failure_class = "model_error";
    cz_gen_file *f =
        cz_gen_result_add(out, req, "raw", "mix", "wav", "raw.wav", req->duration_s, err);
    if (!f || cz_http_model_audio(it->scratch.tmp, f->file.tmp, req->duration_s, err) != 0) {
        item_finish(b, it, -1);
        return;
    }
    out->failure_class = NULL;
    out->chosen = cJSON_CreateObject();
    cJSON_AddStringToObject(out->chosen, "server", b->m->url);
    cJSON_AddStringToObject(out->chosen, "remote_model", b->m->model);
    cJSON_AddStringToObject(out->chosen, "model_version", b->m->version);
    cJSON_AddStringToObject(out->chosen, "prediction_id", it->id);
    cJSON_AddBoolToObject(out->chosen, "resumed", it->resumed);
    cJSON_AddNumberToObject(out->chosen, "batch_size", it->batch_size);
    const cJSON *p = cJSON_GetObjectItemCaseSensitive(req->request, "parameters");
    if (p)
        cJSON_AddItemToObject(out->chosen, "parameters", cJSON_Duplicate(p, true));
    cJSON_AddNumberToObject(out->chosen, "answer_bytes", (double)x->bytes);
    cJSON_AddNumberToObject(out->chosen, "answer_ms", (double)(cz_mono_ms() - it->started_ms));
    const cz_gen_hooks *h = it->job->hooks;
    item_finish(b, it, h->progress && h->progress(h->user, 1.0) != 0 ? 1 : 0);
}

/* ---------------------------------------------------------------- cancel */

static void delete_prediction(batch *b, item *it) {
    if (!it->id[0] || it->delete_sent)
        return;
    it->delete_sent = true;
    char url[1400];
    snprintf(url, sizeof url, "%s/v1/predictions/%s", b->m->url, it->id);
    xfer *x = xfer_start(b, X_DELETE, (int)(it - b->items), url);
    if (!x)
        return;
    curl_easy_setopt(x->curl, CURLOPT_CUSTOMREQUEST, "DELETE");
    curl_easy_setopt(x->curl, CURLOPT_TIMEOUT_MS, (long)DELETE_WAIT_MS);
    cz_log_job(CZ_LOG_INFO, it->job->req->job_id, NULL, "http@2: canceling prediction %s", it->id);
    xfer_go(b, x);
}

/* Every TICK_MS: each live job's progress, its cancel flag, its deadline. */
static void tick(batch *b, int64_t now) {
    for (int i = 0; i < b->n; i++) {
        item *it = &b->items[i];
        if (it->state == DONE)
            continue;
        const cz_gen_hooks *h = it->job->hooks;
        double f = it->state == FETCH ? 0.95 : 0.05 + 0.9 * it->progress;
        bool stop =
            (h->progress && h->progress(h->user, f) != 0) || (h->canceled && h->canceled(h->user));
        if (stop) {
            bool handed_back = h->stopping && h->stopping(h->user);
            if (handed_back)
                cz_log_job(CZ_LOG_INFO, it->job->req->job_id, NULL,
                           "http@2: worker stopping; prediction %s left running for the next "
                           "worker (same key %s)",
                           it->id[0] ? it->id : "(being submitted)", it->key);
            else
                delete_prediction(b, it); /* a POST still in flight: deleted when it answers */
            item_finish(b, it, 1);
        } else if (now - it->started_ms > b->m->timeout_ms) {
            delete_prediction(b, it);
            item_fail(b, it, "timeout",
                      "model server %s: no result within %ld s (prediction %s "
                      "canceled)",
                      b->m->url, b->m->timeout_ms / 1000, it->id[0] ? it->id : "not yet made");
        }
    }
}

static void transfer_done(batch *b, CURLMsg *msg) {
    xfer *x = NULL;
    curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
    CURLcode rc = msg->data.result;
    switch (x->kind) {
    case X_POST:
        post_done(b, x, rc);
        /* Jobs canceled while their POST was in flight: delete what it made. */
        for (int k = 0, gn = b->groups[x->index].n; k < gn; k++) {
            item *it = &b->items[b->groups[x->index].members[k]];
            if (it->state == DONE && it->id[0] && !it->delete_sent && it->job->rc == 1 &&
                !(it->job->hooks->stopping && it->job->hooks->stopping(it->job->hooks->user)))
                delete_prediction(b, it);
        }
        break;
    case X_STREAM:
        stream_done(b, x, rc);
        break;
    case X_FETCH:
        fetch_done(b, x, rc);
        break;
    default:
        break;
    }
    xfer_free(b, x);
}

static void http2_batch(void *state, cz_gen_job *jobs, int n) {
    http2 *m = state;
    for (int k = 0; k < n; k++)
        jobs[k].rc = 0;
    const char *unavailable = NULL;
    if (!m->url[0])
        unavailable = "no model server configured: set CADENZA_HTTP2_MODEL_URL (or "
                      "CADENZA_HTTP_MODEL_URL) on the inference workers (see docs/http2.md)";
    else if ((!m->known || cz_mono_ms() - m->discovered_ms > DISCOVER_EVERY_MS) && discover(m) != 0)
        unavailable = m->why;
    batch b = {.m = m, .n = n, .live = n};
    b.items = cz_calloc((size_t)(n > 0 ? n : 1), sizeof *b.items);
    int *ready = cz_malloc(sizeof *ready * (size_t)(n > 0 ? n : 1)), n_ready = 0;
    int64_t now = cz_mono_ms();
    for (int k = 0; k < n; k++) {
        item *it = &b.items[k];
        it->job = &jobs[k];
        it->group = -1;
        it->started_ms = now;
        key_of(jobs[k].req, it->key, sizeof it->key);
        cz_err err;
        if (unavailable)
            item_fail(&b, it, "backend_unavailable", "%s", unavailable);
        else if (check_parameters(
                     m, cJSON_GetObjectItemCaseSensitive(jobs[k].req->request, "parameters"),
                     &err) != 0)
            item_fail(&b, it, "invalid_input", "%s", err.msg);
        else
            ready[n_ready++] = k;
    }
    /* The server's max_batch per POST. */
    for (int from = 0; from < n_ready; from += m->max_batch)
        group_add(&b, ready + from, n_ready - from < m->max_batch ? n_ready - from : m->max_batch);
    free(ready);
    if (b.live > 0 && !(b.multi = curl_multi_init())) {
        for (int k = 0; k < n; k++)
            if (b.items[k].state != DONE)
                item_fail(&b, &b.items[k], "internal", "libcurl could not make a multi handle");
    }
    int64_t next_tick = now + TICK_MS, deletes_until = 0;
    while (b.multi && (b.live > 0 || b.transfers > 0)) {
        now = cz_mono_ms();
        if (b.live == 0) { /* only DELETEs left: give them a moment */
            if (!deletes_until)
                deletes_until = now + DELETE_WAIT_MS;
            if (now > deletes_until)
                break;
        }
        for (int gi = 0; gi < b.n_groups; gi++) {
            bool any = false;
            for (int k = 0; k < b.groups[gi].n && !any; k++) {
                const item *it = &b.items[b.groups[gi].members[k]];
                any = it->state == SUBMIT && it->group == gi;
            }
            if (any)
                post_group(&b, gi);
        }
        for (int i = 0; i < n; i++)
            if (b.items[i].state == FOLLOW && !b.items[i].stream &&
                now >= b.items[i].next_stream_ms)
                stream_open(&b, i);
        int running = 0;
        curl_multi_perform(b.multi, &running);
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(b.multi, &left)))
            if (msg->msg == CURLMSG_DONE)
                transfer_done(&b, msg);
        if (now >= next_tick) {
            tick(&b, now);
            next_tick = now + TICK_MS;
        }
        curl_multi_poll(b.multi, NULL, 0, 50, NULL);
    }
    /* Whatever is left (DELETEs past their wait) is dropped. */
    if (b.multi) {
        while (b.xfers)
            xfer_free(&b, b.xfers);
        curl_multi_cleanup(b.multi);
    }
    for (int gi = 0; gi < b.n_groups; gi++)
        free(b.groups[gi].members);
    free(b.groups);
    free(b.items);
}

static int http2_generate(void *state, const cz_gen_request *req, const cz_gen_hooks *hooks,
                          cz_gen_result *out, cz_err *err) {
    cz_gen_job job = {.req = req, .hooks = hooks, .out = out};
    http2_batch(state, &job, 1);
    if (job.rc < 0)
        *err = job.err;
    return job.rc;
}

static void *http2_prepare(const cz_backend_env *env, cz_err *err) {
    (void)env;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        cz_err_set(err, "libcurl failed to initialise");
        return NULL;
    }
    http2 *m = cz_calloc(1, sizeof *m);
    const char *url = cz_env("CADENZA_HTTP2_MODEL_URL", cz_env("CADENZA_HTTP_MODEL_URL", ""));
    snprintf(m->url, sizeof m->url, "%s", url);
    size_t n = strlen(m->url);
    while (n > 0 && m->url[n - 1] == '/')
        m->url[--n] = '\0';
    snprintf(m->want, sizeof m->want, "%s", cz_env("CADENZA_HTTP2_MODEL", ""));
    m->timeout_ms = 1000L * cz_env_int("CADENZA_HTTP2_TIMEOUT_S", 900, 1, 86400);
    m->max_batch = 1;
    m->params = cJSON_CreateObject();
    /* A server that is not up yet is asked again before the first batch. */
    if (m->url[0] && discover(m) != 0)
        cz_log_warn("http@2: %s; asking again before its first jobs", m->why);
    return m;
}

static void http2_release(void *state) {
    http2 *m = state;
    if (!m)
        return;
    cJSON_Delete(m->params);
    free(m);
    curl_global_cleanup();
}

const cz_backend cz_http2_backend = {
    .id = "http@2",
    .prepare = http2_prepare,
    .generate = http2_generate,
    .generate_batch = http2_batch,
    .release = http2_release,
};
