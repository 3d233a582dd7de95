/* The files a backend writes (cz_gen_result, declared in backend.h): added
 * under a temporary name while the model works, committed or removed by the
 * caller when the job ends. Apart from the registry (backend.c) because the
 * backends call these and the registry calls the backends: one file for
 * both would make each backend and the registry depend on the other. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "workers/models/backend.h"

cz_gen_file *cz_gen_result_add(cz_gen_result *out, const cz_gen_request *req, const char *kind,
                               const char *name, const char *format, const char *filename,
                               double duration_s, cz_err *err) {
    if (out->n_files == CZ_GEN_MAX_FILES) {
        cz_err_set(err, "a model may write at most %d files per job", CZ_GEN_MAX_FILES);
        return NULL;
    }
    cz_gen_file *f = &out->files[out->n_files];
    memset(f, 0, sizeof *f);
    if (cz_artifact_prepare_in(req->dir, filename, &f->file, err) != 0)
        return NULL;
    snprintf(f->kind, sizeof f->kind, "%s", kind);
    snprintf(f->name, sizeof f->name, "%s", name);
    snprintf(f->format, sizeof f->format, "%s", format);
    f->duration_s = duration_s;
    out->n_files++;
    return f;
}

cJSON *cz_gen_result_commit(cz_gen_result *r, cz_err *err) {
    cJSON *list = cJSON_CreateArray();
    for (int k = 0; k < r->n_files; k++) {
        cz_gen_file *f = &r->files[k];
        if (cz_artifact_commit(&f->file, err) != 0) {
            cJSON_Delete(list);
            return NULL;
        }
        f->file.tmp[0] = '\0'; // committed: nothing left to clean up
        cJSON_AddItemToArray(
            list, cz_artifact_json(&f->file, f->kind, f->name, f->format, f->duration_s));
    }
    return list;
}

void cz_gen_result_free(cz_gen_result *r) {
    for (int k = 0; k < r->n_files; k++)
        if (r->files[k].file.tmp[0])
            unlink(r->files[k].file.tmp);
    cJSON_Delete(r->chosen);
    memset(r, 0, sizeof *r);
}

int cz_gen_result_settle(cz_gen_result *out, int rc) {
    if (rc < 0 && !out->failure_class)
        out->failure_class = "internal";
    if (rc != 0) {
        for (int k = 0; k < out->n_files; k++)
            unlink(out->files[k].file.tmp);
        out->n_files = 0;
    }
    return rc;
}

void cz_gen_job_finish(cz_gen_job *job, int rc) {
    job->rc = cz_gen_result_settle(job->out, rc);
    if (job->done)
        job->done(job);
}
