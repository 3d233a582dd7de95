/* Finishes jobs at a steady rate, the way post workers do, for the webhook
 * latency benchmark (tests/bench/bench_webhooks.sh runs it).
 *
 * Reads job ids (one per line, jobs waiting in postprocessing at attempt
 * 1) from IDS and produces, at RATE per second, each job's `post_done`
 * status event to cadenza.jobs.events with the headers a worker sets, a
 * master artifact and a passing QA report. The scheduler applies it (the
 * job becomes succeeded) and enqueues the webhooks in the same
 * transaction, exactly as for a real job. Writes "job_id microseconds"
 * (wall clock when the event was produced) to OUT, and prints the rate
 * achieved.
 *
 *   wh_events BROKERS RATE IDS OUT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/event.h"
#include "common/kafka.h"

static long long wall_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (long long)t.tv_sec * 1000000 + t.tv_nsec / 1000;
}

static double mono_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* A post worker's post_done for @p id: a master and a passing QA report. */
static char *post_done(const char *id) {
    char worker[64];
    snprintf(worker, sizeof worker, "bench:%d", (int)getpid());
    cJSON *o = cz_event_new(CZ_EV_POST_DONE, id, 1, worker);
    cJSON_AddStringToObject(o, "stage", "post");
    cJSON_AddNumberToObject(o, "compute_ms", 310);
    cJSON *list = cJSON_AddArrayToObject(o, "artifacts");
    cJSON *m = cJSON_CreateObject();
    char uri[128];
    snprintf(uri, sizeof uri, "file:///nonexistent/bench/%s/1/master.flac", id);
    cJSON_AddStringToObject(m, "kind", "master");
    cJSON_AddStringToObject(m, "name", "master");
    cJSON_AddStringToObject(m, "format", "flac");
    cJSON_AddStringToObject(m, "uri", uri);
    cJSON_AddStringToObject(m, "sha256",
                            "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08");
    cJSON_AddNumberToObject(m, "bytes", 2457600);
    cJSON_AddNumberToObject(m, "duration_s", 30.0);
    cJSON_AddItemToArray(list, m);
    cJSON *qa = cJSON_AddObjectToObject(o, "qa");
    cJSON_AddNumberToObject(qa, "integrated_lufs", -14.0);
    cJSON_AddNumberToObject(qa, "true_peak_dbtp", -1.1);
    cJSON_AddStringToObject(qa, "verdict", "pass");
    cJSON_AddArrayToObject(qa, "flags");
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: wh_events BROKERS RATE IDS OUT\n");
        return 2;
    }
    double rate = atof(argv[2]);
    FILE *in = fopen(argv[3], "r"), *out = fopen(argv[4], "w");
    if (rate <= 0 || !in || !out) {
        fprintf(stderr, "wh_events: need a positive rate, a readable IDS and a writable OUT\n");
        return 2;
    }
    cz_err err;
    rd_kafka_t *rk = cz_kafka_producer(argv[1], NULL, NULL, &err);
    if (!rk) {
        fprintf(stderr, "wh_events: %s\n", err.msg);
        return 1;
    }
    char id[64];
    long n = 0;
    double start = mono_s();
    while (fscanf(in, "%63s", id) == 1) {
        double due = start + (double)n / rate;
        for (double now = mono_s(); now < due; now = mono_s()) {
            rd_kafka_poll(rk, 0);
            double wait = due - now;
            usleep(wait > 0.002 ? 1000 : (useconds_t)(wait * 1e6));
        }
        char *payload = post_done(id);
        cz_msg_meta meta = {.job_id = id, .tenant = "bench", .traceparent = NULL, .attempt = 1};
        long long at = wall_us();
        if (!payload ||
            cz_kafka_produce(rk, CZ_TOPIC_EVENTS, &meta, payload, strlen(payload), NULL, &err)) {
            fprintf(stderr, "wh_events: %s\n", payload ? err.msg : "out of memory");
            free(payload);
            break;
        }
        free(payload);
        fprintf(out, "%s %lld\n", id, at);
        rd_kafka_poll(rk, 0);
        n++;
    }
    double elapsed = mono_s() - start;
    rd_kafka_flush(rk, 10000);
    rd_kafka_destroy(rk);
    fclose(in);
    fclose(out);
    printf("events %ld rate_per_s %.1f\n", n, elapsed > 0 ? (double)n / elapsed : 0.0);
    return 0;
}
