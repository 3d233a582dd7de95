/* Model backends: the one interface every model of the inference pool
 * implements, and the registry that finds one by "name@version".
 *
 * A backend is prepared once per worker process (load a SoundFont, read its
 * configuration), then generates any number of jobs, one at a time, and is
 * released when the worker stops. generate() writes its files (the mix,
 * and whatever else it makes: MIDI, stems) into a folder the caller gives
 * it, each through a cz_artifact_file's temporary name; the caller commits
 * them (fsync, rename, sha256) only when the whole job succeeded, so a
 * failed or canceled job leaves nothing behind.
 *
 * The backend calls hooks->progress at least once per second of work and
 * hooks->canceled between steps; either one saying stop makes generate()
 * return 1 promptly. A failure names its class (model_error, timeout,
 * backend_unavailable, internal) so the scheduler can decide on a retry.
 *
 * The version is part of the name: a backend whose output changes for the
 * same request and seed gets a new version, so "same request, same seed,
 * same model@version" always means the same audio. */
#ifndef CZ_BACKEND_H
#define CZ_BACKEND_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/artifact.h"
#include "common/config.h"
#include "common/music/prompt.h"
#include "workers/composer/render.h"

#define CZ_GEN_MAX_FILES 12
#define CZ_GEN_SAMPLE_RATE 48000

/** Callbacks a backend calls while it works. */
typedef struct cz_gen_hooks {
    int (*progress)(void *user, double fraction); /* non-zero: stop */
    bool (*canceled)(void *user);                 /* true: stop */
    /** After a stop: true when the worker is stopping (the job will be done
     * again elsewhere), false when the job itself was canceled. A backend
     * whose work outlives it (http@2's predictions) leaves it running for
     * the next worker in the first case and cancels it in the second. May
     * be NULL (then a stop is a cancel). */
    bool (*stopping)(void *user);
    void *user;
} cz_gen_hooks;

/** One job for a backend. */
typedef struct cz_gen_request {
    const char *job_id;
    int attempt;
    const char *traceparent;     /* W3C trace context to pass on, may be NULL */
    const char *model;           /* "composer@1" */
    const cJSON *request;        /* the canonical request */
    const cz_controls *controls; /* the request's controls */
    double duration_s;
    uint64_t seed;
    bool stems;      /* keep one file per instrument group */
    const char *dir; /* existing folder for the files */
} cz_gen_request;

/** One file a backend wrote, as an artifact. */
typedef struct cz_gen_file {
    char kind[16]; /* raw, midi, stem */
    char name[32]; /* mix, score, drums... */
    char format[8];
    double duration_s;
    cz_artifact_file file;
} cz_gen_file;

/** What a backend made. */
typedef struct cz_gen_result {
    cz_gen_file files[CZ_GEN_MAX_FILES];
    int n_files;
    cJSON *chosen;             /* what the model decided (tempo, key...), owned; may be NULL */
    const char *failure_class; /* set on error */
} cz_gen_result;

/** What every backend of a process shares: its configuration, and one
 * FluidSynth renderer with the SoundFont loaded once (backends that render
 * scores use it; jobs run one at a time, so they never use it at once). */
typedef struct cz_backend_env {
    const cz_config *cfg;
    cz_renderer *renderer;
} cz_backend_env;

/** One job of a batch: its request, its hooks, and what becomes of it. */
typedef struct cz_gen_job {
    const cz_gen_request *req;
    const cz_gen_hooks *hooks;
    cz_gen_result *out;
    cz_err err;
    int rc; /* 0; 1 canceled; -1 failed (err, out->failure_class) */
    /** Called once the job is over (cz_gen_job_finish), before the batch is;
     * may be NULL. */
    void (*done)(struct cz_gen_job *job);
    void *user;
} cz_gen_job;

/** A model. */
typedef struct cz_backend {
    const char *id; /* "name@version" */
    /** @brief Prepares the backend for this process. @returns its state, or NULL with @p err. */
    void *(*prepare)(const cz_backend_env *env, cz_err *err);
    /** @brief Generates one job. @returns 0; 1 canceled; -1 with @p err and out->failure_class. */
    int (*generate)(void *state, const cz_gen_request *req, const cz_gen_hooks *hooks,
                    cz_gen_result *out, cz_err *err);
    /**
     * @brief Generates @p n jobs together (dynamic batching), each finished
     * on its own: one job's failure or cancel leaves the others going. The
     * backend calls cz_gen_job_finish() for each job as soon as it is over.
     * NULL for a backend that takes one job at a time.
     */
    void (*generate_batch)(void *state, cz_gen_job *jobs, int n);
    /** @brief Releases what prepare() made; NULL-safe. */
    void (*release)(void *state);
} cz_backend;

typedef struct cz_backends cz_backends;

/**
 * @brief Prepares every registered backend (composer@1, neural@1, http@1, http@2).
 * @returns the registry (free with cz_backends_close), or NULL with @p err
 * filled when a backend cannot start (a missing SoundFont, say).
 */
cz_backends *cz_backends_open(const cz_config *cfg, cz_err *err);

/** @brief The backend registered as @p id, or NULL. */
const cz_backend *cz_backends_find(const cz_backends *b, const char *id);

/** @brief True when @p model's backend decodes many jobs together (generate_batch). */
bool cz_backends_batches(const cz_backends *b, const char *model);

/**
 * @brief Runs @p n jobs of one batching model together (all jobs[i].req->model
 * the same, cz_backends_batches() true); each job ends as cz_backends_generate() says.
 */
void cz_backends_generate_batch(cz_backends *b, cz_gen_job *jobs, int n);

/**
 * @brief Runs req->model's backend. An unknown model fails as model_error.
 * @returns 0; 1 canceled; -1 with @p err and out->failure_class set. On
 * anything but 0, the files written are removed.
 */
int cz_backends_generate(cz_backends *b, const cz_gen_request *req, const cz_gen_hooks *hooks,
                         cz_gen_result *out, cz_err *err);

/* The files a backend writes: result.c. */

/**
 * @brief Adds a file to @p out in req->dir and prepares its temporary name.
 * @returns the file to write (to ->file.tmp), or NULL with @p err filled.
 */
cz_gen_file *cz_gen_result_add(cz_gen_result *out, const cz_gen_request *req, const char *kind,
                               const char *name, const char *format, const char *filename,
                               double duration_s, cz_err *err);

/**
 * @brief Commits every file of @p r (durable, hashed) and returns them as
 * event artifacts. @returns a new JSON array, or NULL with @p err filled.
 */
cJSON *cz_gen_result_commit(cz_gen_result *r, cz_err *err);

/**
 * @brief Ends @p job with @p rc (0; 1 canceled; -1 failed, with job->err):
 * a job that did not succeed leaves no files (and a failure a class), then
 * job->done is called. Backends call it once per job of a batch.
 */
void cz_gen_job_finish(cz_gen_job *job, int rc);

/**
 * @brief What cz_gen_job_finish() does to a result ended with @p rc: the
 * files of a job that did not succeed are removed, a failure gets a class.
 * @returns @p rc.
 */
int cz_gen_result_settle(cz_gen_result *out, int rc);

/** @brief Removes uncommitted temporary files and frees what @p r owns. */
void cz_gen_result_free(cz_gen_result *r);

/** @brief Releases every backend; NULL-safe. */
void cz_backends_close(cz_backends *b);

#endif
