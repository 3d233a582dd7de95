/* cadenza-worker: one process of a worker pool, or the post chain on files.
 *
 *   cadenza-worker --pool inference   render requests into raw audio
 *   cadenza-worker --pool post        master, measure and encode
 *   cadenza-worker master IN OUT [--preset NAME] [--target LUFS] [--ceiling DBTP]
 *                                    the post pool's chain on one file, outside
 *                                    Kafka: prints the QA report as JSON
 *   cadenza-worker render --prompt TEXT --out DIR [options]
 *                                    one request through the inference stage's
 *                                    code, without Kafka: files in DIR, a JSON
 *                                    summary with CPU times on stdout
 *                                    (tests/bench/bench_render.sh)
 *
 * SIGINT/SIGTERM finish the job in hand, commit offsets and exit. */
#include <errno.h>
#include <fluidsynth.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "common/config.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/music/prompt.h"
#include "workers/pool.h"
#include "workers/stages.h"

static atomic_bool stop;

/* FluidSynth's messages join ours as JSON lines; its chatter below warnings
 * is dropped. */
static void on_fluid_log(int level, const char *message, void *data) {
    (void)data;
    cz_log_job(level <= FLUID_ERR ? CZ_LOG_ERROR : CZ_LOG_WARN, NULL, NULL, "fluidsynth: %s",
               message);
}

static void on_signal(int sig) {
    (void)sig;
    atomic_store(&stop, true);
}

/* ---- cadenza-worker render ------------------------------------------------ */

static double cpu_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static double wall_seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int render_usage(void) {
    fprintf(stderr, "usage: cadenza-worker render --prompt TEXT --out DIR [--duration S] "
                    "[--tempo BPM] [--key KEY] [--genre G] [--mood M] [--instrument NAME]... "
                    "[--seed N] [--model composer@1|neural@1|http@1] [--stems]\n");
    return 2;
}

/* Builds the request the API would store: the fields given, the controls
 * read from them with the API's vocabulary, the duration the prompt names. */
static cJSON *render_request(cJSON *req, cz_err *err) {
    cz_controls c;
    if (cz_prompt_controls_of(req, &c, NULL, err) != 0)
        return NULL;
    if (!cJSON_HasObjectItem(req, "duration_s"))
        cJSON_AddNumberToObject(req, "duration_s", c.duration_s > 0 ? c.duration_s : 30);
    cJSON_AddItemToObject(req, "controls", cz_controls_json(&c));
    cJSON_AddItemToObject(req, "ignored", cz_controls_ignored_json(&c));
    return req;
}

/* Reads the command line into the request the API would be sent: the
 * fields given, the seed (default 1) and the model (default composer@1).
 * @returns the request, or NULL when the command line is not one (the
 * caller prints the usage). */
static cJSON *render_options(int argc, char **argv, const char **out, double *seed) {
    static const struct option opts[] = {
        {"prompt", required_argument, NULL, 'p'},   {"out", required_argument, NULL, 'o'},
        {"duration", required_argument, NULL, 'd'}, {"tempo", required_argument, NULL, 't'},
        {"key", required_argument, NULL, 'k'},      {"genre", required_argument, NULL, 'g'},
        {"mood", required_argument, NULL, 'm'},     {"instrument", required_argument, NULL, 'i'},
        {"seed", required_argument, NULL, 's'},     {"model", required_argument, NULL, 'M'},
        {"stems", no_argument, NULL, 'S'},          {NULL, 0, NULL, 0}};
    cJSON *req = cJSON_CreateObject();
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'p':
            cJSON_AddStringToObject(req, "prompt", optarg);
            break;
        case 'o':
            *out = optarg;
            break;
        case 'd':
            cJSON_AddNumberToObject(req, "duration_s", atof(optarg));
            break;
        case 't':
            cJSON_AddNumberToObject(req, "tempo_bpm", atof(optarg));
            break;
        case 'k':
            cJSON_AddStringToObject(req, "key", optarg);
            break;
        case 'g':
            cJSON_AddStringToObject(req, "genre", optarg);
            break;
        case 'm':
            cJSON_AddStringToObject(req, "mood", optarg);
            break;
        case 'i': {
            cJSON *list = cJSON_GetObjectItemCaseSensitive(req, "instruments");
            if (!list)
                list = cJSON_AddArrayToObject(req, "instruments");
            cJSON_AddItemToArray(list, cJSON_CreateString(optarg));
            break;
        }
        case 's':
            *seed = strtod(optarg, NULL);
            break;
        case 'M':
            cJSON_AddStringToObject(req, "model", optarg);
            break;
        case 'S':
            cJSON_AddBoolToObject(req, "stems", true);
            break;
        default:
            cJSON_Delete(req);
            return NULL;
        }
    }
    if (!*out || !cJSON_HasObjectItem(req, "prompt")) {
        cJSON_Delete(req);
        return NULL;
    }
    cJSON_AddNumberToObject(req, "seed", *seed);
    if (!cJSON_HasObjectItem(req, "model"))
        cJSON_AddStringToObject(req, "model", "composer@1");
    return req;
}

/* Completes the request as the API would and makes the folder @p out; its
 * absolute path goes to @p dir, since the artifacts' file:// URIs are made
 * from it. @returns 0, or 1 after saying why not. */
static int render_prepare(cJSON *req, const char *out, char dir[PATH_MAX], cz_err *err) {
    if (!render_request(req, err) || (mkdir(out, 0755) != 0 && errno != EEXIST) ||
        !realpath(out, dir)) {
        fprintf(stderr, "cadenza-worker render: %s\n", err->msg[0] ? err->msg : strerror(errno));
        return 1;
    }
    return 0;
}

/* CPU seconds (wall seconds for generate_wall) of each step, for the
 * summary: the benchmark compares them against the audio's length. */
typedef struct render_times {
    double load_cpu, generate_cpu, generate_wall, commit_cpu;
} render_times;

/* Prints the JSON summary: what was asked, what the model chose, the files
 * and the times. Takes the artifacts and res->chosen. */
static void render_summary(const cJSON *req, double seed, const render_times *t, cz_gen_result *res,
                           cJSON *artifacts) {
    double audio = cz_json_num(req, "duration_s", 0);
    cJSON *sum = cJSON_CreateObject();
    cJSON_AddStringToObject(sum, "model", cz_json_str(req, "model"));
    cJSON_AddNumberToObject(sum, "seed", seed);
    cJSON_AddNumberToObject(sum, "audio_s", audio);
    cJSON_AddNumberToObject(sum, "load_cpu_s", t->load_cpu);
    cJSON_AddNumberToObject(sum, "generate_cpu_s", t->generate_cpu);
    cJSON_AddNumberToObject(sum, "generate_wall_s", t->generate_wall);
    cJSON_AddNumberToObject(sum, "commit_cpu_s", t->commit_cpu);
    cJSON_AddNumberToObject(sum, "x_realtime", audio / t->generate_cpu);
    cJSON_AddItemToObject(sum, "controls",
                          cJSON_Duplicate(cJSON_GetObjectItem(req, "controls"), true));
    cJSON_AddItemToObject(sum, "ignored",
                          cJSON_Duplicate(cJSON_GetObjectItem(req, "ignored"), true));
    if (res->chosen) {
        cJSON_AddItemToObject(sum, "chosen", res->chosen);
        res->chosen = NULL;
    }
    cJSON_AddItemToObject(sum, "artifacts", artifacts);
    char *text = cz_json_print(sum);
    puts(text);
    free(text);
    cJSON_Delete(sum);
}

/* Loads the models, generates the request into @p dir through the
 * inference stage's code (as a worker would, without Kafka), commits the
 * files and prints the summary. @returns 0, or 1 after saying why not. */
static int render_generate(cJSON *req, const char *dir, double seed, cz_err *err) {
    cz_config cfg;
    cz_config_load(&cfg);
    double t0 = cpu_seconds();
    void *state = cz_inference_open(&cfg, err);
    double t1 = cpu_seconds(), w1 = wall_seconds();
    if (!state) {
        fprintf(stderr, "cadenza-worker render: %s\n", err->msg);
        return 1;
    }
    cz_gen_hooks hooks = {0};
    cz_gen_result res;
    int rc = cz_inference_run(state, req, "render", 1, NULL, dir, &hooks, &res, err);
    double t2 = cpu_seconds(), w2 = wall_seconds();
    cJSON *artifacts = rc == 0 ? cz_gen_result_commit(&res, err) : NULL;
    double t3 = cpu_seconds();
    if (artifacts) {
        render_times t = {t1 - t0, t2 - t1, w2 - w1, t3 - t2};
        render_summary(req, seed, &t, &res, artifacts);
    } else {
        fprintf(stderr, "cadenza-worker render: %s (%s)\n", err->msg,
                res.failure_class ? res.failure_class : "internal");
    }
    cz_gen_result_free(&res);
    cz_inference_close(state);
    return artifacts ? 0 : 1;
}

/* cadenza-worker render: read the options, prepare the request and the
 * folder, generate and print the summary. */
static int render_main(int argc, char **argv) {
    const char *out = NULL;
    double seed = 1;
    cJSON *req = render_options(argc, argv, &out, &seed);
    if (!req)
        return render_usage();
    cz_err err = {{0}};
    char dir[PATH_MAX];
    int rc = render_prepare(req, out, dir, &err);
    if (rc == 0)
        rc = render_generate(req, dir, seed, &err);
    cJSON_Delete(req);
    return rc;
}

int main(int argc, char **argv) {
    cz_mem_init();
    if (argc > 1 && !strcmp(argv[1], "master"))
        return cz_post_master_cli(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "render")) {
        cz_log_init("worker-render");
        fluid_set_log_function(FLUID_PANIC, on_fluid_log, NULL);
        fluid_set_log_function(FLUID_ERR, on_fluid_log, NULL);
        fluid_set_log_function(FLUID_WARN, on_fluid_log, NULL);
        fluid_set_log_function(FLUID_INFO, NULL, NULL);
        fluid_set_log_function(FLUID_DBG, NULL, NULL);
        return render_main(argc - 1, argv + 1);
    }
    const char *pool = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--pool") && i + 1 < argc)
            pool = argv[++i];
        else if (!strncmp(argv[i], "--pool=", 7))
            pool = argv[i] + 7;
    }
    if (!pool || (strcmp(pool, "inference") && strcmp(pool, "post"))) {
        fprintf(stderr, "usage: cadenza-worker --pool inference|post\n"
                        "       cadenza-worker master IN OUT [--preset streaming|podcast|"
                        "broadcast]\n"
                        "                             [--target LUFS] [--ceiling DBTP]\n"
                        "       cadenza-worker render --prompt TEXT --out DIR [options]\n");
        return 2;
    }
    cz_config cfg;
    cz_config_load(&cfg);
    cz_log_init(!strcmp(pool, "inference") ? "worker-inference" : "worker-post");

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    fluid_set_log_function(FLUID_PANIC, on_fluid_log, NULL);
    fluid_set_log_function(FLUID_ERR, on_fluid_log, NULL);
    fluid_set_log_function(FLUID_WARN, on_fluid_log, NULL);
    fluid_set_log_function(FLUID_INFO, NULL, NULL);
    fluid_set_log_function(FLUID_DBG, NULL, NULL);

    bool inference = !strcmp(pool, "inference");
    cz_pool_def def = {
        .name = pool,
        .topic = inference ? CZ_TOPIC_GENERATE : CZ_TOPIC_POST,
        .stage = inference ? cz_inference_stage : cz_post_stage,
        .batch = inference ? cz_inference_batch : NULL,
        .batch_key = inference ? cz_inference_batch_key : NULL,
        .max_batch = cfg.max_batch,
        .max_queue_delay_ms = cfg.max_queue_delay_ms,
    };
    cz_err err;
    def.state = inference ? cz_inference_open(&cfg, &err) : cz_post_open(&cfg, &err);
    if (!def.state) {
        cz_log_error("%s", err.msg);
        return 1;
    }
    int rc = cz_pool_run(&cfg, &def, &stop);
    if (inference)
        cz_inference_close(def.state);
    else
        cz_post_close(def.state);
    return rc;
}
