/* The post-processing stage, and the same chain on files for the command
 * line (`cadenza-worker master`).
 *
 * For each job: check the raw mix is the file the inference stage wrote
 * (its sha256); resample it to the output rate with libsoxr if it differs;
 * master it (master.c) to the job's loudness target; build the QA report
 * (qa.c); write the master in FLAC (always: the audio endpoint's default)
 * and in every other requested format while a second thread analyses it
 * for playlists (tempo, key, energy, moods, embedding: common/music/analysis.h,
 * the QA report's `analysis`); fingerprint the master and look it
 * up in the catalogue; write the provenance manifest; then emit `post_done`,
 * or `needs_review` with its reasons when a QA rule failed, the request
 * asked for review or the tenant reviews every track (common/review.h).
 * A silent render fails the job.
 *
 * The catalogue. The pool's state holds an in-memory inverted index of the
 * catalogue's fingerprints (fp_index.h), loaded from catalog_tracks when the
 * worker starts and topped up before every job with the rows imported since
 * (one indexed range query on the primary key). A master whose best match
 * scores at or over CADENZA_CATALOG_THRESHOLD (default 0.75, 1 - bit error
 * rate) is flagged with the track, its score and the offset. When the
 * catalogue cannot be read, the job is not passed unchecked: the stage asks
 * for the message again later, like any other outage. */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/artifact.h"
#include "common/clock.h"
#include "common/db/catalog.h"
#include "common/db/db.h"
#include "common/db/keys.h"
#include "common/db/review.h"
#include "common/json.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/music/analysis.h"
#include "common/music/fingerprint.h"
#include "common/music/fp_index.h"
#include "common/review.h"
#include "workers/master/master.h"
#include "workers/master/qa.h"
#include "workers/stages.h"

#define CZ_POST_DEFAULT_RATE 48000
#define CZ_POST_DEFAULT_THRESHOLD "0.75"

typedef struct cz_post {
    const cz_config *cfg;
    unsigned rate;        /* output sample rate */
    double threshold;     /* catalogue match score that flags a master */
    cz_fp_index *catalog; /* every catalogue track loaded so far */
    int64_t last_id;      /* highest catalogue id in the index */
    PGconn *db;           /* NULL until connected */
} cz_post;

/* ---------------------------------------------------------------- the chain */

/* Output formats: request name, file extension, libsndfile format, MIME. */
static const struct cz_post_format {
    const char *name;
    cz_audio_format fmt;
} cz_post_formats[] = {
    {"flac", CZ_AUDIO_FLAC_24},
    {"wav", CZ_AUDIO_WAV_24},
    {"mp3", CZ_AUDIO_MP3},
    {"opus", CZ_AUDIO_OPUS},
};

static const struct cz_post_format *cz_post_format_find(const char *name) {
    for (size_t i = 0; name && i < sizeof cz_post_formats / sizeof *cz_post_formats; i++)
        if (!strcmp(cz_post_formats[i].name, name))
            return &cz_post_formats[i];
    return NULL;
}

/* Resample, master and QA @p a in place, shared by the pool and the CLI.
 * @returns the QA report (caller frees), or NULL with @p err filled. */
static cJSON *cz_post_chain(cz_audio *a, unsigned rate, const cz_master_target *t,
                            const char *preset, const cz_master_settings *s, cz_master_report *rep,
                            cz_err *err) {
    int64_t t0 = cz_mono_ms();
    unsigned in_rate = a->sample_rate;
    cz_qa_stats in, out;
    cz_qa_scan(a, &in);
    if (cz_audio_resample(a, rate, err) || cz_master_apply_with(a, t, s, rep, err))
        return NULL;
    cz_qa_scan(a, &out);
    cJSON *qa = cz_qa_report(rep, t, preset, &in, in_rate, &out, a);
    if (cz_qa_curves(a, qa, err)) {
        cJSON_Delete(qa);
        return NULL;
    }
    cJSON_AddNumberToObject(cJSON_GetObjectItemCaseSensitive(qa, "chain"), "compute_ms",
                            (double)(cz_mono_ms() - t0));
    return qa;
}

/* The chain's settings as the manifest records them. */
static cJSON *cz_post_settings_json(const cz_master_settings *s, const cz_master_target *t,
                                    const char *preset, unsigned rate) {
    cJSON *o = cJSON_CreateObject();
    if (preset)
        cJSON_AddStringToObject(o, "preset", preset);
    cJSON_AddNumberToObject(o, "target_lufs", t->target_lufs);
    cJSON_AddNumberToObject(o, "true_peak_dbtp", t->true_peak_dbtp);
    cJSON_AddNumberToObject(o, "sample_rate", rate);
    cJSON_AddNumberToObject(o, "highpass_hz", s->highpass_hz);
    cJSON *c = cJSON_AddObjectToObject(o, "compressor");
    cJSON_AddNumberToObject(c, "threshold_lu_above_input", s->comp_threshold_lu);
    cJSON_AddNumberToObject(c, "ratio", s->comp_ratio);
    cJSON_AddNumberToObject(c, "knee_db", s->comp_knee_db);
    cJSON_AddNumberToObject(c, "attack_ms", s->comp_attack_ms);
    cJSON_AddNumberToObject(c, "release_ms", s->comp_release_ms);
    cJSON_AddNumberToObject(c, "max_reduction_db", s->comp_max_db);
    cJSON *l = cJSON_AddObjectToObject(o, "limiter");
    cJSON_AddNumberToObject(l, "lookahead_ms", s->limiter_lookahead_ms);
    cJSON_AddNumberToObject(l, "release_ms", s->limiter_release_ms);
    cJSON_AddNumberToObject(l, "oversampling", 4);
    cJSON_AddNumberToObject(l, "margin_db", s->limiter_margin_db);
    cJSON_AddNumberToObject(o, "max_push_db", s->max_push_db);
    cJSON_AddNumberToObject(o, "tolerance_lu", s->tolerance_lu);
    cJSON *e = cJSON_AddObjectToObject(o, "encoders");
    cJSON_AddStringToObject(e, "flac", "FLAC 24-bit (libsndfile)");
    cJSON_AddStringToObject(e, "wav", "WAV PCM 24-bit (libsndfile)");
    cJSON_AddStringToObject(e, "mp3", "MPEG-1 Layer III 320 kbit/s CBR (libsndfile, LAME)");
    cJSON_AddStringToObject(e, "opus", "Ogg Opus (libsndfile, libopus)");
    return o;
}

/* ---------------------------------------------------------------- the CLI */

static const char *cz_post_ext(const char *path) {
    const char *dot = strrchr(path, '.');
    return dot ? dot + 1 : "";
}

int cz_post_master_cli(int argc, char **argv) {
    const char *in = NULL, *out = NULL, *preset_name = NULL;
    cz_master_target t = {-14.0, -1.0};
    bool target_given = false, ceiling_given = false;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--preset") && i + 1 < argc)
            preset_name = argv[++i];
        else if (!strcmp(argv[i], "--target") && i + 1 < argc)
            t.target_lufs = atof(argv[++i]), target_given = true;
        else if (!strcmp(argv[i], "--ceiling") && i + 1 < argc)
            t.true_peak_dbtp = atof(argv[++i]), ceiling_given = true;
        else if (!in)
            in = argv[i];
        else if (!out)
            out = argv[i];
        else
            in = NULL, i = argc; // too many arguments
    }
    const struct cz_post_format *f = out ? cz_post_format_find(cz_post_ext(out)) : NULL;
    if (!in || !f) {
        fprintf(stderr, "usage: cadenza-worker master IN OUT.{flac,wav,mp3,opus} "
                        "[--preset streaming|podcast|broadcast] [--target LUFS] "
                        "[--ceiling DBTP]\n");
        return 2;
    }
    if (preset_name) {
        const cz_master_preset *p = cz_master_preset_find(preset_name);
        if (!p) {
            fprintf(stderr, "cadenza-worker: unknown preset %s (streaming, podcast, broadcast)\n",
                    preset_name);
            return 2;
        }
        t.target_lufs = target_given ? t.target_lufs : p->target_lufs;
        t.true_peak_dbtp = ceiling_given ? t.true_peak_dbtp : p->true_peak_dbtp;
    }
    unsigned rate =
        (unsigned)cz_env_int("CADENZA_POST_SAMPLE_RATE", CZ_POST_DEFAULT_RATE, 8000, 384000);
    cz_master_settings s;
    cz_master_defaults(&s);
    cz_master_report rep;
    cz_audio a = {0};
    cz_err err;
    cJSON *qa = NULL;
    int rc = cz_audio_read(in, &a, &err);
    if (rc == 0 && !(qa = cz_post_chain(&a, rate, &t, preset_name, &s, &rep, &err)))
        rc = -1;
    if (rc == 0)
        rc = cz_audio_write(out, &a, f->fmt, &err);
    cz_audio_free(&a);
    if (rc != 0) {
        fprintf(stderr, "cadenza-worker: %s\n", err.msg);
        cJSON_Delete(qa);
        return 1;
    }
    char *text = cz_json_print(qa);
    printf("%s\n", text);
    free(text);
    cJSON_Delete(qa);
    return rep.met ? 0 : 1;
}

/* ---------------------------------------------------------------- the pool */

void *cz_post_open(const cz_config *cfg, cz_err *err) {
    cz_post *p = cz_calloc(1, sizeof *p);
    p->cfg = cfg;
    p->rate = (unsigned)cz_env_int("CADENZA_POST_SAMPLE_RATE", CZ_POST_DEFAULT_RATE, 8000, 384000);
    const char *th = cz_env("CADENZA_CATALOG_THRESHOLD", CZ_POST_DEFAULT_THRESHOLD);
    char *end;
    p->threshold = strtod(th, &end);
    if (*end || !(p->threshold > 0.5 && p->threshold <= 1.0)) {
        cz_err_set(err, "CADENZA_CATALOG_THRESHOLD=%s: must be a score above 0.5 and at most 1",
                   th);
        free(p);
        return NULL;
    }
    p->catalog = cz_fp_index_new();
    return p;
}

void cz_post_close(void *state) {
    cz_post *p = state;
    if (!p)
        return;
    cz_fp_index_free(p->catalog);
    PQfinish(p->db);
    free(p);
}

/* Tops the index up with tracks imported since the last look. */
static int cz_post_catalog_refresh(cz_post *p, cz_err *err) {
    if (p->db && cz_db_ensure(p->db) != 0) {
        PQfinish(p->db);
        p->db = NULL;
    }
    if (!p->db && !(p->db = cz_db_connect(p->cfg->database_url, err)))
        return -1;
    long added = cz_db_catalog_load(p->db, p->catalog, &p->last_id, err);
    if (added < 0)
        return -1;
    if (added > 0)
        cz_log_info("catalogue: %ld new tracks, %zu in the index", added,
                    cz_fp_index_tracks(p->catalog));
    return 0;
}

/* Looks the master up in the catalogue and records the outcome in @p qa. */
static int cz_post_catalog_check(cz_post *p, const cz_fp *fp, cJSON *qa, cz_err *err) {
    cz_fp_match m;
    int found = cz_fp_index_query(p->catalog, fp->v, fp->n, &m);
    cJSON *c = cJSON_AddObjectToObject(qa, "catalog");
    cJSON_AddNumberToObject(c, "tracks_checked", (double)cz_fp_index_tracks(p->catalog));
    cJSON_AddNumberToObject(c, "threshold", p->threshold);
    bool flagged = found && m.score >= p->threshold;
    if (!found) {
        cJSON_AddNullToObject(c, "best");
    } else {
        char title[256], artist[256];
        if (cz_db_catalog_describe(p->db, m.track_id, title, sizeof title, artist, sizeof artist,
                                   err) < 0)
            return -1;
        cJSON *b = cJSON_AddObjectToObject(c, "best");
        cJSON_AddNumberToObject(b, "track_id", (double)m.track_id);
        cJSON_AddStringToObject(b, "title", title);
        cJSON_AddStringToObject(b, "artist", artist);
        cJSON_AddNumberToObject(b, "score", round(m.score * 10000) / 10000);
        cJSON_AddNumberToObject(b, "offset_s", round(m.offset * cz_fp_item_s() * 1000) / 1000);
        cJSON_AddNumberToObject(b, "overlap_s", round(m.overlap * cz_fp_item_s() * 10) / 10);
    }
    char why[400];
    snprintf(why, sizeof why,
             "the master matches catalogue track %lld with score %.3f (threshold %.2f) at "
             "offset %.1f s",
             (long long)m.track_id, m.score, p->threshold, m.offset * cz_fp_item_s());
    cz_qa_rule(qa, "catalog", !flagged, why);
    return 0;
}

/* The master's analysis for playlists (common/music/analysis.h), run on a second
 * thread while the master is encoded and fingerprinted (it only reads the
 * samples, as they do): the job waits for it only where it takes longer. */
typedef struct cz_post_analysis {
    const cz_audio *a;
    double lufs;       /* the chain's measurement of the master */
    int64_t ms;        /* the analysis */
    int64_t waited_ms; /* the job's wait for it once the encodings were done */
    int rc;
    cz_track_features f;
    cz_err err;
} cz_post_analysis;

static void *cz_post_analysis_run(void *arg) {
    cz_post_analysis *an = arg;
    int64_t t0 = cz_mono_ms();
    an->rc = cz_analysis_run_measured(an->a->samples, (long)an->a->frames, (int)an->a->channels,
                                      (int)an->a->sample_rate, an->lufs, &an->f, &an->err);
    an->ms = cz_mono_ms() - t0;
    return NULL;
}

/* Adds the features to the QA report as `analysis`, with the request's
 * genres (the controls' genre and flavour); the scheduler's transition to
 * succeeded turns them into the job's `tracks` row (migrations/0013).
 * Audio that cannot be analysed gets `"analysis": null` and a warning, not
 * a failed job: the master itself is fine. chain.analysis_ms says how long
 * the analysis took, chain.analysis_wait_ms how much of it the job waited
 * for after its encodings and fingerprint were done. */
static void cz_post_analysis_add(const cz_job_msg *job, cz_post_analysis *an, cJSON *qa) {
    if (an->rc) {
        cz_log_job(CZ_LOG_WARN, job->job_id, job->trace_id, "no track features: %s", an->err.msg);
        cJSON_AddNullToObject(qa, "analysis");
        return;
    }
    const cJSON *controls = cJSON_GetObjectItemCaseSensitive(job->request, "controls");
    cz_analysis_add_genre(&an->f, cz_json_str(controls, "genre"));
    cz_analysis_add_genre(&an->f, cz_json_str(controls, "flavor"));
    cJSON *o = cz_analysis_json(&an->f);
    cJSON_AddItemToObject(qa, "analysis", o);
    cJSON *chain = cJSON_GetObjectItemCaseSensitive(qa, "chain");
    cJSON_AddNumberToObject(chain, "analysis_ms", (double)an->ms);
    cJSON_AddNumberToObject(chain, "analysis_wait_ms", (double)an->waited_ms);
}

/* Writes the master as @p format and appends its artifact to @p artifacts. */
static int cz_post_write(cz_worker *w, const cz_job_msg *job, const cz_audio *a,
                         const struct cz_post_format *f, cJSON *artifacts, cz_err *err) {
    char name[32];
    snprintf(name, sizeof name, "master.%s", f->name);
    cz_artifact_file file;
    if (cz_artifact_prepare(cz_worker_config(w)->artifact_dir, job->job_id, job->attempt, name,
                            &file, err) ||
        cz_audio_write(file.tmp, a, f->fmt, err) || cz_artifact_commit(&file, err))
        return -1;
    cJSON_AddItemToArray(artifacts, cz_artifact_json(&file, "master", "mix", f->name,
                                                     (double)a->frames / a->sample_rate));
    return 0;
}

/* Writes every requested format, FLAC first and always. */
static int cz_post_write_all(cz_worker *w, const cz_job_msg *job, const cz_audio *a,
                             cJSON *artifacts, cz_err *err) {
    if (cz_post_write(w, job, a, cz_post_format_find("flac"), artifacts, err))
        return -1;
    const cJSON *o;
    cJSON_ArrayForEach(o, cJSON_GetObjectItemCaseSensitive(job->request, "outputs")) {
        const struct cz_post_format *f =
            cJSON_IsString(o) ? cz_post_format_find(o->valuestring) : NULL;
        if (f && strcmp(f->name, "flac") && cz_post_write(w, job, a, f, artifacts, err))
            return -1;
        cz_worker_poll(w);
    }
    return 0;
}

/* The provenance manifest: what made this master, from what, into what. */
static cJSON *cz_post_manifest(cz_worker *w, const cz_job_msg *job, const cJSON *raw,
                               const cJSON *artifacts, const cJSON *settings, const cz_fp *fp) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddNumberToObject(m, "schema", 1);
    cJSON_AddStringToObject(m, "job_id", job->job_id);
    cJSON_AddNumberToObject(m, "attempt", job->attempt);
    const char *model = cz_json_str(job->request, "model");
    char name[128] = "", version[64] = "";
    if (model) {
        const char *at = strchr(model, '@');
        snprintf(name, sizeof name, "%.*s", at ? (int)(at - model) : (int)strlen(model), model);
        snprintf(version, sizeof version, "%s", at ? at + 1 : "");
    }
    cJSON *mo = cJSON_AddObjectToObject(m, "model");
    cJSON_AddStringToObject(mo, "name", name);
    cJSON_AddStringToObject(mo, "version", version);
    cJSON_AddNumberToObject(m, "seed", cz_json_num(job->request, "seed", 0));
    const char *prompt = cz_json_str(job->request, "prompt");
    if (prompt)
        cJSON_AddStringToObject(m, "prompt", prompt);
    const cJSON *controls = cJSON_GetObjectItemCaseSensitive(job->request, "controls");
    cJSON_AddItemToObject(m, "controls",
                          controls ? cJSON_Duplicate(controls, true) : cJSON_CreateNull());
    cJSON_AddItemToObject(m, "request", cJSON_Duplicate(job->request, true));
    const cJSON *chosen = cJSON_GetObjectItemCaseSensitive(job->msg, "chosen");
    if (chosen) // what the model decided: tempo, key, form, instruments (composer@1)
        cJSON_AddItemToObject(m, "chosen", cJSON_Duplicate(chosen, true));
    cJSON_AddItemToObject(m, "chain", cJSON_Duplicate(settings, true));
    cJSON *in = cJSON_AddObjectToObject(m, "input");
    cJSON_AddStringToObject(in, "kind", "raw");
    cJSON_AddStringToObject(in, "uri", cz_json_str(raw, "uri"));
    cJSON_AddStringToObject(in, "sha256", cz_json_str(raw, "sha256"));
    cJSON *outs = cJSON_AddArrayToObject(m, "outputs");
    const cJSON *a;
    cJSON_ArrayForEach(a, artifacts) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "kind", cz_json_str(a, "kind"));
        cJSON_AddStringToObject(o, "format", cz_json_str(a, "format"));
        cJSON_AddStringToObject(o, "sha256", cz_json_str(a, "sha256"));
        cJSON_AddNumberToObject(o, "bytes", cz_json_num(a, "bytes", 0));
        cJSON_AddNumberToObject(o, "duration_s", cz_json_num(a, "duration_s", 0));
        cJSON_AddItemToArray(outs, o);
    }
    cJSON *f = cJSON_AddObjectToObject(m, "fingerprint");
    char hash[CZ_SHA256_HEX];
    cz_sha256_hex(fp->v, fp->n * sizeof *fp->v, hash);
    cJSON_AddStringToObject(f, "algorithm", "chromaprint");
    cJSON_AddNumberToObject(f, "items", (double)fp->n);
    cJSON_AddStringToObject(f, "sha256", hash);
    char now[CZ_RFC3339_LEN];
    cz_now_rfc3339(now);
    cJSON_AddStringToObject(m, "created_at", now);
    cJSON_AddStringToObject(m, "worker", cz_worker_name(w));
    return m;
}

/* Writes the manifest as an artifact and appends it to @p artifacts. */
static int cz_post_write_manifest(cz_worker *w, const cz_job_msg *job, const cJSON *manifest,
                                  cJSON *artifacts, cz_err *err) {
    cz_artifact_file file;
    if (cz_artifact_prepare(cz_worker_config(w)->artifact_dir, job->job_id, job->attempt,
                            "manifest.json", &file, err))
        return -1;
    char *text = cz_json_print(manifest);
    FILE *out = text ? fopen(file.tmp, "w") : NULL;
    int rc = out && fputs(text, out) >= 0 && fputc('\n', out) != EOF ? 0 : -1;
    if (out && fclose(out))
        rc = -1;
    free(text);
    if (rc) {
        remove(file.tmp);
        return cz_err_set(err, "cannot write the manifest %s (check free disk space)", file.tmp);
    }
    if (cz_artifact_commit(&file, err))
        return -1;
    cJSON_AddItemToArray(artifacts, cz_artifact_json(&file, "manifest", "provenance", "json", 0));
    return 0;
}

/* The job's target: explicit numbers, else its preset's, else -14 / -1. */
static cz_master_target cz_post_target(const cJSON *request, const char **preset) {
    const cJSON *loud = cJSON_GetObjectItemCaseSensitive(request, "loudness");
    *preset = cz_json_str(loud, "preset");
    const cz_master_preset *p = cz_master_preset_find(*preset);
    return (cz_master_target){
        .target_lufs = cz_json_num(loud, "target_lufs", p ? p->target_lufs : -14),
        .true_peak_dbtp = cz_json_num(loud, "true_peak_dbtp", p ? p->true_peak_dbtp : -1),
    };
}

/* Everything after the raw file has been read: master, encode, check,
 * report. @returns 0 done with, -1 to do the job again later. */
static int cz_post_run(cz_worker *w, const cz_job_msg *job, const cJSON *raw, cz_audio *a,
                       int64_t t0) {
    cz_post *p = cz_worker_state(w);
    cz_err err;
    const char *preset;
    cz_master_target t = cz_post_target(job->request, &preset);
    cz_master_settings s;
    cz_master_defaults(&s);
    cz_master_report rep;
    cJSON *qa = cz_post_chain(a, p->rate, &t, preset, &s, &rep, &err);
    if (!qa)
        return cz_worker_fail(w, job, "model_error", err.msg) ? -1 : 0;
    cz_worker_poll(w);
    if (cz_worker_stopping(w)) { /* the process is stopping: hand the job back */
        cJSON_Delete(qa);
        return -1;
    }
    if (cz_worker_canceled(w, job)) {
        cJSON_Delete(qa);
        cz_log_job(CZ_LOG_INFO, job->job_id, job->trace_id, "post stopped: job canceled");
        return 0;
    }

    cJSON *artifacts = cJSON_CreateArray(),
          *settings = cz_post_settings_json(&s, &t, preset, p->rate);
    cJSON *manifest = NULL;
    cz_fp fp = {0};
    bool tenant_always = false;
    cz_post_analysis an = {.a = a, .lufs = rep.output.integrated_lufs};
    pthread_t analyser;
    bool threaded = pthread_create(&analyser, NULL, cz_post_analysis_run, &an) == 0;
    if (!threaded)
        cz_post_analysis_run(&an);
    int rc = cz_post_write_all(w, job, a, artifacts, &err);
    if (rc == 0 &&
        (rc = cz_fp_compute(a->samples, a->frames, a->channels, a->sample_rate, &fp, &err)) == 0) {
        rc = cz_post_catalog_refresh(p, &err) || cz_post_catalog_check(p, &fp, qa, &err) ||
                     (job->tenant &&
                      cz_db_tenant_review_policy(p->db, job->tenant, &tenant_always, &err))
                 ? 1
                 : 0;
    }
    int64_t waited = cz_mono_ms();
    if (threaded)
        pthread_join(analyser, NULL);
    an.waited_ms = threaded ? cz_mono_ms() - waited : an.ms;
    cz_post_analysis_add(job, &an, qa);
    if (rc == 0) {
        manifest = cz_post_manifest(w, job, raw, artifacts, settings, &fp);
        cJSON_AddItemToObject(manifest, "qa", cJSON_Duplicate(qa, true));
        rc = cz_post_write_manifest(w, job, manifest, artifacts, &err);
    }
    cz_fp_free(&fp);
    cJSON_Delete(settings);
    cJSON_Delete(manifest);
    if (rc != 0) {
        cJSON_Delete(artifacts);
        cJSON_Delete(qa);
        if (rc > 0) { // the catalogue is unreachable: never pass a master unchecked
            cz_log_job(CZ_LOG_WARN, job->job_id, job->trace_id,
                       "catalogue or review policy unavailable (%s); will do the job again",
                       err.msg);
            return -1;
        }
        return cz_worker_fail(w, job, "internal", err.msg) ? -1 : 0;
    }

    /* Failed QA rules, the request's "review": "always" and the tenant's
     * policy each send the job to a curator (common/review.h). */
    cJSON *reasons =
        cz_review_reasons(qa, cz_json_str(job->request, "review"), tenant_always, job->tenant);
    bool pass = cJSON_GetArraySize(reasons) == 0;
    cJSON *ev = cz_worker_event(w, job, pass ? CZ_EV_POST_DONE : CZ_EV_NEEDS_REVIEW);
    cJSON_AddStringToObject(ev, "stage", "master");
    if (pass)
        cJSON_Delete(reasons);
    else
        cJSON_AddItemToObject(ev, "reasons", reasons);
    cJSON_AddNumberToObject(ev, "compute_ms", (double)(cz_mono_ms() - t0));
    cJSON_AddItemToObject(ev, "artifacts", artifacts);
    cJSON_AddItemToObject(ev, "qa", qa);
    rc = cz_worker_send(w, job, CZ_TOPIC_EVENTS, ev);
    cJSON_Delete(ev);
    cz_log_job(CZ_LOG_INFO, job->job_id, job->trace_id,
               "mastered to %.2f LUFS / %.2f dBTP (target %.1f / %.1f), %s, in %lld ms",
               rep.output.integrated_lufs, rep.output.true_peak_dbtp, t.target_lufs,
               t.true_peak_dbtp, pass ? "passed QA" : "flagged for review",
               (long long)(cz_mono_ms() - t0));
    return rc ? -1 : 0;
}

int cz_post_stage(cz_worker *w, const cz_job_msg *job) {
    int64_t t0 = cz_mono_ms();
    if (cz_worker_canceled(w, job)) {
        cz_log_job(CZ_LOG_INFO, job->job_id, job->trace_id, "skipped: job canceled");
        return 0;
    }
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
    int rc = cz_post_run(w, job, raw, &a, t0);
    cz_audio_free(&a);
    return rc;
}
