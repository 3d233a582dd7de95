/* The walking skeleton's mastering step: bring a render to the job's loudness
 * target without letting its true peak cross the ceiling.
 *
 * How it works. The input is measured with libebur128; a silent or nearly
 * silent input (integrated loudness below -70 LUFS, or unmeasurable) is refused,
 * because no gain can make it reach a streaming target and a huge gain would
 * only amplify noise. Otherwise the loudness gain is target - input, applied as
 * one multiplication. If the true peak after the gain is over the ceiling, a
 * peak guard runs: a look-ahead limiter that holds the sample peaks under the
 * ceiling minus a safety margin (true peaks between samples can sit a little
 * above the sample peaks). Limiting takes away a little loudness, so the result
 * is measured again and the gain corrected (and the margin widened if the true
 * peak still crossed), at most three times, and never by more than 6 dB in all:
 * a target that needs more is not one a peak guard should chase. If the
 * ceiling still cannot be held, the whole signal is turned down until it is.
 * The ceiling wins over the loudness target; either way this returns 0 and the
 * report's output figures, measured on the final samples, say what came out,
 * for the caller's verify step to judge.
 *
 * The limiter. For each frame the gain that would bring that frame's largest
 * sample to the threshold is r[n] (1 where no reduction is needed). The gain
 * applied is built in three steps, all in one streaming pass with a delay of
 * the look-ahead window L (~1.5 ms):
 *   h[n]  = min of r over [n, n+L]                  (look ahead)
 *   h2[n] = min(h[n], release of h2[n-1] toward 1)  (~100 ms release)
 *   g[n]  = mean of h2 over [n-L, n]                (smooth attack over L)
 * Every h2[k] averaged into g[n] comes from a window that contains n, so each
 * is at most r[n], hence g[n] <= r[n]: no sample passes the threshold, and the
 * gain moves smoothly, reaching its floor exactly when the peak arrives.
 *
 * A later task replaces this with the full chain (compressor, 4x oversampled
 * true-peak limiter); this one stays small. */
#include "master.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CZ_MASTER_SILENCE_LUFS -70.0 /* below this there is nothing to master */
#define CZ_MASTER_AIM_LU 0.1         /* stop correcting this close to the target */
#define CZ_MASTER_CORRECTIONS 3      /* gain corrections after the first pass */
#define CZ_MASTER_LOOKAHEAD_S 0.0015
#define CZ_MASTER_RELEASE_S 0.100
#define CZ_MASTER_MARGIN_DB 0.3   /* first guess of true peak over sample peak */
#define CZ_MASTER_MAX_PUSH_DB 6.0 /* most gain added to make up for limiting */

static double cz_master_lin(double db) {
    return pow(10.0, db / 20.0);
}

static void cz_master_scale(cz_audio *a, double gain) {
    size_t n = a->frames * a->channels;
    for (size_t i = 0; i < n; i++)
        a->samples[i] = (float)(a->samples[i] * gain);
}

/* ---------------------------------------------------------------- limiter */

/* A sliding-window minimum over the last L+1 values pushed, as a monotonic
 * deque in a ring: values in the deque increase from front to back, so the
 * front is the window's minimum. */
typedef struct cz_minq {
    long *idx;
    double *val;
    size_t cap, head, len;
} cz_minq;

static void cz_minq_push(cz_minq *q, long i, double v) {
    while (q->len > 0 && q->val[(q->head + q->len - 1) % q->cap] >= v)
        q->len--;
    size_t slot = (q->head + q->len) % q->cap;
    q->idx[slot] = i;
    q->val[slot] = v;
    q->len++;
}

/* Minimum over the values with index >= @p from. */
static double cz_minq_min_from(cz_minq *q, long from) {
    while (q->len > 1 && q->idx[q->head] < from) {
        q->head = (q->head + 1) % q->cap;
        q->len--;
    }
    return q->val[q->head];
}

/* Gain that brings frame @p n of @p a to at most @p thr. */
static double cz_master_need(const cz_audio *a, size_t n, double thr) {
    const float *s = a->samples + n * a->channels;
    double peak = 0.0;
    for (unsigned c = 0; c < a->channels; c++)
        peak = fmax(peak, fabs((double)s[c]));
    return peak > thr ? thr / peak : 1.0;
}

/* Limits the sample peaks of @p a to @p thr in place (see the file comment). */
static int cz_master_limit(cz_audio *a, double thr, cz_err *err) {
    long la = lround(CZ_MASTER_LOOKAHEAD_S * a->sample_rate);
    if (la < 1)
        la = 1;
    size_t cap = (size_t)la + 2;
    cz_minq q = {
        .idx = malloc(cap * sizeof(long)), .val = malloc(cap * sizeof(double)), .cap = cap};
    double *box = malloc(((size_t)la + 1) * sizeof *box);
    if (!q.idx || !q.val || !box) {
        free(q.idx);
        free(q.val);
        free(box);
        return cz_err_set(err, "out of memory in the peak limiter");
    }
    for (long i = 0; i <= la; i++)
        box[i] = 1.0;
    double box_sum = (double)la + 1.0, h2 = 1.0;
    double rel = exp(-1.0 / (CZ_MASTER_RELEASE_S * a->sample_rate));
    long frames = (long)a->frames;
    size_t pos = 0;

    // t is the newest frame looked at; n = t - la is the frame being written.
    for (long t = 0; t < frames + la; t++) {
        if (t < frames)
            cz_minq_push(&q, t, cz_master_need(a, (size_t)t, thr));
        long n = t - la;
        double h = cz_minq_min_from(&q, n < 0 ? 0 : n);
        h2 = fmin(h, 1.0 - (1.0 - h2) * rel);
        box_sum += h2 - box[pos];
        box[pos] = h2;
        pos = (pos + 1) % ((size_t)la + 1);
        if (n < 0)
            continue;
        // The min() only guards against rounding drift in the running sum.
        double g = fmin(box_sum / ((double)la + 1.0), cz_master_need(a, (size_t)n, thr));
        float *s = a->samples + (size_t)n * a->channels;
        for (unsigned c = 0; c < a->channels; c++)
            s[c] = (float)(s[c] * g);
    }
    free(q.idx);
    free(q.val);
    free(box);
    return 0;
}

/* ---------------------------------------------------------------- chain */

/* One pass: @p work = @p orig * gain, peak-guarded if the input's true peak
 * (@p in_tp, which scales exactly with the gain) would cross the ceiling. */
static int cz_master_pass(cz_audio *work, const float *orig, double in_tp, double gain_db,
                          double ceiling, double margin_db, cz_loudness *out, cz_err *err) {
    memcpy(work->samples, orig, work->frames * work->channels * sizeof(float));
    cz_master_scale(work, cz_master_lin(gain_db));
    if (in_tp + gain_db > ceiling &&
        cz_master_limit(work, cz_master_lin(ceiling - margin_db), err) != 0)
        return -1;
    return cz_loudness_measure(work, out, err);
}

/* Last resort when the limiter could not hold the ceiling: turn it all down. */
static int cz_master_force_ceiling(cz_audio *a, double ceiling, cz_loudness *out, double *gain_db,
                                   cz_err *err) {
    for (int i = 0; i < 4 && out->true_peak_dbtp > ceiling; i++) {
        double down = ceiling - out->true_peak_dbtp - 0.01;
        cz_master_scale(a, cz_master_lin(down));
        *gain_db += down;
        if (cz_loudness_measure(a, out, err) != 0)
            return -1;
    }
    return 0;
}

static int cz_master_check_args(const cz_audio *a, const cz_master_target *t,
                                const cz_master_report *rep, cz_err *err) {
    if (!a || !t || !rep)
        return cz_err_set(err, "mastering: audio, target and report are all required");
    if (!isfinite(t->target_lufs) || t->target_lufs > 0.0 ||
        t->target_lufs < CZ_MASTER_SILENCE_LUFS)
        return cz_err_set(err, "mastering: loudness target %.1f LUFS is outside -70..0",
                          t->target_lufs);
    if (!isfinite(t->true_peak_dbtp) || t->true_peak_dbtp > 0.0 || t->true_peak_dbtp < -20.0)
        return cz_err_set(err, "mastering: true-peak ceiling %.1f dBTP is outside -20..0",
                          t->true_peak_dbtp);
    return 0;
}

/* Runs passes until the loudness is within CZ_MASTER_AIM_LU of the target
 * with the true peak under the ceiling, correcting the gain at most
 * CZ_MASTER_CORRECTIONS times. The gain never rises more than
 * CZ_MASTER_MAX_PUSH_DB above the plain loudness gain: past that the peak
 * guard would be crushing the music, not guarding it. Leaves the last pass in
 * @p a, its measurement in @p m and its gain in @p gain. */
static int cz_master_converge(cz_audio *a, const float *orig, const cz_loudness *in,
                              const cz_master_target *t, double *gain, cz_loudness *m,
                              cz_err *err) {
    double margin = CZ_MASTER_MARGIN_DB, max_gain = *gain + CZ_MASTER_MAX_PUSH_DB;
    for (int pass = 0;; pass++) {
        if (cz_master_pass(a, orig, in->true_peak_dbtp, *gain, t->true_peak_dbtp, margin, m, err) !=
            0)
            return -1;
        int peak_ok = m->true_peak_dbtp <= t->true_peak_dbtp;
        double miss = t->target_lufs - m->integrated_lufs;
        double next = fmin(*gain + (isfinite(miss) ? miss : 0.0), max_gain);
        if (pass == CZ_MASTER_CORRECTIONS ||
            (peak_ok && (fabs(miss) <= CZ_MASTER_AIM_LU || next == *gain)))
            return 0;
        if (!peak_ok)
            margin += m->true_peak_dbtp - t->true_peak_dbtp + 0.05;
        *gain = next;
    }
}

int cz_master_apply(cz_audio *a, const cz_master_target *t, cz_master_report *rep, cz_err *err) {
    if (cz_master_check_args(a, t, rep, err) != 0)
        return -1;
    memset(rep, 0, sizeof *rep);
    if (cz_loudness_measure(a, &rep->input, err) != 0)
        return -1;
    double in = rep->input.integrated_lufs;
    if (!(in >= CZ_MASTER_SILENCE_LUFS)) // also catches -HUGE_VAL and NaN
        return cz_err_set(err,
                          "cannot master: the input is silent or too quiet to measure "
                          "(integrated loudness %.1f LUFS, need at least %.0f); check the render "
                          "or the source file",
                          in, CZ_MASTER_SILENCE_LUFS);

    // Each pass starts again from the input, so keep a copy of it.
    size_t n = a->frames * a->channels;
    float *orig = malloc(n * sizeof *orig);
    if (!orig)
        return cz_err_set(err, "out of memory mastering %zu frames", a->frames);
    memcpy(orig, a->samples, n * sizeof *orig);

    double gain = t->target_lufs - in;
    cz_loudness m;
    int rc = cz_master_converge(a, orig, &rep->input, t, &gain, &m, err);
    free(orig);
    if (rc == 0) // the ceiling wins over the loudness target
        rc = cz_master_force_ceiling(a, t->true_peak_dbtp, &m, &gain, err);
    if (rc != 0)
        return -1;
    rep->output = m;
    rep->gain_db = gain;
    return 0;
}
