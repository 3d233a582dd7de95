/* cadenza-worker: one process of a worker pool, or the post chain on files.
 *
 *   cadenza-worker --pool inference   render requests into raw audio
 *   cadenza-worker --pool post        master, measure and encode
 *   cadenza-worker master IN OUT [--preset NAME] [--target LUFS] [--ceiling DBTP]
 *                                    the post pool's chain on one file, outside
 *                                    Kafka: prints the QA report as JSON
 *
 * SIGINT/SIGTERM finish the job in hand, commit offsets and exit. */
#include <fluidsynth.h>
#include <signal.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "../common/config.h"
#include "../common/log.h"
#include "pool.h"
#include "stages.h"

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

int main(int argc, char **argv) {
    if (argc > 1 && !strcmp(argv[1], "master"))
        return cz_post_master_cli(argc - 2, argv + 2);
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
                        "                             [--target LUFS] [--ceiling DBTP]\n");
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
