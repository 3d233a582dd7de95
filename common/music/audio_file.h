/* The one streaming reader of audio files: libsndfile opened for reading,
 * frames read as interleaved float (integer files come back normalised to
 * [-1, 1)) a block at a time or into the caller's buffer, and errors said
 * with the file's name and libsndfile's reason. Analysis, fingerprints,
 * the mastering reader and the HTTP model's answers all read through it. */
#ifndef CZ_AUDIO_FILE_H
#define CZ_AUDIO_FILE_H

#include <stddef.h>

#include "common/err.h"

typedef struct cz_audio_file {
    void *sf;         /* the SNDFILE */
    const char *path; /* borrowed from the caller of open, for messages */
    int channels, rate;
    int format;       /* libsndfile's SF_FORMAT_* bits */
    long long frames; /* as the header says: may be absurd for a damaged file */
    float *block;     /* cz_audio_file_next's frames, block_frames of them at most */
    size_t block_frames;
} cz_audio_file;

/**
 * @brief Opens @p path for reading; cz_audio_file_next will read
 * @p block_frames frames at a time (0 when only cz_audio_file_read is
 * used). @p path must outlive @p f.
 * @returns 0, or -1 with @p err "cannot open audio file PATH: why".
 */
int cz_audio_file_open(cz_audio_file *f, const char *path, size_t block_frames, cz_err *err);

/**
 * @brief Reads up to @p frames frames into @p dst (frames * channels floats).
 * @returns the frames read: 0 at the end or when a read fails
 * (cz_audio_file_error tells which).
 */
size_t cz_audio_file_read(cz_audio_file *f, float *dst, size_t frames);

/**
 * @brief Reads the next block into f->block.
 * @returns the frames read: 0 at the end or when a read fails.
 */
size_t cz_audio_file_next(cz_audio_file *f);

/** @brief libsndfile's reason when a read failed, or NULL when none did. */
const char *cz_audio_file_error(const cz_audio_file *f);

/**
 * @brief Checks that every read so far succeeded.
 * @returns 0, or -1 with @p err "reading PATH failed: why".
 */
int cz_audio_file_check(const cz_audio_file *f, cz_err *err);

/**
 * @brief Closes @p f and frees its block; a zeroed or closed @p f is allowed.
 * @returns 0, or -1 with @p err "closing audio file PATH failed: why".
 */
int cz_audio_file_close(cz_audio_file *f, cz_err *err);

#endif
