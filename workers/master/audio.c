/* In-memory audio, its files and its loudness. A cz_audio is one interleaved
 * float buffer; everything here either fills one from a file, writes one to a
 * file, or measures one.
 *
 * Files go through libsndfile. Reading always asks for float, so integer files
 * come back normalised to [-1, 1). Writing picks the container and sample
 * format from cz_audio_format; for the integer formats we turn on libsndfile's
 * clipping, because its default float-to-int conversion wraps an over-full
 * sample around to the opposite sign, which is a loud click, where a clip is a
 * barely audible flat top. A write that fails removes the partial file, so the
 * artifact store never picks up half a master.
 *
 * Loudness is measured by libebur128 (ITU-R BS.1770-4 / EBU R 128): the
 * samples are fed in chunks so the state's internal buffers stay small, then
 * integrated loudness, loudness range, and the per-channel true and sample
 * peaks are read back. Peaks are reported as the maximum over channels, in dB;
 * silence gives -HUGE_VAL for both loudness and peaks, never an error. */
#include "workers/master/audio.h"

#include <ebur128.h>
#include <math.h>
#include <pthread.h>
#include <sndfile.h>
#include <soxr.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/music/audio_file.h"

/* Frames handed to libsndfile or libebur128 per call: large enough that the
 * per-call overhead vanishes, small enough to keep libebur128's scratch small. */
#define CZ_AUDIO_CHUNK_FRAMES 65536

/* True peaks are measured on the loud parts only (cz_peak_spans), in blocks
 * of this many frames: more than libebur128's interpolator remembers (13
 * frames at 4x, 25 at 2x). The loudness pass over every frame costs about
 * this much per frame against the true-peak pass (measured on music), which
 * is how work is shared between two threads. */
#define CZ_AUDIO_TP_BLOCK 64
#define CZ_AUDIO_LOUDNESS_COST 0.35

/* libsndfile's Opus compression level (0.0 is its highest bit rate): about
 * 190 kbit/s for stereo music, transparent for nearly all listeners. */
#define CZ_AUDIO_OPUS_LEVEL 0.65

void cz_audio_free(cz_audio *a) {
    if (!a)
        return;
    free(a->samples);
    memset(a, 0, sizeof *a);
}

/* Checks the shape of @p a before anything reads its samples. */
static int cz_audio_check(const cz_audio *a, const char *what, cz_err *err) {
    if (!a)
        return cz_err_set(err, "%s: no audio given", what);
    if (a->channels == 0 || a->sample_rate == 0)
        return cz_err_set(err, "%s: audio has %u channels at %u Hz; both must be positive", what,
                          a->channels, a->sample_rate);
    if (a->frames > 0 && !a->samples)
        return cz_err_set(err, "%s: audio claims %zu frames but has no samples", what, a->frames);
    if (a->frames > SIZE_MAX / sizeof(float) / a->channels)
        return cz_err_set(err, "%s: %zu frames of %u channels do not fit in memory", what,
                          a->frames, a->channels);
    return 0;
}

/* ---------------------------------------------------------------- reading */

/* What a file may claim before it is read whole: an hour (jobs last at most
 * ten minutes), eight channels, 384 kHz. */
#define CZ_AUDIO_MAX_SECONDS 3600
#define CZ_AUDIO_MAX_CHANNELS 8
#define CZ_AUDIO_MAX_RATE 384000

int cz_audio_read(const char *path, cz_audio *out, cz_err *err) {
    if (!path || !out)
        return cz_err_set(err, "audio read: no path or no output given");
    memset(out, 0, sizeof *out);

    cz_audio_file f;
    if (cz_audio_file_open(&f, path, 0, err))
        return -1;

    // A pipe or a damaged header can report an unknown or absurd length. The
    // bound comes before the allocation: running out of memory ends the
    // process (common/mem.h), a file that merely claims too much fails.
    if (f.channels <= 0 || f.channels > CZ_AUDIO_MAX_CHANNELS || f.rate <= 0 ||
        f.rate > CZ_AUDIO_MAX_RATE || f.frames < 0 ||
        f.frames > (long long)f.rate * CZ_AUDIO_MAX_SECONDS) {
        cz_audio_file_close(&f, NULL);
        return cz_err_set(err,
                          "audio file %s has an unusable header (%d channels, %d Hz, %lld "
                          "frames): re-encode it as WAV or FLAC",
                          path, f.channels, f.rate, f.frames);
    }

    size_t frames = (size_t)f.frames;
    size_t channels = (size_t)f.channels;
    float *buf = cz_malloc(frames * channels * sizeof *buf);

    size_t got = 0;
    while (got < frames) {
        size_t want = frames - got;
        if (want > CZ_AUDIO_CHUNK_FRAMES)
            want = CZ_AUDIO_CHUNK_FRAMES;
        size_t n = cz_audio_file_read(&f, buf + got * channels, want);
        if (n == 0)
            break;
        got += n;
    }
    if (got < frames) {
        const char *why = cz_audio_file_error(&f);
        cz_err_set(err, "audio file %s ended after %zu of %zu frames (%s): it may be truncated",
                   path, got, frames, why ? why : "end of data");
        cz_audio_file_close(&f, NULL);
        free(buf);
        return -1;
    }
    unsigned rate = (unsigned)f.rate;
    if (cz_audio_file_close(&f, err)) {
        free(buf);
        return -1;
    }

    out->samples = buf;
    out->frames = frames;
    out->channels = (unsigned)channels;
    out->sample_rate = rate;
    return 0;
}

/* ---------------------------------------------------------------- writing */

static int cz_audio_sf_format(cz_audio_format fmt, int *sf_format) {
    switch (fmt) {
    case CZ_AUDIO_MP3:
        *sf_format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III;
        return 0;
    case CZ_AUDIO_OPUS:
        *sf_format = SF_FORMAT_OGG | SF_FORMAT_OPUS;
        return 0;
    case CZ_AUDIO_WAV_FLOAT:
        *sf_format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
        return 0;
    case CZ_AUDIO_WAV_24:
        *sf_format = SF_FORMAT_WAV | SF_FORMAT_PCM_24;
        return 0;
    case CZ_AUDIO_FLAC_24:
        *sf_format = SF_FORMAT_FLAC | SF_FORMAT_PCM_24;
        return 0;
    }
    return -1;
}

/* Writes every frame of @p a to the open file @p f. */
static int cz_audio_write_frames(SNDFILE *f, const char *path, const cz_audio *a, cz_err *err) {
    size_t done = 0;
    while (done < a->frames) {
        size_t n = a->frames - done;
        if (n > CZ_AUDIO_CHUNK_FRAMES)
            n = CZ_AUDIO_CHUNK_FRAMES;
        sf_count_t w = sf_writef_float(f, a->samples + done * a->channels, (sf_count_t)n);
        if (w != (sf_count_t)n)
            return cz_err_set(err,
                              "writing audio to %s failed after %zu frames: %s (check free "
                              "disk space)",
                              path, done, sf_strerror(f));
        done += n;
    }
    return 0;
}

/* Encoder settings that must be made before the first frame is written. */
static int cz_audio_configure(SNDFILE *f, const char *path, cz_audio_format fmt, cz_err *err) {
    // Float WAV keeps overs as they are; only integer formats need the clip.
    if ((fmt == CZ_AUDIO_WAV_24 || fmt == CZ_AUDIO_FLAC_24) &&
        sf_command(f, SFC_SET_CLIPPING, NULL, SF_TRUE) != SF_TRUE)
        return cz_err_set(err, "cannot enable clipping for %s: libsndfile refused", path);
    if (fmt == CZ_AUDIO_MP3 || fmt == CZ_AUDIO_OPUS) {
        int mode = SF_BITRATE_MODE_CONSTANT;
        // libsndfile maps the level linearly onto the codec's bit rates:
        // for MPEG-1 Layer III 0.0 is 320 kbit/s; for stereo Opus 0.65
        // comes out at about 190 kbit/s.
        double level = fmt == CZ_AUDIO_MP3 ? 0.0 : CZ_AUDIO_OPUS_LEVEL;
        // The level first: libsndfile's LAME glue re-applies it when the
        // mode changes, and refuses a mode while no level is set.
        // Opus stays in its default (constrained variable) mode.
        if (sf_command(f, SFC_SET_COMPRESSION_LEVEL, &level, sizeof level) != SF_TRUE ||
            (fmt == CZ_AUDIO_MP3 &&
             sf_command(f, SFC_SET_BITRATE_MODE, &mode, sizeof mode) != SF_TRUE))
            return cz_err_set(err, "cannot set the bit rate for %s: %s", path, sf_strerror(f));
    }
    return 0;
}

int cz_audio_write(const char *path, const cz_audio *a, cz_audio_format fmt, cz_err *err) {
    if (!path)
        return cz_err_set(err, "audio write: no path given");
    if (cz_audio_check(a, "audio write", err) != 0)
        return -1;

    SF_INFO info;
    memset(&info, 0, sizeof info);
    if (cz_audio_sf_format(fmt, &info.format) != 0)
        return cz_err_set(err, "audio write: unknown format %d for %s", (int)fmt, path);
    info.channels = (int)a->channels;
    info.samplerate = (int)a->sample_rate;
    if (!sf_format_check(&info))
        return cz_err_set(err,
                          "cannot write %s: %u channels at %u Hz is not valid for this "
                          "format (FLAC allows at most 8 channels, MP3 at most 2 at 8 to "
                          "48 kHz, Opus 8, 12, 16, 24 or 48 kHz)",
                          path, a->channels, a->sample_rate);

    SNDFILE *f = sf_open(path, SFM_WRITE, &info);
    if (!f)
        return cz_err_set(err, "cannot create audio file %s: %s", path, sf_strerror(NULL));

    int rc = cz_audio_configure(f, path, fmt, err);
    if (rc == 0)
        rc = cz_audio_write_frames(f, path, a, err);

    int crc = sf_close(f);
    if (rc == 0 && crc != 0)
        rc = cz_err_set(err, "finishing audio file %s failed: %s (check free disk space)", path,
                        sf_error_number(crc));
    if (rc != 0)
        remove(path); // never leave a half-written file behind
    return rc;
}

/* ---------------------------------------------------------------- resampling */

int cz_audio_resample(cz_audio *a, unsigned rate, cz_err *err) {
    if (cz_audio_check(a, "resampling", err) != 0)
        return -1;
    if (rate == 0)
        return cz_err_set(err, "resampling: target rate must be positive");
    if (a->sample_rate == rate)
        return 0;
    // Enough room for every output frame plus rounding.
    size_t cap = (size_t)((double)a->frames * rate / a->sample_rate) + 16;
    float *out = cz_malloc(cap * a->channels * sizeof *out);
    soxr_io_spec_t io = soxr_io_spec(SOXR_FLOAT32_I, SOXR_FLOAT32_I);
    soxr_quality_spec_t q = soxr_quality_spec(SOXR_VHQ, SOXR_LINEAR_PHASE);
    size_t done = 0;
    soxr_error_t e = soxr_oneshot(a->sample_rate, rate, a->channels, a->samples, a->frames, NULL,
                                  out, cap, &done, &io, &q, NULL);
    if (e) {
        free(out);
        return cz_err_set(err, "resampling %u Hz to %u Hz failed: %s", a->sample_rate, rate, e);
    }
    free(a->samples);
    a->samples = out;
    a->frames = done;
    a->sample_rate = rate;
    return 0;
}

/* ---------------------------------------------------------------- loudness */

static double cz_loudness_db(double linear) {
    return linear > 0.0 ? 20.0 * log10(linear) : -HUGE_VAL;
}

/* A run of frames [from, to) handed to one libebur128 state. */
typedef struct cz_span {
    size_t from, to;
} cz_span;

/* Feeds frames [s->from, s->to) of @p a to @p st. */
static int cz_loudness_feed(ebur128_state *st, const cz_audio *a, const cz_span *s, cz_err *err) {
    for (size_t done = s->from; done < s->to;) {
        size_t n = s->to - done;
        if (n > CZ_AUDIO_CHUNK_FRAMES)
            n = CZ_AUDIO_CHUNK_FRAMES;
        int rc = ebur128_add_frames_float(st, a->samples + done * a->channels, n);
        if (rc != EBUR128_SUCCESS)
            return cz_err_set(err, "loudness measurement failed at frame %zu (libebur128 error %d)",
                              done, rc);
        done += n;
    }
    return 0;
}

/* Reads the loudness and range out of a fed @p st into @p out. */
static int cz_loudness_collect(ebur128_state *st, cz_loudness *out, cz_err *err) {
    if (ebur128_loudness_global(st, &out->integrated_lufs) != EBUR128_SUCCESS ||
        ebur128_loudness_range(st, &out->lra_lu) != EBUR128_SUCCESS)
        return cz_err_set(err, "loudness measurement failed reading integrated loudness / range");
    return 0;
}

/* One libebur128 state fed the spans in order, run on its own thread: the
 * whole signal for loudness and range, or the loud parts for the peaks. */
typedef struct cz_meter {
    const cz_audio *a;
    const cz_span *spans;
    size_t count;
    int mode;
    cz_loudness out;
    double tp; /* linear, over channels */
    int rc;
    cz_err err;
} cz_meter;

static void *cz_meter_run(void *arg) {
    cz_meter *m = arg;
    const cz_audio *a = m->a;
    if (m->count == 0)
        return NULL;
    ebur128_state *st = ebur128_init(a->channels, a->sample_rate, m->mode);
    if (!st) {
        m->rc = cz_err_set(&m->err,
                           "loudness measurement: libebur128 cannot handle %u channels at "
                           "%u Hz (or is out of memory)",
                           a->channels, a->sample_rate);
        return NULL;
    }
    for (size_t i = 0; m->rc == 0 && i < m->count; i++)
        m->rc = cz_loudness_feed(st, a, &m->spans[i], &m->err);
    if (m->rc == 0 && (m->mode & EBUR128_MODE_I) == EBUR128_MODE_I)
        m->rc = cz_loudness_collect(st, &m->out, &m->err);
    for (unsigned c = 0;
         m->rc == 0 && (m->mode & EBUR128_MODE_TRUE_PEAK) == EBUR128_MODE_TRUE_PEAK &&
         c < a->channels;
         c++) {
        double t;
        if (ebur128_true_peak(st, c, &t) != EBUR128_SUCCESS)
            m->rc = cz_err_set(&m->err, "loudness measurement failed reading channel %u's peak", c);
        m->tp = fmax(m->tp, t);
    }
    ebur128_destroy(&st);
    return NULL;
}

/* A bound on the gain of libebur128's true-peak interpolator at @p rate:
 * the largest sum of |coefficients| over its phases. Below 96 kHz it
 * oversamples 4x with a 49-tap windowed sinc (worst phase 1.86), up to
 * 192 kHz 2x with the same length (2.31); above, the true peak is the
 * sample peak. */
static float cz_tp_gain(unsigned rate) {
    return rate < 96000 ? 2.0f : rate < 192000 ? 2.5f : 1.0f;
}

/* The parts of @p a whose true peak can matter.
 *
 * libebur128's true peak is the largest magnitude its interpolator puts
 * out. An output is a sum of the last few input samples (13 at 4x, 25 at
 * 2x) times the coefficients of one phase, so it is at most cz_tp_gain()
 * times the largest of those inputs; and the true peak is never below the
 * sample peak P. So outputs computed only from samples under
 * P / cz_tp_gain() can never be the maximum, and the interpolator need
 * only see the blocks holding a sample at or over that bound ("hot"), each
 * with the block before it (the history its outputs need) and after it (the
 * outputs that still reach back into it). Everything else is skipped; the
 * result is the same number the whole signal would give.
 *
 * Spans made of such blocks begin and end with a quiet block (unless they
 * touch an end of the signal), so one state can be fed span after span:
 * outputs that straddle a gap mix only quiet samples, and stay under P.
 *
 * Writes the spans in order to @p spans (room for blocks / 2 + 2) and
 * returns their count; @p quiet gets, per block, whether it is under the
 * bound, and @p sample_peak the largest sample magnitude. */
static size_t cz_peak_spans(const cz_audio *a, cz_span *spans, bool *quiet, float *sample_peak) {
    const size_t block = CZ_AUDIO_TP_BLOCK, frames = a->frames;
    size_t blocks = (frames + block - 1) / block;
    float *top = cz_malloc(blocks * sizeof *top + 1), peak = 0.0f;
    for (size_t b = 0; b < blocks; b++) {
        const float *x = a->samples + b * block * a->channels;
        size_t n = (b + 1 == blocks ? frames - b * block : block) * a->channels;
        float m = 0.0f;
        for (size_t i = 0; i < n; i++) {
            float v = fabsf(x[i]);
            m = v > m ? v : m; // fmaxf would be a library call here
        }
        top[b] = m;
        peak = m > peak ? m : peak;
    }
    *sample_peak = peak;
    size_t count = 0;
    float bound = peak / cz_tp_gain(a->sample_rate);
    for (size_t b = 0; b < blocks; b++)
        quiet[b] = top[b] < bound;
    for (size_t b = 0; peak > 0.0f && b < blocks; b++) {
        bool needed = !quiet[b] || (b > 0 && !quiet[b - 1]) || (b + 1 < blocks && !quiet[b + 1]);
        if (!needed)
            continue;
        if (count > 0 && spans[count - 1].to == b * block)
            spans[count - 1].to = (b + 1) * block;
        else
            spans[count++] = (cz_span){b * block, (b + 1) * block};
    }
    if (count > 0 && spans[count - 1].to > frames)
        spans[count - 1].to = frames;
    free(top);
    return count;
}

/* Splits the peak spans between two meters so that both finish together:
 * the first takes only peaks, the second the whole signal's loudness too.
 * A split inside a span falls on a quiet block that both halves keep (the
 * first as its last block, the second as its first), so neither half's
 * edge can produce a false peak; the span is then cut in two, one more in
 * @p spans (which has room for it). @returns how many spans, from the
 * start, the first meter takes. */
static size_t cz_peak_share(cz_span *spans, size_t *count, const bool *quiet, size_t frames) {
    size_t total = 0;
    for (size_t i = 0; i < *count; i++)
        total += spans[i].to - spans[i].from;
    double want = (total + CZ_AUDIO_LOUDNESS_COST * (double)frames) / 2.0;
    size_t done = 0, i = 0;
    for (; i < *count && done + (spans[i].to - spans[i].from) <= want; i++)
        done += spans[i].to - spans[i].from;
    if (i == *count)
        return i; // the loudness alone outweighs every peak
    // Span i straddles the balance point: cut it at the quiet block nearest.
    const size_t block = CZ_AUDIO_TP_BLOCK;
    size_t first = spans[i].from / block, last = (spans[i].to - 1) / block;
    size_t at = (spans[i].from + (size_t)(want - done)) / block, cut = 0;
    for (size_t d = 0; !cut && (at + d < last || at > first + d); d++) {
        if (at + d < last && at + d > first && quiet[at + d])
            cut = at + d;
        else if (at > first + d && at - d < last && quiet[at - d])
            cut = at - d;
    }
    if (!cut)
        return i; // loud throughout: it goes whole to the second meter
    memmove(spans + i + 2, spans + i + 1, (*count - i - 1) * sizeof *spans);
    spans[i + 1] = (cz_span){cut * block, spans[i].to};
    spans[i].to = (cut + 1) * block;
    (*count)++;
    return i + 1;
}

int cz_loudness_measure(const cz_audio *a, cz_loudness *out, cz_err *err) {
    if (!out)
        return cz_err_set(err, "loudness measurement: no output given");
    if (cz_audio_check(a, "loudness measurement", err) != 0)
        return -1;
    memset(out, 0, sizeof *out);

    // Loudness and range need every frame in one state; the true peak, the
    // costly part, needs only the loud parts (cz_peak_spans), which are
    // shared between this thread, after the loudness, and a second one.
    size_t blocks = (a->frames + CZ_AUDIO_TP_BLOCK - 1) / CZ_AUDIO_TP_BLOCK;
    cz_span *spans = cz_malloc((blocks / 2 + 3) * sizeof *spans);
    bool *quiet = cz_malloc(blocks + 1);
    float sp = 0.0f;
    size_t count = cz_peak_spans(a, spans, quiet, &sp);
    size_t head_count = cz_peak_share(spans, &count, quiet, a->frames);
    free(quiet);
    cz_span all = {0, a->frames};
    cz_meter whole = {.a = a, .spans = &all, .count = 1, .mode = EBUR128_MODE_I | EBUR128_MODE_LRA};
    cz_meter head = {.a = a, .spans = spans, .count = head_count, .mode = EBUR128_MODE_TRUE_PEAK};
    cz_meter tail = {.a = a,
                     .spans = spans + head_count,
                     .count = count - head_count,
                     .mode = EBUR128_MODE_TRUE_PEAK};
    pthread_t thread;
    bool threaded = pthread_create(&thread, NULL, cz_meter_run, &head) == 0;
    cz_meter_run(&whole);
    cz_meter_run(&tail);
    if (threaded)
        pthread_join(thread, NULL);
    else
        cz_meter_run(&head);
    free(spans);
    cz_meter *failed = whole.rc ? &whole : head.rc ? &head : tail.rc ? &tail : NULL;
    if (failed)
        return cz_err_set(err, "%s", failed->err.msg);
    *out = whole.out;
    // The true peak is never below the sample peak (nor is libebur128's).
    out->true_peak_dbtp = cz_loudness_db(fmax(fmax(head.tp, tail.tp), sp));
    out->sample_peak_dbfs = cz_loudness_db(sp);
    out->duration_s = (double)a->frames / a->sample_rate;
    return 0;
}
