/* The inference stage.
 *
 * Reads the canonical request and its controls, runs the request's model
 * (backend.h: composer@1 or http@1) into the job's artifact folder, commits
 * the files it made and hands the job to post-processing. Events: started,
 * progress (at most every 2 s of work, and at the end), generated (with the
 * provenance: model, seed, the request's controls, what the model chose, and
 * the artifacts: raw mix, MIDI, stems), or failed with a failure class.
 * A canceled job (its Redis flag is read between steps and at least every
 * 250 ms of rendering) stops and leaves no files.
 *
 * cz_inference_run() is the part that does not need Kafka, shared with
 * `cadenza-worker render`, so the benchmark runs the pool's own code. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/artifact.h"
#include "common/clock.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "workers/models/backend.h"
#include "workers/stages.h"

#define PROGRESS_EVERY_MS 2000
#define CANCEL_CHECK_EVERY_MS 250
#define DEFAULT_MODEL "composer@1"

typedef struct progress {
    cz_worker *w;
    const cz_job_msg *job;
    int64_t last_ms;              /* last progress event */
    int64_t last_cancel_check_ms; /* last look at the cancel flag */
    double fraction;              /* the last told */
    bool ended;                   /* its batch has moved past it */
    struct progress *batch;       /* every job of its batch (itself when alone) */
    int n_batch;
} progress;

static void progress_send(progress *p, int64_t now) {
    p->last_ms = now;
    cJSON *ev = cz_worker_event(p->w, p->job, CZ_EV_PROGRESS);
    cJSON_AddStringToObject(ev, "stage", "render");
    cJSON_AddNumberToObject(ev, "percent", 100.0 * p->fraction);
    cz_worker_send(p->w, p->job, CZ_TOPIC_EVENTS, ev);
    cJSON_Delete(ev);
}

/* A batch works its jobs one after another once decoded: every job of it
 * that is waiting is told its progress as often as the one at work, so no
 * job's lease runs out while another is rendered. */
static void progress_keep_alive(progress *p, int64_t now) {
    for (int i = 0; i < p->n_batch; i++) {
        progress *o = &p->batch[i];
        if (o != p && !o->ended && now - o->last_ms >= PROGRESS_EVERY_MS)
            progress_send(o, now);
    }
}

/* Stop when the job is canceled, or when the worker is stopping (the job
 * is then handed back and done again). */
static bool on_canceled(void *user) {
    progress *p = user;
    p->last_cancel_check_ms = cz_mono_ms();
    cz_worker_poll(p->w);
    return cz_worker_stopping(p->w) || cz_worker_canceled(p->w, p->job);
}

static bool on_stopping(void *user) {
    return cz_worker_stopping(((progress *)user)->w);
}

static int on_progress(void *user, double fraction) {
    progress *p = user;
    int64_t now = cz_mono_ms();
    cz_worker_poll(p->w);
    if (cz_worker_stopping(p->w))
        return 1; /* the process is stopping: hand the job back */
    /* Between steps: stop a canceled job instead of finishing it. */
    if (now - p->last_cancel_check_ms >= CANCEL_CHECK_EVERY_MS && on_canceled(p))
        return 1;
    p->fraction = fraction;
    progress_keep_alive(p, now);
    if (now - p->last_ms >= PROGRESS_EVERY_MS)
        progress_send(p, now);
    return 0;
}

void *cz_inference_open(const cz_config *cfg, cz_err *err) {
    /* Every model is prepared once (the SoundFont loaded) and serves every job. */
    return cz_backends_open(cfg, err);
}

void cz_inference_close(void *state) {
    cz_backends_close(state);
}

/* The request's controls: the ones the API stored, or, for a request that
 * has none (written by hand, or before controls existed), read afresh with
 * the same vocabulary the API uses. */
static int request_controls(const cJSON *req, cz_controls *c, cz_err *err) {
    const cJSON *stored = cJSON_GetObjectItemCaseSensitive(req, "controls");
    if (stored)
        return cz_controls_from_json(stored, c, err);
    return cz_prompt_controls_of(req, c, NULL, err);
}

/* The backend's request for a job's canonical request @p req. @returns 0,
 * or -1 with @p err when its controls cannot be read (invalid_input). */
static int gen_request(const cJSON *req, const char *job_id, int attempt, const char *traceparent,
                       const char *dir, cz_controls *controls, cz_gen_request *g, cz_err *err) {
    if (request_controls(req, controls, err) != 0)
        return -1;
    const char *model = cz_json_str(req, "model");
    double duration = cz_json_num(req, "duration_s", 0);
    if (!(duration > 0))
        duration = controls->duration_s > 0 ? controls->duration_s : 30;
    *g = (cz_gen_request){
        .job_id = job_id,
        .attempt = attempt,
        .traceparent = traceparent,
        .model = model ? model : DEFAULT_MODEL,
        .request = req,
        .controls = controls,
        .duration_s = duration,
        .seed = (uint64_t)cz_json_num(req, "seed", 0),
        .stems = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "stems")),
        .dir = dir,
    };
    return 0;
}

int cz_inference_run(void *state, const cJSON *req, const char *job_id, int attempt,
                     const char *traceparent, const char *dir, const cz_gen_hooks *hooks,
                     cz_gen_result *res, cz_err *err) {
    memset(res, 0, sizeof *res);
    cz_controls controls;
    cz_gen_request g;
    if (gen_request(req, job_id, attempt, traceparent, dir, &controls, &g, err) != 0) {
        res->failure_class = "invalid_input";
        return -1;
    }
    return cz_backends_generate(state, &g, hooks, res, err);
}

/* The raw mix among the artifacts: what post-processing masters. */
static const cJSON *find_mix(const cJSON *artifacts) {
    for (const cJSON *a = artifacts ? artifacts->child : NULL; a; a = a->next) {
        const char *kind = cz_json_str(a, "kind");
        if (kind && !strcmp(kind, "raw"))
            return a;
    }
    return NULL;
}

/* Before a job's model runs: a canceled job is skipped (@returns 1), a
 * job whose folder cannot be made fails (@returns -1, or -2 when even the
 * failure could not be sent); otherwise `started` is sent and @p dir made.
 * @returns 0 to go on. */
static int job_begin(cz_worker *w, const cz_job_msg *job, char dir[1024]) {
    if (cz_worker_canceled(w, job)) {
        cz_log_job(CZ_LOG_INFO, job->job_id, job->trace_id, "skipped: job canceled");
        return 1;
    }
    cz_worker_emit(w, job, CZ_EV_STARTED, "render");
    cz_err err;
    if (cz_artifact_dir(cz_worker_config(w)->artifact_dir, job->job_id, job->attempt, dir, 1024,
                        &err))
        return cz_worker_fail(w, job, "internal", err.msg) ? -2 : -1;
    return 0;
}

/* After a job's model ran (@p rc as generate's): its files committed, the
 * `generated` event with the provenance, and the job handed to the post
 * pool; or its failure reported. @returns the stage's answer. */
static int job_end(cz_worker *w, const cz_job_msg *job, cz_gen_result *res, int rc, cz_err *err,
                   int64_t t0) {
    cJSON *artifacts = NULL;
    if (rc == 0 && !(artifacts = cz_gen_result_commit(res, err))) {
        res->failure_class = "internal";
        rc = -1;
    }
    if (rc != 0) {
        const char *failure = res->failure_class ? res->failure_class : "internal";
        cz_gen_result_free(res);
        if (rc > 0 && cz_worker_stopping(w))
            return -1; /* the process is stopping: the job is done again later */
        if (rc > 0) {  /* canceled: the scheduler already moved the job to canceled */
            cz_log_job(CZ_LOG_INFO, job->job_id, job->trace_id, "render stopped: job canceled");
            return 0;
        }
        return cz_worker_fail(w, job, failure, err->msg) ? -1 : 0;
    }

    const cJSON *req = job->request;
    const cJSON *mix = find_mix(artifacts);
    double duration = cz_json_num(mix, "duration_s", 0);
    cJSON *ev = cz_worker_event(w, job, CZ_EV_GENERATED);
    cJSON_AddStringToObject(ev, "stage", "render");
    cJSON_AddNumberToObject(ev, "compute_ms", (double)(cz_mono_ms() - t0));
    /* Provenance: which model and seed made it, from which controls, and
     * what the model chose (tempo, key, form, instruments...). */
    const char *model = cz_json_str(req, "model");
    cJSON_AddStringToObject(ev, "model", model ? model : DEFAULT_MODEL);
    cJSON_AddNumberToObject(ev, "seed", cz_json_num(req, "seed", 0));
    const cJSON *controls = cJSON_GetObjectItemCaseSensitive(req, "controls");
    if (controls)
        cJSON_AddItemToObject(ev, "controls", cJSON_Duplicate(controls, true));
    const cJSON *chosen = res->chosen;
    if (chosen)
        cJSON_AddItemToObject(ev, "chosen", cJSON_Duplicate(chosen, true));
    cJSON_AddItemToObject(ev, "artifacts", cJSON_Duplicate(artifacts, true));
    rc = cz_worker_send(w, job, CZ_TOPIC_EVENTS, ev);
    cJSON_Delete(ev);

    /* The post message carries everything the next stage needs. */
    cJSON *next = cJSON_CreateObject();
    cJSON_AddNumberToObject(next, "schema", 1);
    cJSON_AddStringToObject(next, "job_id", job->job_id);
    cJSON_AddNumberToObject(next, "attempt", job->attempt);
    if (job->tenant)
        cJSON_AddStringToObject(next, "tenant", job->tenant);
    if (job->trace_id)
        cJSON_AddStringToObject(next, "trace_id", job->trace_id);
    cJSON_AddItemToObject(next, "request", cJSON_Duplicate(req, true));
    if (mix)
        cJSON_AddItemToObject(next, "raw", cJSON_Duplicate(mix, true));
    /* What the model chose, for the post worker's provenance manifest. */
    if (chosen)
        cJSON_AddItemToObject(next, "chosen", cJSON_Duplicate(chosen, true));
    rc |= cz_worker_send(w, job, CZ_TOPIC_POST, next);
    cJSON_Delete(next);
    cJSON_Delete(artifacts);
    cz_gen_result_free(res);
    cz_log_job(CZ_LOG_INFO, job->job_id, job->trace_id, "generated %.1f s in %lld ms", duration,
               (long long)(cz_mono_ms() - t0));
    return rc ? -1 : 0;
}

int cz_inference_stage(cz_worker *w, const cz_job_msg *job) {
    int64_t t0 = cz_mono_ms();
    char dir[1024];
    int begun = job_begin(w, job, dir);
    if (begun)
        return begun == -2 ? -1 : 0;
    progress prog = {.w = w, .job = job, .last_ms = t0, .last_cancel_check_ms = t0};
    prog.batch = &prog, prog.n_batch = 1;
    cz_gen_hooks hooks = {
        .progress = on_progress, .canceled = on_canceled, .stopping = on_stopping, .user = &prog};
    cz_gen_result res;
    cz_err err;
    int rc = cz_inference_run(cz_worker_state(w), job->request, job->job_id, job->attempt,
                              job->traceparent, dir, &hooks, &res, &err);
    return job_end(w, job, &res, rc, &err, t0);
}

const char *cz_inference_batch_key(void *state, const cz_job_msg *job) {
    const char *model = cz_json_str(job->request, "model");
    return model && cz_backends_batches(state, model) ? model : NULL;
}

/* One job of a batch, from its message to its result. */
typedef struct batch_job {
    cz_worker *w;
    const cz_job_msg *job;
    int64_t t0;
    char dir[1024];
    cz_controls controls;
    cz_gen_request req;
    cz_gen_hooks hooks;
    cz_gen_result res;
    progress *prog;
    int *rc; /* the stage's answer for this job */
} batch_job;

/* A job of the batch is over: it is handed on (or its failure reported)
 * at once, while the batch goes on with the others. */
static void batch_job_done(cz_gen_job *g) {
    batch_job *b = g->user;
    b->prog->ended = true;
    *b->rc = job_end(b->w, b->job, &b->res, g->rc, &g->err, b->t0);
}

void cz_inference_batch(cz_worker *w, const cz_job_msg *jobs, int n, int *rcs) {
    int64_t t0 = cz_mono_ms();
    batch_job *b = cz_calloc((size_t)n, sizeof *b);
    progress *prog = cz_calloc((size_t)n, sizeof *prog);
    cz_gen_job *run = cz_calloc((size_t)n, sizeof *run);
    int m = 0;
    for (int i = 0; i < n; i++) {
        const cz_job_msg *job = &jobs[i];
        prog[i] = (progress){.w = w,
                             .job = job,
                             .last_ms = t0,
                             .last_cancel_check_ms = t0,
                             .batch = prog,
                             .n_batch = n,
                             .ended = true};
        b[i] = (batch_job){.w = w, .job = job, .t0 = t0, .prog = &prog[i], .rc = &rcs[i]};
        int begun = job_begin(w, job, b[i].dir);
        if (begun) {
            rcs[i] = begun == -2 ? -1 : 0;
            continue;
        }
        cz_err err;
        if (gen_request(job->request, job->job_id, job->attempt, job->traceparent, b[i].dir,
                        &b[i].controls, &b[i].req, &err)) {
            rcs[i] = cz_worker_fail(w, job, "invalid_input", err.msg) ? -1 : 0;
            continue;
        }
        prog[i].ended = false;
        b[i].hooks = (cz_gen_hooks){.progress = on_progress,
                                    .canceled = on_canceled,
                                    .stopping = on_stopping,
                                    .user = &prog[i]};
        run[m++] = (cz_gen_job){.req = &b[i].req,
                                .hooks = &b[i].hooks,
                                .out = &b[i].res,
                                .done = batch_job_done,
                                .user = &b[i]};
    }
    if (m > 0)
        cz_backends_generate_batch(cz_worker_state(w), run, m);
    free(run);
    free(prog);
    free(b);
}
