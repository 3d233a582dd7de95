/* Signal processing for the post chain: see dsp.h.
 *
 * Everything here is a single pass over the samples with small state, sized
 * for a three-minute stereo track (8.6 M frames) in well under a second. The
 * filters keep their state in double precision: a 20 Hz high-pass at 48 kHz
 * has poles so close to the unit circle that float state would drift.
 *
 * True peak. A true peak is the largest value of the continuous signal the
 * samples stand for, which can lie between samples. It is estimated, like
 * BS.1770 does, by 4x oversampling: the three values at 1/4, 2/4 and 3/4 of
 * the way from each frame to the next are interpolated by a 12-tap polyphase
 * windowed sinc (Blackman window, each phase normalised to unity gain at DC).
 * A frame's true peak is the largest of its own sample and the interpolated
 * values on either side of it, over all channels, so a limiter that holds
 * every frame's envelope under a threshold also holds the values between.
 *
 * Fast loudness. BS.1770 loudness is the gated mean of 400 ms blocks of
 * K-weighted energy. The chain needs the loudness of "input x limiter gain x
 * overall gain" for several candidate gains; recomputing the K filter each
 * time would dominate the chain's cost. The K filter is linear, and the
 * limiter's gain changes slowly next to the filter's response, so the energy
 * of the limited signal is the K-weighted energy of the input times the
 * squared gain, frame by frame. cz_dsp_k_energy() computes that energy once;
 * cz_dsp_loudness() then costs one multiply-add per frame. The final figures
 * always come from libebur128 on the real output (master.c).
 *
 * Limiter. For each frame, the gain that brings its scaled true peak to the
 * threshold is r[n] (1 where no reduction is needed). The gain applied is
 *   h[n]  = min of r over [n, n+L]                  (look ahead L frames)
 *   h2[n] = min(h[n], release of h2[n-1] toward 1)
 *   g[n]  = mean of h2 over [n-L, n]                (attack spread over L)
 * Every h2[k] averaged into g[n] comes from a window that contains n, so each
 * is at most r[n]: g[n] <= r[n], no frame passes the threshold, and the gain
 * moves smoothly, reaching its floor exactly when the peak arrives. Only
 * frames that need reduction enter the sliding-minimum queue, and a run of
 * unity gain is detected exactly (a count of non-unity values in the
 * averaging window), so quiet passages cost almost nothing. */
#include "workers/master/dsp.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

#define CZ_DSP_PI 3.14159265358979323846
#define CZ_DSP_TP_TAPS 12     /* taps per oversampling phase */
#define CZ_DSP_TP_BLOCK 1024  /* frames interpolated per block */
#define CZ_DSP_COMP_STRIDE 32 /* compressor gain computed every this many frames */

/* ---------------------------------------------------------------- biquads */

typedef struct cz_biquad {
    double b0, b1, b2, a1, a2;
} cz_biquad;

/* Runs @p f over channel @p c of @p a in place (transposed direct form II). */
static void cz_biquad_run(const cz_biquad *f, cz_audio *a, unsigned c) {
    double z1 = 0.0, z2 = 0.0;
    float *s = a->samples + c;
    for (size_t n = 0; n < a->frames; n++, s += a->channels) {
        double x = *s, y = f->b0 * x + z1;
        z1 = f->b1 * x - f->a1 * y + z2;
        z2 = f->b2 * x - f->a2 * y;
        *s = (float)y;
    }
}

/* The same over channels @p c and c + 1 at once: each sample of a biquad
 * waits for the one before, so two independent channels in one loop keep
 * the processor busy while either waits. */
static void cz_biquad_run2(const cz_biquad *f, cz_audio *a, unsigned c) {
    double z1 = 0.0, z2 = 0.0, w1 = 0.0, w2 = 0.0;
    float *s = a->samples + c;
    for (size_t n = 0; n < a->frames; n++, s += a->channels) {
        double x = s[0], u = s[1];
        double y = f->b0 * x + z1, v = f->b0 * u + w1;
        z1 = f->b1 * x - f->a1 * y + z2;
        w1 = f->b1 * u - f->a1 * v + w2;
        z2 = f->b2 * x - f->a2 * y;
        w2 = f->b2 * u - f->a2 * v;
        s[0] = (float)y;
        s[1] = (float)v;
    }
}

void cz_dsp_highpass(cz_audio *a, double cutoff_hz) {
    if (!a || a->frames == 0 || cutoff_hz <= 0.0 || cutoff_hz >= a->sample_rate / 2.0)
        return;
    // Bilinear-transformed Butterworth (Q = 1/sqrt 2).
    double k = tan(CZ_DSP_PI * cutoff_hz / a->sample_rate), q = M_SQRT1_2;
    double a0 = 1.0 + k / q + k * k;
    cz_biquad f = {
        .b0 = 1.0 / a0,
        .b1 = -2.0 / a0,
        .b2 = 1.0 / a0,
        .a1 = 2.0 * (k * k - 1.0) / a0,
        .a2 = (1.0 - k / q + k * k) / a0,
    };
    unsigned c = 0;
    for (; c + 1 < a->channels; c += 2)
        cz_biquad_run2(&f, a, c);
    if (c < a->channels)
        cz_biquad_run(&f, a, c);
}

/* ---------------------------------------------------------------- compressor */

/* Static curve: gain change in dB for a detector level @p level_db. */
static double cz_comp_curve(const cz_comp_params *p, double level_db) {
    double over = level_db - p->threshold_db, w = p->knee_db, slope = 1.0 / p->ratio - 1.0;
    double gr;
    if (2.0 * over <= -w)
        gr = 0.0;
    else if (2.0 * over < w)
        gr = slope * (over + w / 2.0) * (over + w / 2.0) / (2.0 * w);
    else
        gr = slope * over;
    return fmax(gr, -p->max_reduction_db);
}

double cz_dsp_compressor_gain(const cz_audio *a, const cz_comp_params *p, float *c) {
    if (!a || !p || a->frames == 0)
        return 0.0;
    if (p->ratio <= 1.0) {
        for (size_t n = 0; n < a->frames; n++)
            c[n] = 1.0f;
        return 0.0;
    }
    double att = exp(-1.0 / (p->attack_ms * 1e-3 * a->sample_rate));
    double rel = exp(-1.0 / (p->release_ms * 1e-3 * a->sample_rate));
    // Below this mean square the knee has not begun: no log10 needed.
    double quiet = pow(10.0, (p->threshold_db - p->knee_db / 2.0) / 10.0);
    double env = 0.0, cur = 1.0, worst = 0.0;
    unsigned ch = a->channels;
    for (size_t start = 0; start < a->frames; start += CZ_DSP_COMP_STRIDE) {
        size_t end =
            start + CZ_DSP_COMP_STRIDE < a->frames ? start + CZ_DSP_COMP_STRIDE : a->frames;
        // Follow the stereo-linked mean square over this stretch.
        for (size_t n = start; n < end; n++) {
            const float *s = a->samples + n * ch;
            double sq = 0.0;
            for (unsigned k = 0; k < ch; k++)
                sq = fmax(sq, (double)s[k] * s[k]);
            env = sq + (env - sq) * (sq > env ? att : rel);
        }
        double gr = env > quiet ? cz_comp_curve(p, 10.0 * log10(env)) : 0.0;
        double next = pow(10.0, gr / 20.0);
        worst = fmin(worst, gr);
        // Ramp linearly from the last gain to the new one across the stretch.
        double step = (next - cur) / (double)(end - start);
        for (size_t n = start; n < end; n++) {
            cur += step;
            c[n] = (float)cur;
        }
        cur = next;
    }
    return -worst;
}

/* ---------------------------------------------------------------- true peak */

/* Interpolation taps: phase p (1..3) gives the value at frame i + p/4 from
 * frames i-5 .. i+6. */
static void cz_tp_taps(float taps[3][CZ_DSP_TP_TAPS]) {
    for (int p = 1; p <= 3; p++) {
        double sum = 0.0, h[CZ_DSP_TP_TAPS];
        for (int j = 0; j < CZ_DSP_TP_TAPS; j++) {
            double d = p / 4.0 + 5.0 - j; // distance from tap j to the point
            double sinc = sin(CZ_DSP_PI * d) / (CZ_DSP_PI * d);
            double w =
                0.42 + 0.5 * cos(CZ_DSP_PI * d / 6.0) + 0.08 * cos(2.0 * CZ_DSP_PI * d / 6.0);
            h[j] = sinc * w;
            sum += h[j];
        }
        for (int j = 0; j < CZ_DSP_TP_TAPS; j++)
            taps[p - 1][j] = (float)(h[j] / sum);
    }
}

/* Four floats processed as one: GCC and clang lower this to SSE (or wider)
 * on x86-64 and NEON on arm64, and to scalar code elsewhere. */
typedef float cz_v4f __attribute__((vector_size(16)));
typedef int32_t cz_v4i __attribute__((vector_size(16)));

static cz_v4f cz_v4f_load(const float *p) {
    cz_v4f v;
    memcpy(&v, p, sizeof v);
    return v;
}

static cz_v4f cz_v4f_abs(cz_v4f v) {
    return (cz_v4f)((cz_v4i)v & 0x7fffffff); // clear the sign bits
}

static cz_v4f cz_v4f_max(cz_v4f a, cz_v4f b) {
    cz_v4i gt = a > b; // all ones where a is larger
    return (cz_v4f)((gt & (cz_v4i)a) | (~gt & (cz_v4i)b));
}

/* Largest interpolated magnitude between frames i and i+1 of one channel,
 * four frames at a time; @p x points at frame i-5 of the first frame, and
 * @p n is a multiple of 4 (the caller pads the channel). */
static void cz_tp_block(const float taps[3][CZ_DSP_TP_TAPS], const float *x, size_t n, float *mid) {
    cz_v4f t[3][CZ_DSP_TP_TAPS];
    for (int p = 0; p < 3; p++)
        for (int j = 0; j < CZ_DSP_TP_TAPS; j++)
            t[p][j] = (cz_v4f){taps[p][j], taps[p][j], taps[p][j], taps[p][j]};
    for (size_t i = 0; i < n; i += 4) {
        cz_v4f a0 = {0}, a1 = {0}, a2 = {0};
        for (int j = 0; j < CZ_DSP_TP_TAPS; j++) {
            cz_v4f v = cz_v4f_load(x + i + j);
            a0 += t[0][j] * v;
            a1 += t[1][j] * v;
            a2 += t[2][j] * v;
        }
        cz_v4f m = cz_v4f_max(cz_v4f_abs(a0), cz_v4f_max(cz_v4f_abs(a1), cz_v4f_abs(a2)));
        memcpy(mid + i, &m, sizeof m);
    }
}

void cz_dsp_true_peaks(const cz_audio *a, float *tp) {
    size_t frames = a->frames;
    if (frames == 0)
        return;
    float taps[3][CZ_DSP_TP_TAPS];
    cz_tp_taps(taps);
    // One channel at a time, padded with zeros: 6 frames before, and after
    // enough for the taps and for rounding the length up to 4.
    size_t padded = 6 + frames + 3 + CZ_DSP_TP_TAPS;
    float *x = cz_calloc(padded, sizeof *x);
    float mid[CZ_DSP_TP_BLOCK];
    for (size_t i = 0; i < frames; i++)
        tp[i] = 0.0f;
    for (unsigned c = 0; c < a->channels; c++) {
        for (size_t i = 0; i < frames; i++)
            x[6 + i] = a->samples[i * a->channels + c];
        float prev = 0.0f; // interpolated peak between frame i-1 and i
        for (size_t start = 0; start < frames; start += CZ_DSP_TP_BLOCK) {
            size_t n = frames - start < CZ_DSP_TP_BLOCK ? frames - start : CZ_DSP_TP_BLOCK;
            cz_tp_block(taps, x + 6 + start - 5, (n + 3) & ~(size_t)3, mid);
            for (size_t i = 0; i < n; i++) {
                float s = fabsf(x[6 + start + i]);
                float v = s > mid[i] ? s : mid[i];
                v = v > prev ? v : prev;
                tp[start + i] = tp[start + i] > v ? tp[start + i] : v;
                prev = mid[i];
            }
        }
    }
    free(x);
}

/* ---------------------------------------------------------------- loudness */

/* BS.1770 channel weight under libebur128's default channel map. */
static double cz_k_weight(unsigned c) {
    switch (c) {
    case 0:
    case 1:
    case 2:
        return 1.0;
    case 4:
    case 5:
        return 1.41;
    default:
        return 0.0; // LFE and unmapped channels do not count
    }
}

void cz_dsp_k_energy(const cz_audio *a, float *e) {
    double rate = a->sample_rate;
    // Pre-filter (high shelf) and RLB high-pass, as BS.1770 and libebur128
    // derive them for any sample rate.
    double f0 = 1681.974450955533, gain = 3.999843853973347, q = 0.7071752369554196;
    double k = tan(CZ_DSP_PI * f0 / rate), vh = pow(10.0, gain / 20.0);
    double vb = pow(vh, 0.4996667741545416), a0 = 1.0 + k / q + k * k;
    cz_biquad shelf = {
        .b0 = (vh + vb * k / q + k * k) / a0,
        .b1 = 2.0 * (k * k - vh) / a0,
        .b2 = (vh - vb * k / q + k * k) / a0,
        .a1 = 2.0 * (k * k - 1.0) / a0,
        .a2 = (1.0 - k / q + k * k) / a0,
    };
    f0 = 38.13547087602444;
    q = 0.5003270373238773;
    k = tan(CZ_DSP_PI * f0 / rate);
    a0 = 1.0 + k / q + k * k;
    cz_biquad rlb = {.b0 = 1.0,
                     .b1 = -2.0,
                     .b2 = 1.0,
                     .a1 = 2.0 * (k * k - 1.0) / a0,
                     .a2 = (1.0 - k / q + k * k) / a0};

    for (size_t n = 0; n < a->frames; n++)
        e[n] = 0.0f;
    for (unsigned c = 0; c < a->channels; c++) {
        double w = cz_k_weight(c);
        if (w == 0.0)
            continue;
        double s1 = 0, s2 = 0, r1 = 0, r2 = 0;
        const float *s = a->samples + c;
        for (size_t n = 0; n < a->frames; n++, s += a->channels) {
            double x = *s;
            double y = shelf.b0 * x + s1;
            s1 = shelf.b1 * x - shelf.a1 * y + s2;
            s2 = shelf.b2 * x - shelf.a2 * y;
            double z = rlb.b0 * y + r1;
            r1 = rlb.b1 * y - rlb.a1 * z + r2;
            r2 = rlb.b2 * y - rlb.a2 * z;
            e[n] += (float)(w * z * z);
        }
    }
}

double cz_dsp_loudness(const float *e, const float *g, size_t frames, unsigned rate, double gain) {
    size_t sub = (rate + 5) / 10; // 100 ms, as libebur128 counts it
    size_t nsub = frames / sub;
    if (nsub < 4)
        return -HUGE_VAL;
    double *s = cz_malloc(nsub * sizeof *s);
    for (size_t j = 0; j < nsub; j++) {
        double acc = 0.0;
        const float *ej = e + j * sub;
        if (g) {
            const float *gj = g + j * sub;
            for (size_t i = 0; i < sub; i++)
                acc += (double)ej[i] * gj[i] * gj[i];
        } else {
            for (size_t i = 0; i < sub; i++)
                acc += ej[i];
        }
        s[j] = acc;
    }
    // 400 ms blocks every 100 ms; energies as mean squares times gain^2.
    size_t nblk = nsub - 3;
    double scale = gain * gain / (4.0 * (double)sub);
    double abs_gate = pow(10.0, (-70.0 + 0.691) / 10.0), sum = 0.0;
    size_t count = 0;
    for (size_t k = 0; k < nblk; k++) {
        double b = (s[k] + s[k + 1] + s[k + 2] + s[k + 3]) * scale;
        if (b >= abs_gate) {
            sum += b;
            count++;
        }
    }
    double out = -HUGE_VAL;
    if (count > 0) {
        double rel_gate = sum / (double)count * pow(10.0, -10.0 / 10.0);
        double sum2 = 0.0;
        size_t count2 = 0;
        for (size_t k = 0; k < nblk; k++) {
            double b = (s[k] + s[k + 1] + s[k + 2] + s[k + 3]) * scale;
            if (b >= abs_gate && b >= rel_gate) {
                sum2 += b;
                count2++;
            }
        }
        if (count2 > 0)
            out = 10.0 * log10(sum2 / (double)count2) - 0.691;
    }
    free(s);
    return out;
}

/* ---------------------------------------------------------------- limiter */

double cz_dsp_limiter_gain(const float *tp, size_t frames, unsigned rate, double gain,
                           double threshold, double lookahead_s, double release_s, float *g) {
    long la = lround(lookahead_s * rate);
    if (la < 1)
        la = 1;
    size_t cap = (size_t)la + 2, win = (size_t)la + 1;
    // Sliding minimum over the frames that need reduction: a monotonic
    // deque (values increase from front to back) in a ring.
    long *qi = cz_malloc(cap * sizeof *qi);
    double *qv = cz_malloc(cap * sizeof *qv);
    double *box = cz_malloc(win * sizeof *box);
    size_t qh = 0, ql = 0, pos = 0, not_one = 0;
    for (size_t i = 0; i < win; i++)
        box[i] = 1.0;
    double box_sum = (double)win, h2 = 1.0, floor_g = 1.0;
    double rel = exp(-1.0 / (release_s * rate));
    float over = (float)(threshold / gain); // tp above this needs reduction
    long n_frames = (long)frames;

    for (long t = 0; t < n_frames + la; t++) {
        // Nothing pending and nothing released: skip to the next frame that
        // needs reduction; every frame decided on the way gets unity gain.
        if (ql == 0 && h2 == 1.0 && not_one == 0) {
            long next = t;
            while (next < n_frames && tp[next] <= over)
                next++;
            for (long n = t - la < 0 ? 0 : t - la; n < next - la; n++)
                g[n] = 1.0f;
            if (next == n_frames) {
                for (long n = next - la < 0 ? 0 : next - la; n < n_frames; n++)
                    g[n] = 1.0f;
                break;
            }
            t = next;
        }
        if (t < n_frames && tp[t] > over) {
            double r = threshold / (gain * tp[t]);
            while (ql > 0 && qv[(qh + ql - 1) % cap] >= r)
                ql--;
            qi[(qh + ql) % cap] = t;
            qv[(qh + ql) % cap] = r;
            ql++;
        }
        long n = t - la; // the frame whose gain is decided now
        long from = n < 0 ? 0 : n;
        while (ql > 0 && qi[qh] < from) {
            qh = (qh + 1) % cap;
            ql--;
        }
        double h = ql > 0 ? qv[qh] : 1.0;
        if (h2 < 1.0) {
            h2 = 1.0 - (1.0 - h2) * rel;
            if (1.0 - h2 < 1e-9)
                h2 = 1.0;
        }
        h2 = fmin(h, h2);
        if (box[pos] != 1.0)
            not_one--;
        if (h2 != 1.0)
            not_one++;
        box_sum += h2 - box[pos];
        box[pos] = h2;
        pos = pos + 1 == win ? 0 : pos + 1;
        if (n < 0)
            continue;
        double gn = 1.0;
        if (not_one > 0) {
            gn = box_sum / (double)win;
            // Guard against rounding drift in the running sum.
            if (tp[n] > over)
                gn = fmin(gn, threshold / (gain * tp[n]));
            floor_g = fmin(floor_g, gn);
        } else {
            box_sum = (double)win; // exact again: every value in the window is 1
        }
        g[n] = (float)gn;
    }
    free(qi);
    free(qv);
    free(box);
    return -20.0 * log10(floor_g);
}
