/* A fast webhook receiver for the webhook benchmarks
 * (tests/bench/bench_webhooks.sh runs it).
 *
 * libmicrohttpd on 127.0.0.1: every POST is read whole, its Standard
 * Webhooks signature checked when a secret is given (so the benchmark
 * counts only deliveries a real receiver would accept), and answered 204.
 * It records each request's webhook-id and arrival time (wall clock, in
 * microseconds since the epoch) and, on SIGINT or SIGTERM, writes them to
 * the output file as "id microseconds" lines and prints a summary:
 *
 *   received N bad_signatures B
 *
 *   wh_receiver PORT OUT [SECRET] */
#include <microhttpd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/webhook.h"

#define MAX_RECORDS 1000000
#define BODY_MAX (256 * 1024)

typedef struct record {
    char id[40];
    long long us;
} record;

static record *records;
static atomic_long received, bad;
static const char *secret;

typedef struct request {
    char *body;
    size_t len;
    bool too_big;
} request;

static long long now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static bool signed_ok(struct MHD_Connection *c, const request *rq) {
    const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
    const char *ts = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-timestamp");
    const char *sigs = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-signature");
    char want[CZ_WEBHOOK_SIG_LEN];
    if (!id || !ts || !sigs ||
        cz_webhook_sign(secret, id, atoll(ts), rq->body ? rq->body : "", rq->len, want))
        return false;
    size_t n = strlen(want);
    for (const char *p = sigs; *p;) { /* space-separated "v1,..." entries */
        size_t len = strcspn(p, " ");
        if (len == n && !memcmp(p, want, n))
            return true;
        p += len;
        while (*p == ' ')
            p++;
    }
    return false;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **state) {
    (void)cls, (void)url, (void)method, (void)version;
    request *rq = *state;
    if (!rq) {
        *state = calloc(1, sizeof *rq);
        return *state ? MHD_YES : MHD_NO;
    }
    if (*size) {
        if (rq->len + *size > BODY_MAX) {
            rq->too_big = true;
        } else {
            char *b = realloc(rq->body, rq->len + *size + 1);
            if (!b)
                return MHD_NO;
            memcpy(b + rq->len, data, *size);
            rq->body = b;
            rq->len += *size;
            rq->body[rq->len] = '\0';
        }
        *size = 0;
        return MHD_YES;
    }
    long long at = now_us();
    if (secret && (rq->too_big || !signed_ok(c, rq)))
        atomic_fetch_add(&bad, 1);
    long i = atomic_fetch_add(&received, 1);
    const char *id = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "webhook-id");
    if (i < MAX_RECORDS) {
        snprintf(records[i].id, sizeof records[i].id, "%s", id ? id : "-");
        records[i].us = at;
    }
    struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(c, MHD_HTTP_NO_CONTENT, r);
    MHD_destroy_response(r);
    return rc;
}

static void on_done(void *cls, struct MHD_Connection *c, void **state,
                    enum MHD_RequestTerminationCode toe) {
    (void)cls, (void)c, (void)toe;
    request *rq = *state;
    if (rq) {
        free(rq->body);
        free(rq);
        *state = NULL;
    }
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: wh_receiver PORT OUT [SECRET]\n");
        return 2;
    }
    secret = argc > 3 ? argv[3] : NULL;
    records = calloc(MAX_RECORDS, sizeof *records);
    if (!records)
        return 1;
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, (uint16_t)atoi(argv[1]), NULL, NULL,
        on_request, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_done, NULL, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)1024, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned)1, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "wh_receiver: cannot listen on port %s\n", argv[1]);
        return 1;
    }
    int sig;
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    FILE *f = fopen(argv[2], "w");
    if (!f) {
        fprintf(stderr, "wh_receiver: cannot write %s\n", argv[2]);
        return 1;
    }
    long n = atomic_load(&received);
    for (long i = 0; i < n && i < MAX_RECORDS; i++)
        fprintf(f, "%s %lld\n", records[i].id, records[i].us);
    fclose(f);
    printf("received %ld bad_signatures %ld\n", n, atomic_load(&bad));
    free(records);
    return 0;
}
