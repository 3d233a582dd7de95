/* Audio analysis (see analysis.h; the mappings are documented in
 * docs/architecture.md, "Track features").
 *
 * The audio is fed in blocks (all of it for cz_analysis_run, file chunks
 * for cz_analysis_file). Each block goes whole to the loudness meter and,
 * downmixed to mono and decimated by an integer factor to about 11-12 kHz
 * (a box filter of the factor's length before dropping samples: enough
 * for features that look at nothing above 5 kHz), into one buffer. The
 * rest runs on that buffer once the audio has ended:
 *
 *   - tempo: libaubio's beat tracker (512-sample window, 256 hop) proposes
 *     one, the median of the tempos it reports at its beats; the onset
 *     envelope's autocorrelation picks its octave (with a prior around
 *     110 bpm) and measures it precisely; then it is folded by octaves
 *     into [CZ_ANALYSIS_TEMPO_MIN, CZ_ANALYSIS_TEMPO_MAX);
 *   - onsets: libaubio's spectral-flux onset detector (1024 window, 256
 *     hop), counted per second; its detection function, log-compressed
 *     and smoothed, is that onset envelope;
 *   - FFT frames (FFTW r2c, 4096 samples, Hann, hop 2048): a chroma vector
 *     (magnitudes of 55-2100 Hz bins summed per pitch class), ten band
 *     energies on log-spaced bands 60-5000 Hz, spectral centroid, flatness
 *     and flux, and the level of each frame.
 *
 * FFTW plans are made with FFTW_ESTIMATE (FFTW_MEASURE may choose another
 * algorithm from one run to the next, and the results would differ in the
 * last bits), and plan creation, which FFTW and libaubio's FFTW plans share
 * and which is not thread-safe, is serialised by one mutex. */
#include "common/music/analysis.h"

#include <aubio/aubio.h>
#include <ebur128.h>
#include <fftw3.h>
#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/music/audio_file.h"

#define CZ_AN_TARGET_RATE 11025 /* decimate to the lowest rate at or above this */
#define CZ_AN_FFT 4096
#define CZ_AN_HOP 2048
#define CZ_AN_BEAT_WIN 512   /* the beat tracker's window */
#define CZ_AN_ONSET_WIN 1024 /* the onset detector's */
#define CZ_AN_BEAT_HOP 256
#define CZ_AN_BANDS 10
#define CZ_AN_BAND_LO 60.0
#define CZ_AN_BAND_HI 5000.0
#define CZ_AN_CHROMA_LO 55.0
#define CZ_AN_CHROMA_HI 2100.0
#define CZ_AN_MIN_S 1.0           /* shorter audio has no tempo or key to speak of */
#define CZ_AN_SILENT_LUFS -70.0   /* quieter audio is treated as silence */
#define CZ_AN_FRAME_GATE_DB -60.0 /* frames under this level are left out of statistics */
#define CZ_AN_READ_FRAMES 65536

/* Plan creation in FFTW is not thread-safe; libaubio makes plans too. */
static pthread_mutex_t cz_an_plan_lock = PTHREAD_MUTEX_INITIALIZER;

/* ---------------------------------------------------------------- feeding */

typedef struct cz_an {
    int channels, rate, factor;
    double low_rate; /* rate of the mono copy */
    ebur128_state *meter;
    float *mono; /* decimated mono copy, owned */
    size_t n, cap;
    double acc; /* the box filter's running sum */
    int acc_n;
    long frames; /* input frames seen */
} cz_an;

static int cz_an_begin(cz_an *an, int channels, int rate, bool meter, cz_err *err) {
    memset(an, 0, sizeof *an);
    if (channels < 1 || channels > 64 || rate < 8000 || rate > 768000)
        return cz_err_set(err, "analysis: unusable format (%d channels at %d Hz)", channels, rate);
    an->channels = channels;
    an->rate = rate;
    an->factor = rate / CZ_AN_TARGET_RATE > 1 ? rate / CZ_AN_TARGET_RATE : 1;
    an->low_rate = (double)rate / an->factor;
    if (!meter)
        return 0;
    an->meter = ebur128_init((unsigned)channels, (unsigned long)rate, EBUR128_MODE_I);
    if (!an->meter)
        return cz_err_set(err, "analysis: out of memory starting the loudness meter");
    return 0;
}

static void cz_an_end(cz_an *an) {
    if (an->meter)
        ebur128_destroy(&an->meter);
    free(an->mono);
    memset(an, 0, sizeof *an);
}

static int cz_an_feed(cz_an *an, const float *pcm, long frames, cz_err *err) {
    if (frames <= 0)
        return 0;
    if (an->meter && ebur128_add_frames_float(an->meter, pcm, (size_t)frames) != EBUR128_SUCCESS)
        return cz_err_set(err, "analysis: the loudness meter refused %ld frames", frames);
    size_t need = an->n + (size_t)frames / (size_t)an->factor + 1;
    if (need > an->cap) {
        size_t cap = an->cap ? an->cap : 1 << 16;
        while (cap < need)
            cap *= 2;
        an->mono = cz_realloc(an->mono, cap * sizeof *an->mono);
        an->cap = cap;
    }
    const float scale = 1.0f / (float)an->channels;
    for (long i = 0; i < frames; i++) {
        const float *f = pcm + i * an->channels;
        float s = 0.0f;
        for (int c = 0; c < an->channels; c++)
            s += f[c];
        an->acc += s * scale;
        if (++an->acc_n == an->factor) {
            an->mono[an->n++] = (float)(an->acc / an->factor);
            an->acc = 0.0, an->acc_n = 0;
        }
    }
    an->frames += frames;
    return 0;
}

/* ---------------------------------------------------------------- tempo */

static int cz_an_cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

double cz_analysis_fold_tempo(double bpm) {
    if (!(bpm > 0) || !isfinite(bpm))
        return 0;
    while (bpm < CZ_ANALYSIS_TEMPO_MIN)
        bpm *= 2;
    while (bpm >= CZ_ANALYSIS_TEMPO_MAX)
        bpm /= 2;
    return bpm;
}

/* Autocorrelation of the onset envelope at a fractional lag (linear
 * interpolation between the integer lags computed). */
static double cz_an_ac_at(const double *ac, size_t n, double lag) {
    size_t i = (size_t)lag;
    if (i + 1 >= n)
        return 0;
    double f = lag - (double)i;
    return ac[i] * (1 - f) + ac[i + 1] * f;
}

/* The peak of @p ac within 6% of @p lag, refined by a parabola through
 * the best integer lag and its neighbours. @returns the peak's lag. */
static double cz_an_ac_peak(const double *ac, size_t n, double lag) {
    long lo = (long)floor(lag * 0.94), hi = (long)ceil(lag * 1.06), best = -1;
    if (lo < 1)
        lo = 1;
    for (long i = lo; i <= hi && i + 1 < (long)n; i++)
        if (best < 0 || ac[i] > ac[best])
            best = i;
    if (best < 1)
        return lag;
    double a = ac[best - 1], b = ac[best], c = ac[best + 1], d = a - 2 * b + c;
    double off = d < 0 ? 0.5 * (a - c) / d : 0;
    return (double)best + (off > 0.5 ? 0.5 : off < -0.5 ? -0.5 : off);
}

/* The octave prior: tempos near 110 bpm are likelier than an octave off
 * (a log-normal, one octave wide, as most beat trackers use; centred a
 * little under the usual 120 so that 70-90 bpm grooves with busy hats
 * are not read at double time). */
static double cz_an_tempo_prior(double bpm) {
    double o = log2(bpm / 110.0);
    return exp(-0.5 * o * o);
}

/* Picks the tempo from the tracker's estimate @p beat_bpm (0: none) and the
 * autocorrelation @p ac of the onset envelope (@p fps envelope values per
 * second): among the estimate, its half and its double, the one whose lag
 * the envelope repeats at most strongly, weighted by the octave prior;
 * then measured precisely on the peak four beats on (a hop of error spread
 * over four beats). */
static double cz_an_tempo_pick(double beat_bpm, const double *ac, size_t n, double fps) {
    double cands[3] = {beat_bpm / 2, beat_bpm, beat_bpm * 2}, best_lag = 0, best = -1e300;
    for (int i = 0; beat_bpm > 0 && i < 3; i++) {
        if (cands[i] < 40 || cands[i] > 240)
            continue;
        double lag = cz_an_ac_peak(ac, n, 60.0 * fps / cands[i]);
        double score = cz_an_ac_at(ac, n, lag) * cz_an_tempo_prior(60.0 * fps / lag);
        if (score > best)
            best = score, best_lag = lag;
    }
    if (!(best_lag > 0))
        return beat_bpm;
    if (4 * best_lag * 1.06 + 2 < (double)n)
        best_lag = cz_an_ac_peak(ac, n, 4 * best_lag) / 4;
    return 60.0 * fps / best_lag;
}

/* Tempo (0 when no beat was found) and onsets per second of the mono copy. */
static int cz_an_rhythm(const cz_an *an, double *bpm, double *onset_rate, cz_err *err) {
    uint_t sr = (uint_t)lround(an->low_rate);
    pthread_mutex_lock(&cz_an_plan_lock);
    aubio_tempo_t *tempo = new_aubio_tempo("default", CZ_AN_BEAT_WIN, CZ_AN_BEAT_HOP, sr);
    aubio_onset_t *onset = new_aubio_onset("specflux", CZ_AN_ONSET_WIN, CZ_AN_BEAT_HOP, sr);
    pthread_mutex_unlock(&cz_an_plan_lock);
    fvec_t *in = new_fvec(CZ_AN_BEAT_HOP), *beat = new_fvec(1), *hit = new_fvec(1);
    size_t hops = an->n / CZ_AN_BEAT_HOP, nb = 0, onsets = 0;
    float *bpms = cz_malloc((hops + 1) * sizeof *bpms);
    double *env = cz_malloc((hops + 1) * sizeof *env),
           *smooth = cz_malloc((hops + 1) * sizeof *smooth);
    size_t nlag = (size_t)(16.0 * an->low_rate / CZ_AN_BEAT_HOP); // lags up to 16 s
    nlag = nlag < hops ? nlag : hops;
    double *ac = cz_calloc(nlag + 1, sizeof *ac);
    int rc = 0;
    if (!tempo || !onset || !in || !beat || !hit)
        rc = cz_err_set(err, "analysis: cannot start libaubio's tempo and onset detectors");
    for (size_t h = 0; rc == 0 && h < hops; h++) {
        memcpy(in->data, an->mono + h * CZ_AN_BEAT_HOP, CZ_AN_BEAT_HOP * sizeof(float));
        aubio_tempo_do(tempo, in, beat);
        aubio_onset_do(onset, in, hit);
        env[h] = aubio_onset_get_descriptor(onset);
        if (hit->data[0] != 0)
            onsets++;
        if (beat->data[0] != 0) {
            float b = aubio_tempo_get_bpm(tempo);
            if (b > 0)
                bpms[nb++] = b;
        }
    }
    if (rc == 0) {
        // The median of the tempos reported at each beat: robust to the
        // tracker's first guesses and to a bar where it lost the beat.
        double beat_bpm = 0;
        if (nb) {
            qsort(bpms, nb, sizeof *bpms, cz_an_cmp_float);
            beat_bpm = nb % 2 ? bpms[nb / 2] : 0.5 * (bpms[nb / 2 - 1] + bpms[nb / 2]);
        }
        // The envelope is compressed (log of the descriptor over its mean) so
        // that a loud snare does not outweigh the kick and the hats: the
        // autocorrelation then sees the beat, not only the backbeat's bar.
        double mean = 0, lmean = 0;
        for (size_t h = 0; h < hops; h++)
            mean += env[h] / (double)hops;
        for (size_t h = 0; h < hops; h++)
            env[h] = log1p(env[h] / (mean + 1e-12)), lmean += env[h] / (double)hops;
        // Smoothed ([1 2 3 2 1] / 9) so that a beat period that is not a
        // whole number of hops still shows as one peak of the autocorrelation
        // rather than two half-height ones.
        for (size_t h = 0; h < hops; h++) {
            double sum = 0, w = 0;
            for (int d = -2; d <= 2; d++) {
                long j = (long)h + d;
                if (j >= 0 && j < (long)hops)
                    sum += (3 - abs(d)) * (env[j] - lmean), w += 3 - abs(d);
            }
            smooth[h] = sum / w;
        }
        for (size_t l = 0; l < nlag; l++) {
            double sum = 0;
            for (size_t h = 0; h + l < hops; h++)
                sum += smooth[h] * smooth[h + l];
            ac[l] = sum / (double)(hops - l);
        }
        double fps = an->low_rate / CZ_AN_BEAT_HOP;
        *bpm = cz_analysis_fold_tempo(cz_an_tempo_pick(beat_bpm, ac, nlag, fps));
        *onset_rate = (double)onsets / ((double)an->n / an->low_rate);
    }
    free(bpms);
    free(env);
    free(smooth);
    free(ac);
    if (in)
        del_fvec(in);
    if (beat)
        del_fvec(beat);
    if (hit)
        del_fvec(hit);
    pthread_mutex_lock(&cz_an_plan_lock);
    if (tempo)
        del_aubio_tempo(tempo);
    if (onset)
        del_aubio_onset(onset);
    pthread_mutex_unlock(&cz_an_plan_lock);
    return rc;
}

/* ---------------------------------------------------------------- spectrum */

/* What the FFT frames add up to. */
typedef struct cz_an_spectrum {
    double chroma[12];                 /* magnitude per pitch class, summed */
    double bands[CZ_AN_BANDS];         /* power per band, summed */
    double centroid_mean, centroid_sd; /* Hz */
    double flatness_mean;              /* 0 tonal .. 1 noise */
    double flux_mean, flux_sd;         /* of unit-sum magnitude spectra, 0..2 */
    double level_sd;                   /* dB, frame to frame */
    long frames;                       /* frames above the gate */
} cz_an_spectrum;

/* The FFT's buffers and plan, and what each bin stands for. */
typedef struct cz_an_fft {
    int nbins;
    double hz; /* bin width */
    float *in, *win, *mag;
    float *prev; /* the previous frame's unit-sum magnitudes, for the flux */
    fftwf_complex *out;
    signed char *pc, *band; /* each bin's pitch class and band, -1 for none */
    fftwf_plan plan;
} cz_an_fft;

/* Allocates the buffers, makes the plan and fills the Hann window and the
 * bin tables. @returns 0, or -1 with @p err filled (cz_an_fft_close still
 * frees what was made). */
static int cz_an_fft_open(const cz_an *an, cz_an_fft *f, cz_err *err) {
    f->nbins = CZ_AN_FFT / 2 + 1;
    f->hz = an->low_rate / CZ_AN_FFT;
    const int nbins = f->nbins;
    f->in = fftwf_malloc(CZ_AN_FFT * sizeof *f->in);
    f->out = fftwf_malloc((size_t)nbins * sizeof *f->out);
    f->win = cz_malloc(CZ_AN_FFT * sizeof *f->win);
    f->mag = cz_malloc((size_t)nbins * sizeof *f->mag);
    f->prev = cz_calloc((size_t)nbins, sizeof *f->prev);
    f->pc = cz_malloc((size_t)nbins), f->band = cz_malloc((size_t)nbins);
    f->plan = NULL;
    if (f->in && f->out) {
        pthread_mutex_lock(&cz_an_plan_lock);
        f->plan = fftwf_plan_dft_r2c_1d(CZ_AN_FFT, f->in, f->out, FFTW_ESTIMATE);
        pthread_mutex_unlock(&cz_an_plan_lock);
    }
    if (!f->plan)
        return cz_err_set(err, "analysis: out of memory for the FFT");

    double top = fmin(CZ_AN_BAND_HI, 0.45 * an->low_rate);
    for (int k = 0; k < nbins; k++) {
        double freq = k * f->hz;
        f->pc[k] = -1, f->band[k] = -1;
        if (freq >= CZ_AN_CHROMA_LO && freq <= CZ_AN_CHROMA_HI) // MIDI note 69 is A 440 Hz
            f->pc[k] = (signed char)(((long)lround(12.0 * log2(freq / 440.0) + 69.0)) % 12);
        if (freq >= CZ_AN_BAND_LO && freq < top)
            f->band[k] =
                (signed char)(CZ_AN_BANDS * log(freq / CZ_AN_BAND_LO) / log(top / CZ_AN_BAND_LO));
    }
    for (int i = 0; i < CZ_AN_FFT; i++)
        f->win[i] = (float)(0.5 - 0.5 * cos(2.0 * M_PI * i / CZ_AN_FFT));
    return 0;
}

static void cz_an_fft_close(cz_an_fft *f) {
    if (f->plan) {
        pthread_mutex_lock(&cz_an_plan_lock);
        fftwf_destroy_plan(f->plan);
        pthread_mutex_unlock(&cz_an_plan_lock);
    }
    fftwf_free(f->in);
    fftwf_free(f->out);
    free(f->win);
    free(f->mag);
    free(f->prev);
    free(f->pc);
    free(f->band);
}

/* Windows frame @p t of the mono copy into the FFT's input; the last frame
 * is padded with zeros. @returns the frame's level in dB (unwindowed). */
static double cz_an_frame_load(const cz_an *an, cz_an_fft *f, size_t t) {
    const float *x = an->mono + t * CZ_AN_HOP;
    size_t avail = an->n - t * CZ_AN_HOP < CZ_AN_FFT ? an->n - t * CZ_AN_HOP : CZ_AN_FFT;
    double ms = 0;
    for (size_t i = 0; i < CZ_AN_FFT; i++) {
        float v = i < avail ? x[i] : 0.0f;
        ms += (double)v * v;
        f->in[i] = v * f->win[i];
    }
    return 10.0 * log10(ms / CZ_AN_FFT + 1e-20);
}

/* One frame's spectrum, summed the ways the statistics need. */
typedef struct cz_an_frame {
    double level;      /* dB */
    double msum;       /* magnitudes, every bin but DC */
    double csum;       /* magnitudes weighted by frequency, for the centroid */
    double psum, logp; /* power and log power over the bands' bins */
    int nlog;          /* how many bins those are */
} cz_an_frame;

/* Transforms the loaded frame into magnitudes (f->mag) and sums, and adds
 * its power per band to @p s: the bands count every frame above the gate. */
static void cz_an_frame_transform(cz_an_fft *f, cz_an_spectrum *s, cz_an_frame *fr) {
    fftwf_execute(f->plan);
    fr->msum = 0, fr->psum = 0, fr->csum = 0, fr->logp = 0;
    fr->nlog = 0;
    for (int k = 1; k < f->nbins; k++) {
        double re = f->out[k][0], im = f->out[k][1], p = re * re + im * im;
        f->mag[k] = (float)sqrt(p);
        fr->msum += f->mag[k];
        fr->csum += f->mag[k] * k * f->hz;
        if (f->band[k] >= 0) {
            s->bands[f->band[k]] += p;
            fr->psum += p;
            fr->logp += log(p + 1e-12);
            fr->nlog++;
        }
    }
}

/* Running sums over the frames (Welford's mean and variance for the
 * per-frame statistics, so one pass over the audio is enough). */
typedef struct cz_an_running {
    double c_m, c_q, f_m, f_q, l_m, l_q, flat_sum;
    long nflux;
    bool have_prev; /* f->prev holds the frame just before */
} cz_an_running;

/* Adds a frame with sound in it to the chroma and the running statistics;
 * the flux compares it with the frame before, when that one counted too. */
static void cz_an_frame_add(cz_an_fft *f, cz_an_spectrum *s, cz_an_running *r,
                            const cz_an_frame *fr) {
    const int nbins = f->nbins;
    for (int k = 1; k < nbins; k++)
        if (f->pc[k] >= 0)
            s->chroma[f->pc[k]] += f->mag[k];
    s->frames++;
    double centroid = fr->csum / fr->msum, d;
    d = centroid - r->c_m, r->c_m += d / s->frames, r->c_q += d * (centroid - r->c_m);
    d = fr->level - r->l_m, r->l_m += d / s->frames, r->l_q += d * (fr->level - r->l_m);
    if (fr->nlog && fr->psum > 0)
        r->flat_sum += exp(fr->logp / fr->nlog) / (fr->psum / fr->nlog + 1e-12);
    if (r->have_prev) {
        double flux = 0;
        for (int k = 1; k < nbins; k++) {
            double u = f->mag[k] / fr->msum - f->prev[k];
            flux += u > 0 ? u : 0;
        }
        r->nflux++;
        d = flux - r->f_m, r->f_m += d / r->nflux, r->f_q += d * (flux - r->f_m);
    }
    for (int k = 1; k < nbins; k++)
        f->prev[k] = (float)(f->mag[k] / fr->msum);
    r->have_prev = true;
}

/* Turns the running sums into the means and deviations of @p s.
 * @returns 0, or -1 with @p err filled when no frame had sound. */
static int cz_an_spectrum_finish(cz_an_spectrum *s, const cz_an_running *r, cz_err *err) {
    if (s->frames == 0)
        return cz_err_set(err, "analysis: the audio is silent (every frame under %.0f dBFS)",
                          CZ_AN_FRAME_GATE_DB);
    s->centroid_mean = r->c_m;
    s->centroid_sd = sqrt(r->c_q / s->frames);
    s->level_sd = sqrt(r->l_q / s->frames);
    s->flatness_mean = r->flat_sum / s->frames;
    s->flux_mean = r->f_m;
    s->flux_sd = r->nflux ? sqrt(r->f_q / r->nflux) : 0;
    return 0;
}

/* The FFT frames of the mono copy, hop by hop: frames under the gate are
 * left out (and break the flux's chain), the others add to @p s. */
static int cz_an_spectrum_run(const cz_an *an, cz_an_spectrum *s, cz_err *err) {
    memset(s, 0, sizeof *s);
    cz_an_fft f;
    int rc = cz_an_fft_open(an, &f, err);
    if (rc == 0) {
        cz_an_running r = {0};
        size_t nframes = an->n <= CZ_AN_FFT ? 1 : (an->n - CZ_AN_FFT) / CZ_AN_HOP + 1;
        for (size_t t = 0; t < nframes; t++) {
            cz_an_frame fr = {.level = cz_an_frame_load(an, &f, t)};
            if (fr.level < CZ_AN_FRAME_GATE_DB) {
                r.have_prev = false;
                continue;
            }
            cz_an_frame_transform(&f, s, &fr);
            if (fr.msum > 0)
                cz_an_frame_add(&f, s, &r, &fr);
        }
        rc = cz_an_spectrum_finish(s, &r, err);
    }
    cz_an_fft_close(&f);
    return rc;
}

/* ---------------------------------------------------------------- key */

/* Krumhansl-Kessler key profiles (Krumhansl 1990), tonic first. */
static const double cz_an_major[12] = {6.35, 2.23, 3.48, 2.33, 4.38, 4.09,
                                       2.52, 5.19, 2.39, 3.66, 2.29, 2.88};
static const double cz_an_minor[12] = {6.33, 2.68, 3.52, 5.38, 2.60, 3.53,
                                       2.54, 4.75, 3.98, 2.69, 3.34, 3.17};

static double cz_an_pearson(const double *x, const double *profile, int shift) {
    double mx = 0, my = 0;
    for (int i = 0; i < 12; i++)
        mx += x[i] / 12, my += profile[i] / 12;
    double sxy = 0, sxx = 0, syy = 0;
    for (int i = 0; i < 12; i++) {
        double a = x[(i + shift) % 12] - mx, b = profile[i] - my;
        sxy += a * b, sxx += a * a, syy += b * b;
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0;
}

/* The Krumhansl-Schmuckler estimate: the rotation of a profile that
 * correlates best with the chroma. @returns that correlation. */
static double cz_an_key(const double chroma[12], int *key, int *mode) {
    double best = -2;
    *key = 0, *mode = 1;
    for (int k = 0; k < 12; k++) {
        double r1 = cz_an_pearson(chroma, cz_an_major, k),
               r0 = cz_an_pearson(chroma, cz_an_minor, k);
        if (r1 > best)
            best = r1, *key = k, *mode = 1;
        if (r0 > best)
            best = r0, *key = k, *mode = 0;
    }
    return best;
}

/* ---------------------------------------------------------------- energy, moods */

static double cz_an_clamp01(double x) {
    return x < 0 ? 0 : x > 1 ? 1 : x;
}

/* Brightness 0..1 from the spectral centroid (Hz of the decimated copy). */
static double cz_an_brightness(double centroid) {
    return cz_an_clamp01((centroid - 400.0) / 2600.0);
}

/* Energy: loudness (-35..-8 LUFS), onset density (0..6 per second) and
 * brightness, weighted 0.3 / 0.45 / 0.25. Masters all sit near their
 * loudness target, so density and brightness carry most of it. */
static double cz_an_energy(double lufs, double onset_rate, double centroid) {
    return 0.30 * cz_an_clamp01((lufs + 35.0) / 27.0) + 0.45 * cz_an_clamp01(onset_rate / 6.0) +
           0.25 * cz_an_brightness(centroid);
}

static void cz_an_mood(cz_track_features *f, const char *m) {
    if (f->n_moods < CZ_TAGS_MAX)
        snprintf(f->moods[f->n_moods++], CZ_TAG_LEN, "%s", m);
}

static void cz_an_moods(cz_track_features *f, double centroid) {
    if (f->energy >= 0.65)
        cz_an_mood(f, "energetic");
    if (f->energy <= 0.40)
        cz_an_mood(f, "calm");
    if (f->mode == 1 && f->tempo_bpm >= 95 && f->energy >= 0.45)
        cz_an_mood(f, "happy");
    if (f->mode == 0 && f->tempo_bpm < 100 && f->energy < 0.6)
        cz_an_mood(f, "melancholic");
    if (f->mode == 0 && cz_an_brightness(centroid) < 0.3)
        cz_an_mood(f, "dark");
}

/* ---------------------------------------------------------------- embedding */

/* Each component is standardised, (x - mean) / sd, with fixed constants,
 * weighted, clipped to +-4 and the whole vector scaled to unit length. The
 * means and deviations are those of 38 renders of the composer (15 styles,
 * 2026-11-21), with a floor under the deviations where those renders
 * varied less than music at large does. The twelve chroma shares all use
 * one mean (1/12) and deviation; the weights keep one group (twelve chroma
 * shares, ten bands) from outvoting the rest. */
#define CZ_AN_CHROMA_SD 0.04
#define CZ_AN_CHROMA_WEIGHT 0.5

typedef struct cz_an_norm {
    double mean, sd, weight;
} cz_an_norm;

static const cz_an_norm cz_an_norms[CZ_EMBED_DIM - 12] = {
    /* 12-21 band shares in dB, 60 Hz .. 5 kHz, low to high */
    {-8.5, 8.0, 0.7},
    {-9.7, 4.0, 0.7},
    {-9.2, 3.0, 0.7},
    {-9.7, 3.0, 0.7},
    {-11.7, 4.0, 0.7},
    {-10.7, 3.0, 0.7},
    {-14.0, 4.0, 0.7},
    {-16.7, 4.0, 0.7},
    {-17.2, 4.0, 0.7},
    {-19.0, 4.0, 0.7},
    /* 22-23 spectral centroid, mean and sd (Hz) */
    {1480.0, 350.0, 1.0},
    {390.0, 100.0, 0.7},
    /* 24 spectral flatness */
    {0.026, 0.015, 0.7},
    /* 25-26 spectral flux, mean and sd */
    {0.32, 0.04, 1.0},
    {0.09, 0.03, 0.7},
    /* 27 onsets per second */
    {4.2, 1.6, 1.0},
    /* 28-29 tempo: log2(bpm / 110), and its position within the octave */
    {0.05, 0.35, 1.0},
    {0.35, 0.64, 0.5},
    /* 30 level variation, frame to frame (dB) */
    {5.7, 1.5, 0.7},
    /* 31 key clarity (the key profile's correlation) */
    {0.80, 0.08, 0.5},
};

static void cz_an_embed(cz_track_features *f, const cz_an_spectrum *s, double onset_rate,
                        double clarity) {
    double x[CZ_EMBED_DIM], csum = 0, bsum = 0;
    for (int i = 0; i < 12; i++)
        csum += s->chroma[i];
    for (int i = 0; i < 12; i++)
        x[i] = csum > 0 ? s->chroma[i] / csum : 1.0 / 12;
    for (int i = 0; i < CZ_AN_BANDS; i++)
        bsum += s->bands[i];
    for (int i = 0; i < CZ_AN_BANDS; i++)
        x[12 + i] = 10.0 * log10((bsum > 0 ? s->bands[i] / bsum : 0) + 1e-6);
    x[22] = s->centroid_mean;
    x[23] = s->centroid_sd;
    x[24] = s->flatness_mean;
    x[25] = s->flux_mean;
    x[26] = s->flux_sd;
    x[27] = onset_rate;
    double octave = log2(f->tempo_bpm / 110.0);
    x[28] = octave;
    x[29] = sin(2.0 * M_PI * octave); // tempos an octave apart share this one
    x[30] = s->level_sd;
    x[31] = clarity;
    double norm = 0, z[CZ_EMBED_DIM];
    for (int i = 0; i < CZ_EMBED_DIM; i++) {
        if (i < 12) {
            z[i] = CZ_AN_CHROMA_WEIGHT * (x[i] - 1.0 / 12) / CZ_AN_CHROMA_SD;
        } else {
            const cz_an_norm *n = &cz_an_norms[i - 12];
            z[i] = n->weight * (x[i] - n->mean) / n->sd;
        }
        z[i] = z[i] > 4 ? 4 : z[i] < -4 ? -4 : z[i];
        norm += z[i] * z[i];
    }
    norm = sqrt(norm);
    for (int i = 0; i < CZ_EMBED_DIM; i++)
        f->embedding[i] = norm > 1e-9 ? (float)(z[i] / norm) : (float)(1.0 / sqrt(CZ_EMBED_DIM));
}

/* ---------------------------------------------------------------- the whole */

/* @p lufs: the integrated loudness when the caller measured it, else NAN
 * (then the meter fed along the way measures it). */
static int cz_an_finish(cz_an *an, double lufs, cz_track_features *out, cz_err *err) {
    memset(out, 0, sizeof *out);
    double seconds = (double)an->frames / an->rate;
    if (seconds < CZ_AN_MIN_S)
        return cz_err_set(err, "analysis: %.2f s of audio is too short (need %.0f s)", seconds,
                          CZ_AN_MIN_S);
    if (an->meter && ebur128_loudness_global(an->meter, &lufs) != EBUR128_SUCCESS)
        return cz_err_set(err, "analysis: the loudness meter failed");
    if (!(lufs >= CZ_AN_SILENT_LUFS))
        return cz_err_set(err, "analysis: the audio is silent or too quiet (%.1f LUFS, need %.0f)",
                          lufs, CZ_AN_SILENT_LUFS);
    double bpm = 0, onset_rate = 0, clarity;
    cz_an_spectrum s;
    if (cz_an_rhythm(an, &bpm, &onset_rate, err) || cz_an_spectrum_run(an, &s, err))
        return -1;
    out->duration_s = (float)seconds;
    // No beat at all (a drone, a pad): the slowest tempo of the range.
    out->tempo_bpm = (float)(bpm > 0 ? bpm : CZ_ANALYSIS_TEMPO_MIN);
    clarity = cz_an_key(s.chroma, &out->key, &out->mode);
    out->loudness_lufs = (float)lufs;
    out->energy = (float)cz_an_energy(lufs, onset_rate, s.centroid_mean);
    cz_an_moods(out, s.centroid_mean);
    cz_an_embed(out, &s, onset_rate, clarity);
    return 0;
}

int cz_analysis_run_measured(const float *pcm, long frames, int channels, int rate,
                             double loudness_lufs, cz_track_features *out, cz_err *err) {
    if (!pcm || !out || frames < 0)
        return cz_err_set(err, "analysis: no audio or no output given");
    cz_an an;
    int rc = cz_an_begin(&an, channels, rate, isnan(loudness_lufs), err);
    if (rc == 0)
        rc = cz_an_feed(&an, pcm, frames, err);
    if (rc == 0)
        rc = cz_an_finish(&an, loudness_lufs, out, err);
    cz_an_end(&an);
    return rc;
}

int cz_analysis_run(const float *pcm, long frames, int channels, int rate, cz_track_features *out,
                    cz_err *err) {
    return cz_analysis_run_measured(pcm, frames, channels, rate, NAN, out, err);
}

int cz_analysis_file(const char *path, cz_track_features *out, cz_err *err) {
    if (!path || !out)
        return cz_err_set(err, "analysis: no path or no output given");
    cz_audio_file f;
    if (cz_audio_file_open(&f, path, CZ_AN_READ_FRAMES, err))
        return -1;
    cz_an an;
    int rc = cz_an_begin(&an, f.channels, f.rate, true, err);
    while (rc == 0) {
        size_t got = cz_audio_file_next(&f);
        if (got == 0)
            break;
        rc = cz_an_feed(&an, f.block, (long)got, err);
    }
    if (rc == 0)
        rc = cz_audio_file_check(&f, err);
    cz_err why;
    if (rc == 0 && cz_an_finish(&an, NAN, out, &why))
        rc = cz_err_set(err, "%s: %.400s", path, why.msg);
    cz_an_end(&an);
    cz_audio_file_close(&f, NULL);
    return rc;
}

/* ---------------------------------------------------------------- output */

static const char *const cz_an_names[12] = {"C",  "C#", "D",  "D#", "E",  "F",
                                            "F#", "G",  "G#", "A",  "A#", "B"};

const char *cz_analysis_key_name(int key) {
    return cz_an_names[((key % 12) + 12) % 12];
}

void cz_analysis_add_genre(cz_track_features *f, const char *tag) {
    if (!tag || !*tag || f->n_genres >= CZ_TAGS_MAX)
        return;
    for (int i = 0; i < f->n_genres; i++)
        if (!strcmp(f->genres[i], tag))
            return;
    snprintf(f->genres[f->n_genres++], CZ_TAG_LEN, "%s", tag);
}

static double cz_an_round(double x, double unit) {
    return round(x / unit) * unit;
}

cJSON *cz_analysis_json(const cz_track_features *f) {
    cJSON *o = cJSON_CreateObject();
    char camelot[4], b64[4 * ((4 * CZ_EMBED_DIM + 2) / 3) + 1];
    unsigned char bytes[4 * CZ_EMBED_DIM];
    cz_camelot_code(f->key, f->mode, camelot);
    cz_track_embedding_bytes(f, bytes);
    EVP_EncodeBlock((unsigned char *)b64, bytes, sizeof bytes);
    cJSON_AddNumberToObject(o, "duration_s", cz_an_round(f->duration_s, 0.001));
    cJSON_AddNumberToObject(o, "tempo_bpm", cz_an_round(f->tempo_bpm, 0.01));
    cJSON_AddStringToObject(o, "key", cz_analysis_key_name(f->key));
    cJSON_AddNumberToObject(o, "key_index", f->key);
    cJSON_AddStringToObject(o, "mode", f->mode ? "major" : "minor");
    cJSON_AddStringToObject(o, "camelot", camelot);
    cJSON_AddNumberToObject(o, "energy", cz_an_round(f->energy, 0.001));
    cJSON_AddNumberToObject(o, "loudness_lufs", cz_an_round(f->loudness_lufs, 0.01));
    cJSON *m = cJSON_AddArrayToObject(o, "moods"), *g = cJSON_AddArrayToObject(o, "genres");
    for (int i = 0; i < f->n_moods; i++)
        cJSON_AddItemToArray(m, cJSON_CreateString(f->moods[i]));
    for (int i = 0; i < f->n_genres; i++)
        cJSON_AddItemToArray(g, cJSON_CreateString(f->genres[i]));
    cJSON_AddStringToObject(o, "embedding", b64);
    return o;
}
