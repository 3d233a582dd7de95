/* The inference stage.
 *
 * Reads the canonical request, renders it with the pool's renderer, writes
 * the raw mix to the artifact store and hands the job to post-processing.
 * Events: started, progress (at most every 2 s of work, and at the end),
 * generated (with the raw artifact), or failed with a failure class. */
#include <stdio.h>
#include <string.h>

#include "../common/artifact.h"
#include "../common/clock.h"
#include "../common/json.h"
#include "../common/log.h"
#include "render.h"
#include "stages.h"

#define PROGRESS_EVERY_MS 2000
#define CANCEL_CHECK_EVERY_MS 250

typedef struct progress {
    cz_worker *w;
    const cz_job_msg *job;
    int64_t last_ms;              /* last progress event */
    int64_t last_cancel_check_ms; /* last look at the cancel flag */
} progress;

static int on_progress(void *user, double fraction) {
    progress *p = user;
    int64_t now = cz_mono_ms();
    cz_worker_poll(p->w);
    if (cz_worker_stopping(p->w))
        return 1; /* the process is stopping: hand the job back */
    /* Between steps: stop a canceled job instead of finishing it. */
    if (now - p->last_cancel_check_ms >= CANCEL_CHECK_EVERY_MS) {
        p->last_cancel_check_ms = now;
        if (cz_worker_canceled(p->w, p->job))
            return 1;
    }
    if (now - p->last_ms < PROGRESS_EVERY_MS)
        return 0;
    p->last_ms = now;
    cJSON *ev = cz_worker_event(p->w, p->job, CZ_EV_PROGRESS);
    cJSON_AddStringToObject(ev, "stage", "render");
    cJSON_AddNumberToObject(ev, "percent", 100.0 * fraction);
    cz_worker_send(p->w, p->job, CZ_TOPIC_EVENTS, ev);
    cJSON_Delete(ev);
    return 0;
}

#define SAMPLE_RATE 48000

void *cz_inference_open(const cz_config *cfg, cz_err *err) {
    /* The SoundFont is loaded once and serves every job of this process. */
    return cz_render_open(cfg->soundfont, SAMPLE_RATE, err);
}

void cz_inference_close(void *state) {
    cz_render_close(state);
}

int cz_inference_stage(cz_worker *w, const cz_job_msg *job) {
    int64_t t0 = cz_mono_ms();
    if (cz_worker_canceled(w, job)) {
        cz_log_job(CZ_LOG_INFO, job->job_id, job->trace_id, "skipped: job canceled");
        return 0;
    }
    cz_worker_emit(w, job, CZ_EV_STARTED, "render");

    const cJSON *req = job->request;
    cz_render_params p = {
        .duration_s = cz_json_num(req, "duration_s", 30),
        .tempo_bpm = cz_json_num(req, "tempo_bpm", 0),
        .key = cz_json_str(req, "key"),
        .mood = cz_json_str(req, "mood"),
        .genre = cz_json_str(req, "genre"),
        .seed = (uint64_t)cz_json_num(req, "seed", 0),
    };
    cz_audio audio = {0};
    cz_err err;
    progress prog = {.w = w, .job = job, .last_ms = t0};
    int rc = cz_render_generate(cz_worker_state(w), &p, on_progress, &prog, &audio, &err);
    if (rc != 0) {
        cz_audio_free(&audio);
        if (rc > 0 && cz_worker_stopping(w))
            return -1;
        if (rc > 0) { /* canceled: the scheduler already moved the job to canceled */
            cz_log_job(CZ_LOG_INFO, job->job_id, job->trace_id, "render stopped: job canceled");
            return 0;
        }
        return cz_worker_fail(w, job, "model_error", err.msg) ? -1 : 0;
    }

    cz_artifact_file f;
    if (cz_artifact_prepare(cz_worker_config(w)->artifact_dir, job->job_id, job->attempt, "raw.wav",
                            &f, &err) ||
        cz_audio_write(f.tmp, &audio, CZ_AUDIO_WAV_FLOAT, &err) || cz_artifact_commit(&f, &err)) {
        cz_audio_free(&audio);
        return cz_worker_fail(w, job, "internal", err.msg) ? -1 : 0;
    }
    double duration = (double)audio.frames / audio.sample_rate;
    cz_audio_free(&audio);

    cJSON *raw = cz_artifact_json(&f, "raw", "mix", "wav", duration);
    cJSON *ev = cz_worker_event(w, job, CZ_EV_GENERATED);
    cJSON_AddStringToObject(ev, "stage", "render");
    cJSON_AddNumberToObject(ev, "compute_ms", (double)(cz_mono_ms() - t0));
    cJSON_AddItemToArray(cJSON_AddArrayToObject(ev, "artifacts"), cJSON_Duplicate(raw, true));
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
    cJSON_AddItemToObject(next, "request", cJSON_Duplicate(job->request, true));
    cJSON_AddItemToObject(next, "raw", raw);
    rc |= cz_worker_send(w, job, CZ_TOPIC_POST, next);
    cJSON_Delete(next);
    cz_log_job(CZ_LOG_INFO, job->job_id, job->trace_id, "rendered %.1f s in %lld ms", duration,
               (long long)(cz_mono_ms() - t0));
    return rc ? -1 : 0;
}
