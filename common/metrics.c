/* Prometheus metrics: see metrics.h.
 *
 * The registry is a fixed array of series (no allocation after start, no
 * pointer ever moves), appended to under a mutex and read without one:
 * `count` is published with release order after a series is filled in, so
 * a reader that sees the count sees the series. Values are doubles kept in
 * atomic 64-bit words (their bit patterns) and added to with a CAS loop;
 * histogram buckets are atomic integers. Series of one name are rendered
 * together, in the order they were first registered, under one HELP/TYPE. */
#include "common/metrics.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/mem.h"

#define MAX_SERIES 1024
#define MAX_BUCKETS 24

typedef enum { COUNTER, GAUGE, HISTOGRAM } kind;

struct cz_metric {
    kind kind;
    char name[80];
    char help[160];
    char labels[160];
    _Atomic uint64_t value; /* double bits: counter, gauge, histogram sum */
    int nbounds;
    double bounds[MAX_BUCKETS];
    _Atomic uint64_t buckets[MAX_BUCKETS + 1]; /* the last is +Inf */
};

static cz_metric series[MAX_SERIES];
static _Atomic int count;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;

const double cz_metrics_latency_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                             2.5,   5,    10,    30,   60,  120,  300, 600};
const int cz_metrics_latency_nbuckets = 16;

static double bits_to_double(uint64_t b) {
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t double_to_bits(double d) {
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

static cz_metric *find_or_add(kind k, const char *name, const char *help, const char *labels,
                              const double *bounds, int n) {
    labels = labels ? labels : "";
    int c = atomic_load_explicit(&count, memory_order_acquire);
    for (int i = 0; i < c; i++)
        if (!strcmp(series[i].name, name) && !strcmp(series[i].labels, labels))
            return &series[i];
    pthread_mutex_lock(&lock);
    cz_metric *m = NULL;
    c = atomic_load_explicit(&count, memory_order_relaxed);
    for (int i = 0; i < c && !m; i++)
        if (!strcmp(series[i].name, name) && !strcmp(series[i].labels, labels))
            m = &series[i];
    if (!m && c < MAX_SERIES) {
        m = &series[c];
        m->kind = k;
        snprintf(m->name, sizeof m->name, "%s", name);
        snprintf(m->help, sizeof m->help, "%s", help);
        snprintf(m->labels, sizeof m->labels, "%s", labels);
        m->nbounds = n < MAX_BUCKETS ? n : MAX_BUCKETS;
        for (int i = 0; i < m->nbounds; i++)
            m->bounds[i] = bounds[i];
        atomic_store_explicit(&count, c + 1, memory_order_release);
    }
    pthread_mutex_unlock(&lock);
    return m;
}

cz_metric *cz_metric_counter(const char *name, const char *help, const char *labels) {
    return find_or_add(COUNTER, name, help, labels, NULL, 0);
}

cz_metric *cz_metric_gauge(const char *name, const char *help, const char *labels) {
    return find_or_add(GAUGE, name, help, labels, NULL, 0);
}

cz_metric *cz_metric_histogram(const char *name, const char *help, const char *labels,
                               const double *bounds, int n) {
    return find_or_add(HISTOGRAM, name, help, labels, bounds, n);
}

static void add_bits(_Atomic uint64_t *v, double d) {
    uint64_t old = atomic_load(v);
    while (!atomic_compare_exchange_weak(v, &old, double_to_bits(bits_to_double(old) + d)))
        ;
}

void cz_metric_add(cz_metric *m, double v) {
    if (m && (m->kind == GAUGE || v >= 0))
        add_bits(&m->value, v);
}

void cz_metric_set(cz_metric *m, double v) {
    if (m)
        atomic_store(&m->value, double_to_bits(v));
}

void cz_metric_observe(cz_metric *m, double v) {
    if (!m || m->kind != HISTOGRAM)
        return;
    int i = 0;
    while (i < m->nbounds && v > m->bounds[i])
        i++;
    atomic_fetch_add(&m->buckets[i], 1);
    add_bits(&m->value, v);
}

double cz_metric_value(const cz_metric *m) {
    return m ? bits_to_double(atomic_load(&((cz_metric *)m)->value)) : 0;
}

/* ---- exposition ------------------------------------------------------------ */

/* The label set with one more label appended ("le" for buckets). */
static void labels_with(const char *labels, const char *extra, char *out, size_t n) {
    if (!labels[0] && !extra[0])
        out[0] = '\0';
    else
        snprintf(out, n, "{%s%s%s}", labels, labels[0] && extra[0] ? "," : "", extra);
}

static void render_one(cz_buf *b, const cz_metric *m) {
    char l[256];
    if (m->kind != HISTOGRAM) {
        labels_with(m->labels, "", l, sizeof l);
        cz_buf_appendf(b, "%s%s %.17g\n", m->name, l, cz_metric_value(m));
        return;
    }
    uint64_t cum = 0;
    for (int i = 0; i <= m->nbounds; i++) {
        char le[40];
        cum += atomic_load(&((cz_metric *)m)->buckets[i]);
        if (i < m->nbounds)
            snprintf(le, sizeof le, "le=\"%g\"", m->bounds[i]);
        else
            snprintf(le, sizeof le, "le=\"+Inf\"");
        labels_with(m->labels, le, l, sizeof l);
        cz_buf_appendf(b, "%s_bucket%s %llu\n", m->name, l, (unsigned long long)cum);
    }
    labels_with(m->labels, "", l, sizeof l);
    cz_buf_appendf(b, "%s_sum%s %.17g\n", m->name, l, cz_metric_value(m));
    cz_buf_appendf(b, "%s_count%s %llu\n", m->name, l, (unsigned long long)cum);
}

char *cz_metrics_render(void) {
    static const char *const types[] = {"counter", "gauge", "histogram"};
    cz_buf b = {0};
    int c = atomic_load_explicit(&count, memory_order_acquire);
    for (int i = 0; i < c; i++) {
        bool first = true;
        for (int j = 0; j < i && first; j++)
            first = strcmp(series[j].name, series[i].name) != 0;
        if (!first)
            continue; /* rendered with the first series of its name */
        cz_buf_appendf(&b, "# HELP %s %s\n# TYPE %s %s\n", series[i].name, series[i].help,
                       series[i].name, types[series[i].kind]);
        for (int j = i; j < c; j++)
            if (!strcmp(series[j].name, series[i].name))
                render_one(&b, &series[j]);
    }
    return cz_buf_take(&b);
}

/* ---- the listener ------------------------------------------------------------ */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
    (void)cls, (void)version, (void)upload, (void)upload_size, (void)con_cls;
    const char *type = "text/plain; charset=utf-8";
    unsigned status = 200;
    char *text = NULL;
    if (strcmp(url, "/metrics")) {
        status = 404;
        text = cz_strdup("not found: GET /metrics\n");
    } else if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
        status = 405;
        text = cz_strdup("use GET\n");
    } else {
        text = cz_metrics_render();
        type = "text/plain; version=0.0.4; charset=utf-8";
    }
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", type);
    enum MHD_Result res = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return res;
}

int cz_metrics_serve(const char *listen, cz_err *err) {
    if (!listen || !listen[0])
        return 0;
    char host[128];
    int port;
    if (sscanf(listen, "%127[^:]:%d", host, &port) != 2 || port <= 0 || port > 65535)
        return cz_err_set(err, "CADENZA_METRICS_LISTEN must be host:port, not %s", listen);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &addr.sin_addr) != 1)
        return cz_err_set(err, "CADENZA_METRICS_LISTEN host must be an IPv4 address, not %s", host);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ERROR_LOG, (uint16_t)port, NULL,
        NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, 16u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    if (!d)
        return cz_err_set(err, "cannot serve metrics on %s (in use?)", listen);
    return 0; /* serves until the process exits */
}
