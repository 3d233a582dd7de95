/* The post-processing stage.
 *
 * Reads the raw mix, checks it is the file the inference stage wrote (its
 * sha256), masters it to the job's loudness target (master.c), writes the
 * requested encodings, and reports the measurements as the job's QA report.
 * A master that misses its loudness target or true-peak ceiling is flagged
 * for review instead of passing silently. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "../common/artifact.h"
#include "../common/clock.h"
#include "../common/json.h"
#include "../common/log.h"
#include "master.h"
#include "stages.h"

#define LOUDNESS_TOLERANCE_LU 0.5

static cJSON *loudness_json(const cz_loudness *l) {
    cJSON *o = cJSON_CreateObject();
    /* Silence has no integrated loudness: report null, not -inf. */
    if (isfinite(l->integrated_lufs))
        cJSON_AddNumberToObject(o, "integrated_lufs", round(l->integrated_lufs * 100) / 100);
    else
        cJSON_AddNullToObject(o, "integrated_lufs");
    cJSON_AddNumberToObject(o, "loudness_range_lu", round(l->lra_lu * 100) / 100);
    cJSON_AddNumberToObject(o, "true_peak_dbtp", round(l->true_peak_dbtp * 100) / 100);
    cJSON_AddNumberToObject(o, "sample_peak_dbfs", round(l->sample_peak_dbfs * 100) / 100);
    cJSON_AddNumberToObject(o, "duration_s", round(l->duration_s * 1000) / 1000);
    return o;
}

static cJSON *qa_report(const cz_master_report *rep, const cz_master_target *t, bool *pass) {
    cJSON *qa = loudness_json(&rep->output);
    cJSON_AddItemToObject(qa, "input", loudness_json(&rep->input));
    cJSON_AddNumberToObject(qa, "gain_db", round(rep->gain_db * 100) / 100);
    cJSON *target = cJSON_AddObjectToObject(qa, "target");
    cJSON_AddNumberToObject(target, "integrated_lufs", t->target_lufs);
    cJSON_AddNumberToObject(target, "true_peak_dbtp", t->true_peak_dbtp);
    bool loud_ok = fabs(rep->output.integrated_lufs - t->target_lufs) <= LOUDNESS_TOLERANCE_LU;
    bool peak_ok = rep->output.true_peak_dbtp <= t->true_peak_dbtp + 0.05;
    cJSON *v = cJSON_AddObjectToObject(qa, "verdicts");
    cJSON_AddStringToObject(v, "loudness", loud_ok ? "pass" : "fail");
    cJSON_AddStringToObject(v, "true_peak", peak_ok ? "pass" : "fail");
    *pass = loud_ok && peak_ok;
    return qa;
}

static int write_master(cz_worker *w, const cz_job_msg *job, const cz_audio *a, const char *format,
                        cJSON *artifacts, cz_err *err) {
    char name[32];
    snprintf(name, sizeof name, "master.%s", format);
    cz_artifact_file f;
    cz_audio_format fmt = !strcmp(format, "wav") ? CZ_AUDIO_WAV_24 : CZ_AUDIO_FLAC_24;
    if (cz_artifact_prepare(cz_worker_config(w)->artifact_dir, job->job_id, job->attempt, name, &f,
                            err) ||
        cz_audio_write(f.tmp, a, fmt, err) || cz_artifact_commit(&f, err))
        return -1;
    cJSON *o = cz_artifact_json(&f, "master", "mix", format, (double)a->frames / a->sample_rate);
    cJSON_AddItemToArray(artifacts, o);
    return 0;
}

/* The post pool keeps no state yet; the catalogue index will live here. */
static int post_state;

void *cz_post_open(const cz_config *cfg, cz_err *err) {
    (void)cfg, (void)err;
    return &post_state;
}

void cz_post_close(void *state) {
    (void)state;
}

int cz_post_stage(cz_worker *w, const cz_job_msg *job) {
    int64_t t0 = cz_mono_ms();
    cz_worker_emit(w, job, CZ_EV_POST_STARTED, "master");

    const cJSON *raw = cJSON_GetObjectItemCaseSensitive(job->msg, "raw");
    const char *path = cz_artifact_uri_path(cz_json_str(raw, "uri"));
    const char *want = cz_json_str(raw, "sha256");
    if (!path || !want)
        return cz_worker_fail(w, job, "invalid_input", "post message lacks the raw artifact") ? -1
                                                                                              : 0;
    char have[CZ_SHA256_HEX];
    cz_err err;
    if (cz_sha256_file(path, have, NULL, &err))
        return cz_worker_fail(w, job, "internal", err.msg) ? -1 : 0;
    if (strcmp(have, want))
        return cz_worker_fail(w, job, "internal", "raw audio does not match its sha256") ? -1 : 0;

    cz_audio a = {0};
    if (cz_audio_read(path, &a, &err))
        return cz_worker_fail(w, job, "internal", err.msg) ? -1 : 0;
    const cJSON *loud = cJSON_GetObjectItemCaseSensitive(job->request, "loudness");
    cz_master_target t = {
        .target_lufs = cz_json_num(loud, "target_lufs", -14),
        .true_peak_dbtp = cz_json_num(loud, "true_peak_dbtp", -1),
    };
    cz_master_report rep;
    if (cz_master_apply(&a, &t, &rep, &err)) {
        cz_audio_free(&a);
        return cz_worker_fail(w, job, "model_error", err.msg) ? -1 : 0;
    }
    cz_worker_poll(w);

    cJSON *artifacts = cJSON_CreateArray();
    const cJSON *outputs = cJSON_GetObjectItemCaseSensitive(job->request, "outputs");
    bool flac = false;
    const cJSON *o;
    int rc = 0;
    cJSON_ArrayForEach(o, outputs) {
        if (cJSON_IsString(o) && !rc) {
            flac |= !strcmp(o->valuestring, "flac");
            rc = write_master(w, job, &a, o->valuestring, artifacts, &err);
        }
    }
    /* The FLAC master is always made: it is what the audio endpoint serves by default. */
    if (!flac && !rc)
        rc = write_master(w, job, &a, "flac", artifacts, &err);
    cz_audio_free(&a);
    if (rc) {
        cJSON_Delete(artifacts);
        return cz_worker_fail(w, job, "internal", err.msg) ? -1 : 0;
    }

    bool pass;
    cJSON *qa = qa_report(&rep, &t, &pass);
    cJSON *ev = cz_worker_event(w, job, pass ? CZ_EV_POST_DONE : CZ_EV_NEEDS_REVIEW);
    cJSON_AddStringToObject(ev, "stage", "master");
    cJSON_AddNumberToObject(ev, "compute_ms", (double)(cz_mono_ms() - t0));
    cJSON_AddItemToObject(ev, "artifacts", artifacts);
    cJSON_AddItemToObject(ev, "qa", qa);
    rc = cz_worker_send(w, job, CZ_TOPIC_EVENTS, ev);
    cJSON_Delete(ev);
    cz_log_job(CZ_LOG_INFO, job->job_id, job->trace_id,
               "mastered to %.2f LUFS / %.2f dBTP (target %.1f / %.1f) in %lld ms",
               rep.output.integrated_lufs, rep.output.true_peak_dbtp, t.target_lufs,
               t.true_peak_dbtp, (long long)(cz_mono_ms() - t0));
    return rc ? -1 : 0;
}
