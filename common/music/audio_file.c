/* The streaming audio reader: see audio_file.h. Reads always ask
 * libsndfile for float, whatever the file holds, so callers see one
 * sample type. */
#include "common/music/audio_file.h"

#include <sndfile.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"

int cz_audio_file_open(cz_audio_file *f, const char *path, size_t block_frames, cz_err *err) {
    memset(f, 0, sizeof *f);
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sf_open(path, SFM_READ, &info);
    if (!sf)
        return cz_err_set(err, "cannot open audio file %s: %s", path, sf_strerror(NULL));
    *f = (cz_audio_file){.sf = sf,
                         .path = path,
                         .channels = info.channels,
                         .rate = info.samplerate,
                         .format = info.format,
                         .frames = (long long)info.frames,
                         .block_frames = block_frames};
    return 0;
}

size_t cz_audio_file_read(cz_audio_file *f, float *dst, size_t frames) {
    sf_count_t got = sf_readf_float(f->sf, dst, (sf_count_t)frames);
    return got > 0 ? (size_t)got : 0;
}

/* The block is allocated on the first read, so a caller can refuse a
 * header (an absurd channel count) before any memory is asked for. */
size_t cz_audio_file_next(cz_audio_file *f) {
    if (f->channels <= 0 || !f->block_frames)
        return 0;
    if (!f->block)
        f->block = cz_malloc(f->block_frames * (size_t)f->channels * sizeof *f->block);
    return cz_audio_file_read(f, f->block, f->block_frames);
}

const char *cz_audio_file_error(const cz_audio_file *f) {
    return sf_error(f->sf) ? sf_strerror(f->sf) : NULL;
}

int cz_audio_file_check(const cz_audio_file *f, cz_err *err) {
    const char *why = cz_audio_file_error(f);
    return why ? cz_err_set(err, "reading %s failed: %s", f->path, why) : 0;
}

int cz_audio_file_close(cz_audio_file *f, cz_err *err) {
    int rc = f->sf ? sf_close(f->sf) : 0;
    free(f->block);
    const char *path = f->path;
    memset(f, 0, sizeof *f);
    return rc ? cz_err_set(err, "closing audio file %s failed: %s", path, sf_error_number(rc)) : 0;
}
