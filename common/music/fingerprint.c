/* Fingerprints: see fingerprint.h.
 *
 * chromaprint takes 16-bit integer samples at any rate and channel count
 * and resamples them to its own 11025 Hz mono internally, so a master, its
 * MP3 and its Opus give nearly the same items. Float input is converted with
 * rounding and clipping (a float master never exceeds full scale; a decoded
 * lossy file may, by a hair). Files are streamed through libsndfile in
 * chunks, so importing a long file never holds it in memory.
 *
 * The score counts differing bits with popcount over the overlap of the two
 * sequences at the given alignment; it is what AcoustID calls the bit error
 * rate, turned round (1 - BER) so that higher means more alike. */
#include "common/music/fingerprint.h"

#include <chromaprint.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "common/music/audio_file.h"

#define CZ_FP_CHUNK_FRAMES 16384

double cz_fp_item_s(void) {
    ChromaprintContext *ctx = chromaprint_new(CHROMAPRINT_ALGORITHM_DEFAULT);
    double s = ctx ? chromaprint_get_item_duration_ms(ctx) / 1000.0 : 0.1238;
    chromaprint_free(ctx);
    return s;
}

void cz_fp_free(cz_fp *fp) {
    if (!fp)
        return;
    free(fp->v);
    memset(fp, 0, sizeof *fp);
}

/* Converts @p n float samples to 16-bit and feeds them. */
static int cz_fp_feed(ChromaprintContext *ctx, const float *s, size_t n, int16_t *buf) {
    for (size_t i = 0; i < n; i++) {
        float v = s[i] * 32767.0f;
        v = v > 32767.0f ? 32767.0f : v < -32768.0f ? -32768.0f : v;
        buf[i] = (int16_t)lrintf(v);
    }
    return chromaprint_feed(ctx, buf, (int)n) ? 0 : -1;
}

/* Collects the raw fingerprint of a finished context into @p out. */
static int cz_fp_collect(ChromaprintContext *ctx, cz_fp *out, cz_err *err) {
    uint32_t *raw = NULL;
    int size = 0;
    if (!chromaprint_finish(ctx) || !chromaprint_get_raw_fingerprint(ctx, &raw, &size))
        return cz_err_set(err, "chromaprint could not finish the fingerprint");
    out->v = cz_malloc((size > 0 ? (size_t)size : 1) * sizeof *out->v);
    if (size > 0)
        memcpy(out->v, raw, (size_t)size * sizeof *out->v);
    out->n = (size_t)size;
    chromaprint_dealloc(raw);
    return 0;
}

int cz_fp_compute(const float *samples, size_t frames, unsigned channels, unsigned rate, cz_fp *out,
                  cz_err *err) {
    if (!out)
        return cz_err_set(err, "fingerprint: no output given");
    memset(out, 0, sizeof *out);
    if (channels == 0 || rate == 0 || (frames > 0 && !samples))
        return cz_err_set(err, "fingerprint: empty or malformed audio");
    ChromaprintContext *ctx = chromaprint_new(CHROMAPRINT_ALGORITHM_DEFAULT);
    int16_t *buf = cz_malloc(CZ_FP_CHUNK_FRAMES * channels * sizeof *buf);
    int rc = 0;
    if (!ctx)
        rc = cz_err_set(err, "out of memory starting a fingerprint");
    else if (!chromaprint_start(ctx, (int)rate, (int)channels))
        rc = cz_err_set(err, "chromaprint refused %u channels at %u Hz", channels, rate);
    for (size_t done = 0; rc == 0 && done < frames; done += CZ_FP_CHUNK_FRAMES) {
        size_t n = frames - done < CZ_FP_CHUNK_FRAMES ? frames - done : CZ_FP_CHUNK_FRAMES;
        if (cz_fp_feed(ctx, samples + done * channels, n * channels, buf))
            rc = cz_err_set(err, "chromaprint failed at frame %zu", done);
    }
    if (rc == 0)
        rc = cz_fp_collect(ctx, out, err);
    free(buf);
    chromaprint_free(ctx);
    if (rc == 0)
        out->duration_s = (double)frames / rate;
    return rc;
}

int cz_fp_compute_file(const char *path, cz_fp *out, cz_err *err) {
    if (!path || !out)
        return cz_err_set(err, "fingerprint: no path or no output given");
    memset(out, 0, sizeof *out);
    cz_audio_file f;
    if (cz_audio_file_open(&f, path, CZ_FP_CHUNK_FRAMES, err))
        return -1;
    if (f.channels <= 0 || f.channels > 64 || f.rate <= 0) {
        cz_audio_file_close(&f, NULL);
        return cz_err_set(err, "audio file %s has an unusable header (%d channels, %d Hz)", path,
                          f.channels, f.rate);
    }
    size_t ch = (size_t)f.channels;
    ChromaprintContext *ctx = chromaprint_new(CHROMAPRINT_ALGORITHM_DEFAULT);
    int16_t *ibuf = cz_malloc(CZ_FP_CHUNK_FRAMES * ch * sizeof *ibuf);
    int rc = 0;
    size_t frames = 0;
    if (!ctx)
        rc = cz_err_set(err, "out of memory fingerprinting %s", path);
    else if (!chromaprint_start(ctx, f.rate, f.channels))
        rc = cz_err_set(err, "chromaprint refused %s (%d channels at %d Hz)", path, f.channels,
                        f.rate);
    while (rc == 0) {
        size_t got = cz_audio_file_next(&f);
        if (got == 0)
            break;
        frames += got;
        if (cz_fp_feed(ctx, f.block, got * ch, ibuf))
            rc = cz_err_set(err, "chromaprint failed on %s", path);
    }
    if (rc == 0)
        rc = cz_audio_file_check(&f, err);
    if (rc == 0 && frames == 0)
        rc = cz_err_set(err, "audio file %s has no audio", path);
    if (rc == 0)
        rc = cz_fp_collect(ctx, out, err);
    if (rc == 0)
        out->duration_s = (double)frames / f.rate;
    free(ibuf);
    chromaprint_free(ctx);
    cz_audio_file_close(&f, NULL);
    return rc;
}
