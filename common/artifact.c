/* Local artifact store: see artifact.h. */
#include "common/artifact.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int mkdirs(char *path, cz_err *err) {
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int rc = mkdir(path, 0755);
        *p = '/';
        if (rc && errno != EEXIST)
            return cz_err_set(err, "cannot create %s: %s", path, strerror(errno));
    }
    if (mkdir(path, 0755) && errno != EEXIST)
        return cz_err_set(err, "cannot create %s: %s", path, strerror(errno));
    return 0;
}

static int fsync_path(const char *path, int flags) {
    int fd = open(path, flags);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int cz_artifact_dir(const char *root, const char *job_id, int attempt, char *out, size_t n,
                    cz_err *err) {
    char abs_root[PATH_MAX];
    if (mkdir(root, 0755) && errno != EEXIST)
        return cz_err_set(err, "cannot create artifact store %s: %s", root, strerror(errno));
    if (!realpath(root, abs_root))
        return cz_err_set(err, "artifact store %s: %s", root, strerror(errno));
    int len = snprintf(out, n, "%s/%s/%d", abs_root, job_id, attempt);
    if (len < 0 || (size_t)len >= n)
        return cz_err_set(err, "artifact path too long under %s", abs_root);
    return mkdirs(out, err);
}

int cz_artifact_prepare_in(const char *dir, const char *name, cz_artifact_file *f, cz_err *err) {
    memset(f, 0, sizeof *f);
    if ((size_t)snprintf(f->path, sizeof f->path, "%s/%s", dir, name) >= sizeof f->path ||
        (size_t)snprintf(f->tmp, sizeof f->tmp, "%s.tmp%ld", f->path, (long)getpid()) >=
            sizeof f->tmp ||
        (size_t)snprintf(f->uri, sizeof f->uri, "file://%s", f->path) >= sizeof f->uri)
        return cz_err_set(err, "artifact path too long under %s", dir);
    return 0;
}

int cz_artifact_prepare(const char *root, const char *job_id, int attempt, const char *name,
                        cz_artifact_file *f, cz_err *err) {
    char dir[1024];
    memset(f, 0, sizeof *f);
    if (cz_artifact_dir(root, job_id, attempt, dir, sizeof dir, err))
        return -1;
    return cz_artifact_prepare_in(dir, name, f, err);
}

int cz_artifact_commit(cz_artifact_file *f, cz_err *err) {
    if (fsync_path(f->tmp, O_RDONLY)) {
        cz_err_set(err, "cannot fsync %s: %s", f->tmp, strerror(errno));
        unlink(f->tmp);
        return -1;
    }
    if (cz_sha256_file(f->tmp, f->sha256, &f->bytes, err)) {
        unlink(f->tmp);
        return -1;
    }
    if (rename(f->tmp, f->path)) {
        cz_err_set(err, "cannot rename %s: %s", f->tmp, strerror(errno));
        unlink(f->tmp);
        return -1;
    }
    /* The rename is durable only once its directory is. */
    char dir[sizeof f->path];
    memcpy(dir, f->path, sizeof dir);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    if (fsync_path(dir, O_RDONLY | O_DIRECTORY))
        return cz_err_set(err, "cannot fsync %s: %s", dir, strerror(errno));
    return 0;
}

cJSON *cz_artifact_json(const cz_artifact_file *f, const char *kind, const char *name,
                        const char *format, double duration_s) {
    cJSON *a = cJSON_CreateObject();
    cJSON_AddStringToObject(a, "kind", kind);
    cJSON_AddStringToObject(a, "name", name);
    cJSON_AddStringToObject(a, "format", format);
    cJSON_AddStringToObject(a, "uri", f->uri);
    cJSON_AddStringToObject(a, "sha256", f->sha256);
    cJSON_AddNumberToObject(a, "bytes", (double)f->bytes);
    cJSON_AddNumberToObject(a, "duration_s", duration_s);
    return a;
}

const char *cz_artifact_uri_path(const char *uri) {
    return (uri && !strncmp(uri, "file://", 7)) ? uri + 7 : NULL;
}
