/* composer@1: see composer.h.
 *
 * Steps, with a cancel check between each: compose the score; write the
 * MIDI file; render, streaming each block into the mix file and, when asked,
 * one file per group that has notes and one for the reverb return. Progress: composing and the MIDI
 * file are the first 2%, rendering the rest, reported once per second of audio.
 *
 * The WAV files are written without libsndfile's PEAK chunk, which carries
 * the time of writing and would make two renders of one seed differ. */
#include "workers/models/composer.h"

#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workers/composer/compose.h"
#include "workers/composer/midi.h"
#include "workers/composer/render.h"

static void *cz_composer_prepare(const cz_backend_env *env, cz_err *err) {
    (void)err;
    return env->renderer; // the registry's, loaded once for every backend
}

static void cz_composer_release(void *state) {
    (void)state; // the renderer is the registry's
}

/* The open WAV files of one render: the mix and the stems asked for. */
typedef struct cz_wavs {
    SNDFILE *mix;
    SNDFILE *stem[CZ_RENDER_STEMS];
} cz_wavs;

static SNDFILE *cz_wav_open(const char *path, cz_err *err) {
    SF_INFO info = {
        .samplerate = CZ_GEN_SAMPLE_RATE, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    if (!f) {
        cz_err_set(err, "cannot create %s: %s", path, sf_strerror(NULL));
        return NULL;
    }
    sf_command(f, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE);
    return f;
}

static int cz_wav_put(SNDFILE *f, const float *lr, size_t frames, cz_err *err) {
    if (!f)
        return 0;
    if (sf_writef_float(f, lr, (sf_count_t)frames) != (sf_count_t)frames)
        return cz_err_set(err, "writing audio failed: %s (is the disk full?)", sf_strerror(f));
    return 0;
}

static int cz_wavs_block(void *user, const float *const stems[CZ_RENDER_STEMS], const float *mix,
                         size_t frames, cz_err *err) {
    cz_wavs *w = user;
    if (cz_wav_put(w->mix, mix, frames, err) != 0)
        return -1;
    for (int g = 0; g < CZ_RENDER_STEMS; g++)
        if (stems[g] && cz_wav_put(w->stem[g], stems[g], frames, err) != 0)
            return -1;
    return 0;
}

static int cz_wavs_close(cz_wavs *w, cz_err *err) {
    int rc = 0;
    SNDFILE *all[CZ_RENDER_STEMS + 1] = {w->mix};
    memcpy(all + 1, w->stem, sizeof w->stem);
    for (int i = 0; i <= CZ_RENDER_STEMS; i++)
        if (all[i] && sf_close(all[i]) != 0 && rc == 0)
            rc = cz_err_set(err, "closing a WAV file failed: is the disk full?");
    memset(w, 0, sizeof *w);
    return rc;
}

typedef struct cz_composer_run {
    const cz_gen_hooks *hooks;
    double from; /* the share of the job done before rendering */
} cz_composer_run;

static int cz_composer_progress(void *user, double fraction) {
    const cz_composer_run *run = user;
    const cz_gen_hooks *h = run->hooks;
    if (h->progress && h->progress(h->user, run->from + (0.99 - run->from) * fraction) != 0)
        return 1;
    return 0;
}

static bool cz_composer_canceled(const cz_gen_hooks *h) {
    return h->canceled && h->canceled(h->user);
}

int cz_composer_write(cz_renderer *r, const cz_score *score, const cz_gen_request *req,
                      const cz_gen_hooks *hooks, double from, cz_gen_result *out, cz_err *err) {
    out->failure_class = "internal";
    int rc = 0;
    cz_wavs w = {0};
    cz_gen_file *f;
    if (cz_composer_canceled(hooks))
        rc = 1;
    if (rc == 0 && (!(f = cz_gen_result_add(out, req, "midi", "score", "mid", "score.mid",
                                            score->duration_s, err)) ||
                    cz_midi_write(score, f->file.tmp, err) != 0))
        rc = -1;
    if (rc == 0 && hooks->progress && hooks->progress(hooks->user, from) != 0)
        rc = 1;
    if (rc == 0 && cz_composer_canceled(hooks))
        rc = 1;
    if (rc == 0 && (!(f = cz_gen_result_add(out, req, "raw", "mix", "wav", "raw.wav",
                                            score->duration_s, err)) ||
                    !(w.mix = cz_wav_open(f->file.tmp, err))))
        rc = -1;
    for (int g = 0; rc == 0 && req->stems && g < CZ_RENDER_STEMS; g++) {
        if (!cz_render_stem_sounds(score, g))
            continue;
        char name[32];
        snprintf(name, sizeof name, "stem-%s.wav", cz_render_stem_name(g));
        if (!(f = cz_gen_result_add(out, req, "stem", cz_render_stem_name(g), "wav", name,
                                    score->duration_s, err)) ||
            !(w.stem[g] = cz_wav_open(f->file.tmp, err)))
            rc = -1;
    }
    cz_composer_run run = {hooks, from};
    if (rc == 0)
        rc = cz_render_score(r, score, cz_composer_progress, &run, cz_wavs_block, &w, err);
    if (cz_wavs_close(&w, rc == 0 ? err : NULL) != 0 && rc == 0)
        rc = -1;
    if (rc == 0 && hooks->progress && hooks->progress(hooks->user, 1.0) != 0)
        rc = 1;
    if (rc == 0)
        out->failure_class = NULL;
    return rc;
}

static int cz_composer_generate(void *state, const cz_gen_request *req, const cz_gen_hooks *hooks,
                                cz_gen_result *out, cz_err *err) {
    cz_score score;
    out->failure_class = "model_error";
    if (cz_compose(req->controls, req->duration_s, req->seed, &score, &out->chosen, err) != 0)
        return -1;
    int rc = cz_composer_write(state, &score, req, hooks, 0.02, out, err);
    cz_score_free(&score);
    return rc;
}

const cz_backend cz_composer_backend = {
    .id = "composer@1",
    .prepare = cz_composer_prepare,
    .generate = cz_composer_generate,
    .release = cz_composer_release,
};
