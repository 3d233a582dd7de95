/* QA of a master: see qa.h.
 *
 * The scan is one pass over the samples. Clipping is counted as samples at
 * (or within 0.01 dB of) full scale that have a neighbour of the same sign
 * also there: one full-scale sample can be a legitimate peak, a flat run is
 * a waveform whose top was cut off. Silence is the share of 100 ms windows
 * whose mean square, taken over all channels, is below -60 dBFS. The DC
 * offset is each channel's mean; the report gives the one furthest from 0.
 * Stereo correlation is the Pearson correlation of the first two channels
 * over the whole signal: +1 is mono in two channels, 0 unrelated, negative
 * values mean phase trouble that vanishes when summed to mono.
 *
 * The curves (cz_qa_curves) are for people: a momentary loudness curve
 * and min/max waveform peaks, a few hundred points each, so a page draws
 * them from the report instead of downloading and decoding the audio.
 *
 * Report figures are rounded to what a meter shows (0.01 dB, 4 decimals for
 * ratios) so the JSON stays readable; silence reports null, not -inf. */
#include "workers/master/qa.h"

#include <ebur128.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define CZ_QA_FULL_SCALE 0.99885f /* -0.01 dBFS */

void cz_qa_scan(const cz_audio *a, cz_qa_stats *out) {
    memset(out, 0, sizeof *out);
    out->correlation = NAN;
    if (!a || a->frames == 0 || a->channels == 0)
        return;
    unsigned ch = a->channels;
    size_t win = a->sample_rate / 10 ? a->sample_rate / 10 : 1;
    double sum[8] = {0}, lr = 0, ll = 0, rr = 0, wsq = 0;
    size_t windows = 0, silent = 0, clipped = 0;
    double silent_ms = pow(10.0, CZ_QA_SILENCE_DBFS / 10.0);
    for (size_t i = 0; i < a->frames; i++) {
        const float *s = a->samples + i * ch;
        for (unsigned c = 0; c < ch; c++) {
            float v = s[c];
            if (c < 8)
                sum[c] += v;
            wsq += (double)v * v;
            if (fabsf(v) >= CZ_QA_FULL_SCALE) {
                float prev = i > 0 ? a->samples[(i - 1) * ch + c] : 0.0f;
                float next = i + 1 < a->frames ? a->samples[(i + 1) * ch + c] : 0.0f;
                if ((v > 0 && (prev >= CZ_QA_FULL_SCALE || next >= CZ_QA_FULL_SCALE)) ||
                    (v < 0 && (prev <= -CZ_QA_FULL_SCALE || next <= -CZ_QA_FULL_SCALE)))
                    clipped++;
            }
        }
        if (ch >= 2) {
            lr += (double)s[0] * s[1];
            ll += (double)s[0] * s[0];
            rr += (double)s[1] * s[1];
        }
        if ((i + 1) % win == 0) {
            windows++;
            silent += wsq / (double)(win * ch) < silent_ms;
            wsq = 0;
        }
    }
    if (windows == 0) { // shorter than one window: judge it as one
        windows = 1;
        silent = wsq / (double)(a->frames * ch) < silent_ms;
    }
    out->clipped_samples = clipped;
    out->clipped_ratio = (double)clipped / (double)(a->frames * ch);
    out->silence_ratio = (double)silent / (double)windows;
    for (unsigned c = 0; c < ch && c < 8; c++) {
        double m = sum[c] / (double)a->frames;
        if (fabs(m) > fabs(out->dc_offset))
            out->dc_offset = m;
    }
    if (ch >= 2)
        out->correlation = ll > 0 && rr > 0 ? lr / sqrt(ll * rr) : 0.0;
}

/* ---------------------------------------------------------------- report */

static void cz_qa_num(cJSON *o, const char *key, double v, double unit) {
    if (isfinite(v))
        cJSON_AddNumberToObject(o, key, round(v / unit) * unit);
    else
        cJSON_AddNullToObject(o, key);
}

static void cz_qa_stats_json(cJSON *o, const cz_qa_stats *s) {
    cJSON_AddNumberToObject(o, "clipped_samples", (double)s->clipped_samples);
    cz_qa_num(o, "silence_ratio", s->silence_ratio, 1e-4);
    cz_qa_num(o, "dc_offset", s->dc_offset, 1e-6);
    cz_qa_num(o, "stereo_correlation", s->correlation, 1e-4);
}

cJSON *cz_qa_report(const cz_master_report *rep, const cz_master_target *t, const char *preset,
                    const cz_qa_stats *in, unsigned in_rate, const cz_qa_stats *out,
                    const cz_audio *master) {
    cJSON *qa = cJSON_CreateObject();
    const cz_loudness *o = &rep->output;
    cz_qa_num(qa, "integrated_lufs", o->integrated_lufs, 0.01);
    cz_qa_num(qa, "loudness_range_lu", o->lra_lu, 0.01);
    cz_qa_num(qa, "true_peak_dbtp", o->true_peak_dbtp, 0.01);
    cz_qa_num(qa, "sample_peak_dbfs", o->sample_peak_dbfs, 0.01);
    cz_qa_num(qa, "duration_s", o->duration_s, 0.001);
    cz_qa_stats_json(qa, out);
    cJSON_AddNumberToObject(qa, "sample_rate", master->sample_rate);
    cJSON_AddNumberToObject(qa, "channels", master->channels);

    cJSON *i = cJSON_AddObjectToObject(qa, "input");
    cz_qa_num(i, "integrated_lufs", rep->input.integrated_lufs, 0.01);
    cz_qa_num(i, "true_peak_dbtp", rep->input.true_peak_dbtp, 0.01);
    cz_qa_num(i, "sample_peak_dbfs", rep->input.sample_peak_dbfs, 0.01);
    cz_qa_num(i, "duration_s", rep->input.duration_s, 0.001);
    cz_qa_stats_json(i, in);
    cJSON_AddNumberToObject(i, "sample_rate", in_rate);

    cJSON *chain = cJSON_AddObjectToObject(qa, "chain");
    cz_qa_num(chain, "gain_db", rep->gain_db, 0.01);
    cz_qa_num(chain, "compressor_db", rep->compressor_db, 0.01);
    cz_qa_num(chain, "limiter_db", rep->limiter_db, 0.01);
    cJSON_AddNumberToObject(chain, "passes", rep->passes);

    cJSON *target = cJSON_AddObjectToObject(qa, "target");
    if (preset)
        cJSON_AddStringToObject(target, "preset", preset);
    cJSON_AddNumberToObject(target, "integrated_lufs", t->target_lufs);
    cJSON_AddNumberToObject(target, "true_peak_dbtp", t->true_peak_dbtp);

    cJSON_AddObjectToObject(qa, "verdicts");
    cJSON_AddArrayToObject(qa, "flags");
    cJSON_AddStringToObject(qa, "verdict", "pass");

    char why[256];
    double miss = o->integrated_lufs - t->target_lufs;
    snprintf(why, sizeof why,
             "the master measures %.2f LUFS, %.2f LU from its %.1f LUFS target: it cannot reach "
             "the target without crushing its dynamics under the %.1f dBTP ceiling",
             o->integrated_lufs, miss, t->target_lufs, t->true_peak_dbtp);
    cz_qa_rule(qa, "loudness", isfinite(miss) && fabs(miss) <= 0.5, why);
    snprintf(why, sizeof why, "the master's true peak %.2f dBTP is over its %.1f dBTP ceiling",
             o->true_peak_dbtp, t->true_peak_dbtp);
    cz_qa_rule(qa, "true_peak", o->true_peak_dbtp <= t->true_peak_dbtp, why);
    snprintf(why, sizeof why, "%.0f%% of the track is silence (below %.0f dBFS)",
             100.0 * out->silence_ratio, CZ_QA_SILENCE_DBFS);
    cz_qa_rule(qa, "silence", out->silence_ratio <= CZ_QA_SILENCE_MAX_RATIO, why);
    snprintf(why, sizeof why,
             "the source is heavily clipped: %zu samples (%.2f%%) sit flat at full scale",
             in->clipped_samples, 100.0 * in->clipped_ratio);
    cz_qa_rule(qa, "source_clipping", in->clipped_ratio <= CZ_QA_CLIPPED_MAX_RATIO, why);
    snprintf(why, sizeof why, "the master keeps a DC offset of %.4f", out->dc_offset);
    cz_qa_rule(qa, "dc_offset", fabs(out->dc_offset) <= CZ_QA_DC_MAX, why);
    return qa;
}

void cz_qa_rule(cJSON *report, const char *rule, bool pass, const char *reason) {
    cJSON *v = cJSON_GetObjectItemCaseSensitive(report, "verdicts");
    cJSON_DeleteItemFromObjectCaseSensitive(v, rule);
    cJSON_AddStringToObject(v, rule, pass ? "pass" : "fail");
    if (pass)
        return;
    cJSON_AddItemToArray(cJSON_GetObjectItemCaseSensitive(report, "flags"),
                         cJSON_CreateString(reason));
    cJSON_ReplaceItemInObjectCaseSensitive(report, "verdict", cJSON_CreateString("review"));
}

/* ---------------------------------------------------------------- curves */

static int cz_qa_loudness_curve(const cz_audio *a, cJSON *report, cz_err *err) {
    static const double hops[] = {0.4, 1, 2, 5, 10};
    double seconds = (double)a->frames / a->sample_rate, hop = hops[0];
    for (size_t i = 0; i < sizeof hops / sizeof *hops; i++) {
        hop = hops[i];
        if (seconds / hop <= CZ_QA_CURVE_MAX_POINTS)
            break;
    }
    ebur128_state *st = ebur128_init(a->channels, a->sample_rate, EBUR128_MODE_M);
    if (!st)
        return cz_err_set(err, "loudness curve: libebur128 cannot take %u channels at %u Hz",
                          a->channels, a->sample_rate);
    cJSON *curve = cJSON_AddObjectToObject(report, "loudness_curve");
    cJSON_AddNumberToObject(curve, "window_s", CZ_QA_MOMENTARY_S);
    cJSON_AddNumberToObject(curve, "hop_s", hop);
    cJSON *lufs = cJSON_AddArrayToObject(curve, "lufs");
    size_t step = (size_t)llround(hop * a->sample_rate);
    int rc = 0;
    for (size_t at = 0; rc == 0 && step > 0 && at + step <= a->frames; at += step) {
        double m;
        if (ebur128_add_frames_float(st, a->samples + at * a->channels, step) != EBUR128_SUCCESS ||
            ebur128_loudness_momentary(st, &m) != EBUR128_SUCCESS) {
            rc = cz_err_set(err, "loudness curve: libebur128 failed at frame %zu", at);
        } else if (isfinite(m) && m > -70) { // below the absolute gate: silence
            cJSON_AddItemToArray(lufs, cJSON_CreateNumber(round(m * 10) / 10));
        } else {
            cJSON_AddItemToArray(lufs, cJSON_CreateNull());
        }
    }
    ebur128_destroy(&st);
    return rc;
}

static void cz_qa_waveform(const cz_audio *a, cJSON *report) {
    size_t n = a->frames < CZ_QA_WAVEFORM_POINTS ? a->frames : CZ_QA_WAVEFORM_POINTS;
    cJSON *w = cJSON_AddObjectToObject(report, "waveform");
    cJSON_AddNumberToObject(w, "points", (double)n);
    cJSON_AddNumberToObject(w, "seconds_per_point",
                            n ? round((double)a->frames / n / a->sample_rate * 1e4) / 1e4 : 0);
    cJSON *lo = cJSON_AddArrayToObject(w, "min"), *hi = cJSON_AddArrayToObject(w, "max");
    for (size_t i = 0; i < n; i++) {
        size_t from = a->frames * i / n, to = a->frames * (i + 1) / n;
        float mn = 0, mx = 0;
        for (size_t f = from; f < to; f++) {
            for (unsigned c = 0; c < a->channels; c++) {
                float v = a->samples[f * a->channels + c];
                mn = v < mn ? v : mn;
                mx = v > mx ? v : mx;
            }
        }
        cJSON_AddItemToArray(lo, cJSON_CreateNumber(round(fmax(mn, -1.0) * 100) / 100));
        cJSON_AddItemToArray(hi, cJSON_CreateNumber(round(fmin(mx, 1.0) * 100) / 100));
    }
}

int cz_qa_curves(const cz_audio *a, cJSON *report, cz_err *err) {
    if (!a || a->frames == 0 || a->channels == 0 || a->sample_rate == 0)
        return cz_err_set(err, "no audio to draw");
    cz_qa_waveform(a, report);
    return cz_qa_loudness_curve(a, report, err);
}
