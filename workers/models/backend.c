/* The backend registry: see backend.h. The files backends write are
 * result.c's, so that the backends call it and the registry calls them,
 * never round in a loop.
 *
 * The registry is a fixed list of backend descriptions (read-only data);
 * cz_backends_open() prepares each one and keeps its state beside it. A
 * backend that cannot be prepared stops the worker with its message, since
 * a worker that silently lacks a model would fail every job sent to it. */
#include "workers/models/backend.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/mem.h"
#include "workers/models/composer.h"
#include "workers/models/http.h"
#include "workers/models/http2.h"
#include "workers/models/neural.h"

static const cz_backend *const cz_registered[] = {&cz_composer_backend, &cz_neural_backend,
                                                  &cz_http_backend, &cz_http2_backend};
#define CZ_N_BACKENDS (sizeof cz_registered / sizeof cz_registered[0])

struct cz_backends {
    cz_backend_env env;
    void *state[CZ_N_BACKENDS];
};

cz_backends *cz_backends_open(const cz_config *cfg, cz_err *err) {
    cz_backends *b = cz_calloc(1, sizeof *b);
    b->env.cfg = cfg;
    // The SoundFont is loaded once here and serves every backend and job.
    if (!(b->env.renderer = cz_render_open(cfg->soundfont, CZ_GEN_SAMPLE_RATE, err))) {
        free(b);
        return NULL;
    }
    for (size_t i = 0; i < CZ_N_BACKENDS; i++) {
        cz_err e;
        if (!(b->state[i] = cz_registered[i]->prepare(&b->env, &e))) {
            // Named once: messages of a backend's own code may name it already.
            const char *id = cz_registered[i]->id;
            size_t n = strlen(id);
            bool named = !strncmp(e.msg, id, n) && e.msg[n] == ':';
            cz_err_set(err, "%s%s%s", named ? "" : id, named ? "" : ": ", e.msg);
            cz_backends_close(b);
            return NULL;
        }
    }
    return b;
}

static int cz_backends_index(const char *id) {
    for (size_t i = 0; id && i < CZ_N_BACKENDS; i++)
        if (!strcmp(cz_registered[i]->id, id))
            return (int)i;
    return -1;
}

const cz_backend *cz_backends_find(const cz_backends *b, const char *id) {
    (void)b;
    int i = cz_backends_index(id);
    return i < 0 ? NULL : cz_registered[i];
}

bool cz_backends_batches(const cz_backends *b, const char *model) {
    (void)b;
    int i = cz_backends_index(model);
    return i >= 0 && cz_registered[i]->generate_batch;
}

int cz_backends_generate(cz_backends *b, const cz_gen_request *req, const cz_gen_hooks *hooks,
                         cz_gen_result *out, cz_err *err) {
    memset(out, 0, sizeof *out);
    int i = cz_backends_index(req->model);
    if (i < 0) {
        out->failure_class = "model_error";
        return cz_err_set(err,
                          "model %s is not served by this worker (it has composer@1, neural@1, "
                          "http@1, http@2)",
                          req->model ? req->model : "(none)");
    }
    return cz_gen_result_settle(out, cz_registered[i]->generate(b->state[i], req, hooks, out, err));
}

void cz_backends_generate_batch(cz_backends *b, cz_gen_job *jobs, int n) {
    int i = n > 0 ? cz_backends_index(jobs[0].req->model) : -1;
    for (int k = 0; k < n; k++)
        memset(jobs[k].out, 0, sizeof *jobs[k].out);
    if (i < 0 || !cz_registered[i]->generate_batch) {
        for (int k = 0; k < n; k++)
            cz_gen_job_finish(&jobs[k], cz_backends_generate(b, jobs[k].req, jobs[k].hooks,
                                                             jobs[k].out, &jobs[k].err));
        return;
    }
    cz_registered[i]->generate_batch(b->state[i], jobs, n);
}

void cz_backends_close(cz_backends *b) {
    if (!b)
        return;
    for (size_t i = 0; i < CZ_N_BACKENDS; i++)
        if (b->state[i])
            cz_registered[i]->release(b->state[i]);
    cz_render_close(b->env.renderer);
    free(b);
}
