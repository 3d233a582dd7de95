/* The mastering chain: see master.h.
 *
 * Order of work, each step one pass over the samples (dsp.c):
 *   1. Input scan: sample peak. A silent input (no 400 ms block above
 *      -70 LUFS) is refused: no gain can make it reach a target, and a huge
 *      gain would only amplify noise.
 *   2. DC removal: a 2nd-order Butterworth high-pass (20 Hz), in place.
 *   3. Analysis of the filtered input: K-weighted energy per frame (the
 *      input's loudness), the compressor's gain curve, and the 4x
 *      oversampled true-peak envelope. The compressor is gentle: 2:1 with a
 *      6 dB soft knee, its threshold 4 LU above the input's own loudness, so
 *      it only rounds off the loudest passages, whatever level the input
 *      arrives at; it never takes more than 6 dB.
 *   4. Gain search: the loudness gain G and the limiter's gain curve depend
 *      on each other (limiting takes loudness away; more gain means more
 *      limiting). Using the fast meter (dsp.h), G is moved by the loudness
 *      still missing until it is within 0.01 LU, at most 8 times, and never
 *      more than max_push_db above the plain gain (target - input): past
 *      that the limiter would be crushing the music, not guarding it.
 *   5. Apply: output = input x compressor gain x limiter gain x G, in one
 *      pass into a new buffer; the analysis is kept for corrections.
 *   6. Verify: libebur128 measures the output (integrated loudness, LRA,
 *      true peak, sample peak). If the loudness misses by more than aim_lu,
 *      G is corrected by the miss; if the true peak is over the ceiling, the
 *      limiter threshold moves down by the excess plus 0.02 dB; then back to
 *      4, at most max_corrections times. If the ceiling still is not held,
 *      the whole output is turned down until it is: the ceiling wins over
 *      the loudness target, and the report says the target was missed.
 *
 * The limiter holds every frame's true-peak envelope (input envelope x
 * compressor gain x G) under ceiling - margin, so the verified true peak
 * rarely needs a correction; the margin (0.1 dB) covers the difference
 * between this chain's interpolator and libebur128's. */
#include "workers/master/master.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "workers/master/dsp.h"

#define CZ_MASTER_SILENCE_LUFS -70.0 /* below this there is nothing to master */
#define CZ_MASTER_SEARCH_STEPS 8     /* gain search iterations (fast meter) */
#define CZ_MASTER_SEARCH_LU 0.01     /* gain search stops this close */

static const cz_master_preset cz_master_presets[] = {
    {"streaming", -14.0, -1.0},
    {"podcast", -16.0, -1.0},
    {"broadcast", -23.0, -1.0},
};

const cz_master_preset *cz_master_preset_find(const char *name) {
    for (size_t i = 0; name && i < sizeof cz_master_presets / sizeof *cz_master_presets; i++)
        if (!strcmp(cz_master_presets[i].name, name))
            return &cz_master_presets[i];
    return NULL;
}

void cz_master_defaults(cz_master_settings *s) {
    *s = (cz_master_settings){
        .highpass_hz = 20.0,
        .comp_threshold_lu = 4.0,
        .comp_ratio = 2.0,
        .comp_knee_db = 6.0,
        .comp_attack_ms = 10.0,
        .comp_release_ms = 200.0,
        .comp_max_db = 6.0,
        .limiter_lookahead_ms = 1.5,
        .limiter_release_ms = 100.0,
        .limiter_margin_db = 0.1,
        .max_push_db = 6.0,
        .aim_lu = 0.1,
        .tolerance_lu = 0.5,
        .max_corrections = 3,
    };
}

static double cz_master_lin(double db) {
    return pow(10.0, db / 20.0);
}

static double cz_master_db(double lin) {
    return lin > 0.0 ? 20.0 * log10(lin) : -HUGE_VAL;
}

/* What the chain keeps between passes: per-frame analysis of the filtered
 * input, and the scratch gain curve. */
typedef struct cz_master_work {
    const cz_audio *in; /* the filtered input */
    float *energy;      /* K-weighted energy x compressor gain^2 */
    float *peaks;       /* true-peak envelope x compressor gain */
    float *comp;        /* compressor gain */
    float *lim;         /* limiter gain for the current G */
} cz_master_work;

static void cz_master_work_free(cz_master_work *w) {
    free(w->energy);
    free(w->peaks);
    free(w->comp);
    free(w->lim);
}

static int cz_master_check_args(const cz_audio *a, const cz_master_target *t,
                                const cz_master_settings *s, const cz_master_report *rep,
                                cz_err *err) {
    if (!a || !t || !s || !rep)
        return cz_err_set(err, "mastering: audio, target, settings and report are all required");
    if (a->channels == 0 || a->sample_rate == 0 || (a->frames > 0 && !a->samples))
        return cz_err_set(err, "mastering: the audio is empty or malformed");
    if (!isfinite(t->target_lufs) || t->target_lufs > 0.0 ||
        t->target_lufs < CZ_MASTER_SILENCE_LUFS)
        return cz_err_set(err, "mastering: loudness target %.1f LUFS is outside -70..0",
                          t->target_lufs);
    if (!isfinite(t->true_peak_dbtp) || t->true_peak_dbtp > 0.0 || t->true_peak_dbtp < -20.0)
        return cz_err_set(err, "mastering: true-peak ceiling %.1f dBTP is outside -20..0",
                          t->true_peak_dbtp);
    return 0;
}

static void *cz_master_energy(void *arg) {
    cz_master_work *w = arg;
    cz_dsp_k_energy(w->in, w->energy);
    return NULL;
}

/* Step 3: analysis of the filtered input; fills the input loudness. */
static int cz_master_analyse(cz_master_work *w, const cz_master_settings *s, cz_loudness *input,
                             double *comp_db, cz_err *err) {
    size_t n = w->in->frames;
    w->energy = cz_malloc(n * sizeof(float));
    w->peaks = cz_malloc(n * sizeof(float));
    w->comp = cz_malloc(n * sizeof(float));
    w->lim = cz_malloc(n * sizeof(float));

    // The K-weighted energy runs on a second thread beside the peaks.
    pthread_t thread;
    bool threaded = pthread_create(&thread, NULL, cz_master_energy, w) == 0;
    if (!threaded)
        cz_master_energy(w);
    cz_dsp_true_peaks(w->in, w->peaks);
    if (threaded)
        pthread_join(thread, NULL);
    input->integrated_lufs = cz_dsp_loudness(w->energy, NULL, n, w->in->sample_rate, 1.0);
    float tp = 0.0f;
    for (size_t i = 0; i < n; i++)
        tp = w->peaks[i] > tp ? w->peaks[i] : tp;
    input->true_peak_dbtp = cz_master_db(tp);
    if (!(input->integrated_lufs >= CZ_MASTER_SILENCE_LUFS)) // also -HUGE_VAL and NaN
        return cz_err_set(err,
                          "cannot master: the input is silent or too quiet to measure "
                          "(integrated loudness %.1f LUFS, need at least %.0f); check the render "
                          "or the source file",
                          input->integrated_lufs, CZ_MASTER_SILENCE_LUFS);

    cz_comp_params cp = {
        .threshold_db = input->integrated_lufs + s->comp_threshold_lu,
        .ratio = s->comp_ratio,
        .knee_db = s->comp_knee_db,
        .attack_ms = s->comp_attack_ms,
        .release_ms = s->comp_release_ms,
        .max_reduction_db = s->comp_max_db,
    };
    *comp_db = cz_dsp_compressor_gain(w->in, &cp, w->comp);
    // From here on, energy and peaks are those of the compressed signal.
    for (size_t i = 0; i < n; i++) {
        w->energy[i] *= w->comp[i] * w->comp[i];
        w->peaks[i] *= w->comp[i];
    }
    return 0;
}

/* Step 4: finds the gain G (dB, updated in place) that brings the limited
 * signal to @p target by the fast meter; leaves its limiter curve in w->lim. */
static void cz_master_search(cz_master_work *w, const cz_master_settings *s, double target,
                             double threshold, double max_gain, double *gain_db, double *lim_db) {
    size_t n = w->in->frames;
    unsigned rate = w->in->sample_rate;
    for (int step = 0; step < CZ_MASTER_SEARCH_STEPS; step++) {
        double g = cz_master_lin(*gain_db);
        *lim_db =
            cz_dsp_limiter_gain(w->peaks, n, rate, g, threshold, s->limiter_lookahead_ms * 1e-3,
                                s->limiter_release_ms * 1e-3, w->lim);
        double l = cz_dsp_loudness(w->energy, w->lim, n, rate, g);
        double miss = target - l;
        if (!isfinite(miss) || fabs(miss) <= CZ_MASTER_SEARCH_LU)
            return;
        double next = fmin(*gain_db + miss, max_gain);
        if (next == *gain_db)
            return; // pushed as far as allowed
        *gain_db = next;
    }
}

/* Step 5: out = in x compressor x limiter x G. */
static void cz_master_render(const cz_master_work *w, double gain_db, float *out) {
    const cz_audio *in = w->in;
    float g = (float)cz_master_lin(gain_db);
    unsigned ch = in->channels;
    for (size_t i = 0; i < in->frames; i++) {
        float k = g * w->comp[i] * w->lim[i];
        const float *x = in->samples + i * ch;
        float *y = out + i * ch;
        for (unsigned c = 0; c < ch; c++)
            y[c] = x[c] * k;
    }
}

/* Last resort when corrections could not hold the ceiling: turn it all down. */
static int cz_master_force_ceiling(cz_audio *a, double ceiling, cz_loudness *out, double *gain_db,
                                   cz_err *err) {
    for (int i = 0; i < 4 && out->true_peak_dbtp > ceiling; i++) {
        double down = ceiling - out->true_peak_dbtp - 0.01;
        float k = (float)cz_master_lin(down);
        for (size_t j = 0; j < a->frames * a->channels; j++)
            a->samples[j] *= k;
        *gain_db += down;
        if (cz_loudness_measure(a, out, err) != 0)
            return -1;
    }
    return 0;
}

/* Steps 4 to 6 with corrections; leaves the verified output in @p out. */
static int cz_master_converge(cz_master_work *w, const cz_master_target *t,
                              const cz_master_settings *s, cz_audio *out, cz_master_report *rep,
                              cz_err *err) {
    double plain = t->target_lufs - rep->input.integrated_lufs;
    double max_gain = plain + s->max_push_db, margin = s->limiter_margin_db;
    double gain = plain;
    for (int pass = 0;; pass++) {
        double threshold = cz_master_lin(t->true_peak_dbtp - margin);
        cz_master_search(w, s, t->target_lufs, threshold, max_gain, &gain, &rep->limiter_db);
        cz_master_render(w, gain, out->samples);
        if (cz_loudness_measure(out, &rep->output, err) != 0)
            return -1;
        rep->passes = pass + 1;
        double miss = t->target_lufs - rep->output.integrated_lufs;
        bool peak_ok = rep->output.true_peak_dbtp <= t->true_peak_dbtp;
        bool loud_ok = fabs(miss) <= s->aim_lu || (miss > 0 && gain >= max_gain);
        if ((peak_ok && loud_ok) || pass == s->max_corrections)
            break;
        if (!peak_ok)
            margin += rep->output.true_peak_dbtp - t->true_peak_dbtp + 0.02;
        if (isfinite(miss))
            gain = fmin(gain + miss, max_gain);
    }
    rep->gain_db = gain;
    return cz_master_force_ceiling(out, t->true_peak_dbtp, &rep->output, &rep->gain_db, err);
}

int cz_master_apply_with(cz_audio *a, const cz_master_target *t, const cz_master_settings *s,
                         cz_master_report *rep, cz_err *err) {
    if (cz_master_check_args(a, t, s, rep, err) != 0)
        return -1;
    memset(rep, 0, sizeof *rep);
    rep->input.lra_lu = NAN; // the chain's own meter does not measure LRA
    rep->input.duration_s = (double)a->frames / a->sample_rate;
    float sp = 0.0f;
    for (size_t i = 0; i < a->frames * a->channels; i++) {
        float v = fabsf(a->samples[i]);
        sp = v > sp ? v : sp;
    }
    rep->input.sample_peak_dbfs = cz_master_db(sp);

    cz_dsp_highpass(a, s->highpass_hz);
    cz_master_work w = {.in = a};
    cz_audio out = {.frames = a->frames, .channels = a->channels, .sample_rate = a->sample_rate};
    int rc = cz_master_analyse(&w, s, &rep->input, &rep->compressor_db, err);
    if (rc == 0)
        out.samples = cz_malloc(a->frames * a->channels * sizeof(float) + 1);
    if (rc == 0)
        rc = cz_master_converge(&w, t, s, &out, rep, err);
    cz_master_work_free(&w);
    if (rc != 0) {
        cz_audio_free(&out);
        return -1;
    }
    cz_audio_free(a);
    *a = out;
    rep->met = fabs(rep->output.integrated_lufs - t->target_lufs) <= s->tolerance_lu &&
               rep->output.true_peak_dbtp <= t->true_peak_dbtp;
    return 0;
}

int cz_master_apply(cz_audio *a, const cz_master_target *t, cz_master_report *rep, cz_err *err) {
    cz_master_settings s;
    cz_master_defaults(&s);
    return cz_master_apply_with(a, t, &s, rep, err);
}
