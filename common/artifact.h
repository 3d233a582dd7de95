/* The artifact store: a directory tree, <root>/<job id>/<attempt>/<name>.
 * Files are written to a temporary name, fsynced, renamed into place and the
 * directory fsynced, so a reader (or a crash) never sees half a file. Each
 * attempt writes its own folder, so a retried job never overwrites what an
 * earlier attempt's consumer may still be reading. URIs are file:// URLs;
 * another store (S3, say) would keep the same interface. */
#ifndef CZ_ARTIFACT_H
#define CZ_ARTIFACT_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "common/err.h"
#include "common/hash.h"

typedef struct cz_artifact_file {
    char path[1024]; /* final absolute path */
    char tmp[1040];  /* where to write before commit */
    char uri[1040];  /* file:// + path */
    char sha256[CZ_SHA256_HEX];
    long long bytes;
} cz_artifact_file;

/**
 * @brief Prepares @p f for artifact @p name of @p job_id / @p attempt under
 * @p root (made absolute), creating the folders.
 * @returns 0, or -1 with @p err filled.
 */
int cz_artifact_prepare(const char *root, const char *job_id, int attempt, const char *name,
                        cz_artifact_file *f, cz_err *err);

/**
 * @brief Creates the folder of @p job_id / @p attempt under @p root and
 * writes its absolute path to @p out.
 * @returns 0, or -1 with @p err filled.
 */
int cz_artifact_dir(const char *root, const char *job_id, int attempt, char *out, size_t n,
                    cz_err *err);

/**
 * @brief Prepares @p f for artifact @p name in the existing folder @p dir
 * (absolute), for writers that put several files in one folder.
 * @returns 0, or -1 with @p err filled.
 */
int cz_artifact_prepare_in(const char *dir, const char *name, cz_artifact_file *f, cz_err *err);

/**
 * @brief Makes @p f->tmp durable under its final name and fills sha256 and bytes.
 * @returns 0, or -1 with @p err filled (the temporary file is removed).
 */
int cz_artifact_commit(cz_artifact_file *f, cz_err *err);

/**
 * @brief The artifact as events carry it: kind, name, format, uri, sha256,
 * bytes and duration. @returns a new cJSON object the caller owns.
 */
cJSON *cz_artifact_json(const cz_artifact_file *f, const char *kind, const char *name,
                        const char *format, double duration_s);

/** @brief The local path of a file:// @p uri, or NULL if it is not one. */
const char *cz_artifact_uri_path(const char *uri);

#endif
