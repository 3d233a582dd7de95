/* neural@1: see neural.h.
 *
 * A job's piece is two sections, A and B, of eight bars each, conditioned
 * on the job's key, mode, tempo band and density (tokens.h) and decoded by
 * pieces.h: every job of a batch is one slot of the transformer's state,
 * so one batched forward step advances them all, and a job's tokens depend
 * on its seed and controls only. The melody guard keeps every piece from
 * sharing more than CZ_NEURAL_MAX_SHARED_NOTES notes in a row with a
 * training piece: the training melodies come in a CZML file beside the
 * weights ("neural-1.melodies" for "neural-1.cztf", docs/models/format.md),
 * loaded and verified with them.
 *
 * Decoding is the first DECODE_SHARE of a job's progress. Every
 * CZ_NEURAL_STEP_CHECK steps each job still decoding is asked whether it
 * was canceled (it then leaves the batch, the others go on) and told its
 * progress. Then, job by
 * job, the sections become given material, the arranger writes the score
 * (cz_compose_material) and it is rendered like composer@1's
 * (cz_composer_write). One job's failure is its own: the others finish. */
#include "workers/models/neural.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/mem.h"
#include "common/rand.h"
#include "workers/composer/compose.h"
#include "workers/composer/material.h"
#include "workers/models/composer.h"
#include "workers/models/neural/pieces.h"

#define SECTIONS CZ_NEURAL_SECTIONS
#define DECODE_SHARE 0.15

typedef struct neural {
    cz_tf_model *model;
    cz_tf_state *tf;       /* one slot per job */
    cz_melody_index *refs; /* the training melodies, which no piece may copy */
    int max_jobs;
    cz_renderer *renderer;
} neural;

/* ---------------------------------------------------------------- decoding */

/* Asks each job still decoding whether it was canceled (its piece then
 * stops) and tells it how far it is. */
static void decode_check(void *user, cz_neural_gen *gens, int n, int steps) {
    cz_gen_job *jobs = user; /* the batch's jobs, one per piece */
    double share = DECODE_SHARE *
                   (steps < CZ_NEURAL_EXPECT_STEPS ? (double)steps / CZ_NEURAL_EXPECT_STEPS : 1.0);
    for (int j = 0; j < n; j++) {
        if (gens[j].stopped || gens[j].failed || gens[j].at >= SECTIONS)
            continue;
        const cz_gen_hooks *h = jobs[j].hooks;
        gens[j].stopped = (h->canceled && h->canceled(h->user)) ||
                          (h->progress && h->progress(h->user, share) != 0);
    }
}

/* Decodes the pieces of @p n jobs, one slot each; a job canceled or
 * failed meanwhile gets its rc (1 or -1). */
static void decode_jobs(neural *nm, cz_gen_job *jobs, int n, cz_neural_gen *gens) {
    cz_neural_sampling d = {nm->model, nm->tf, nm->refs, decode_check, jobs};
    for (int j = 0; j < n; j++) {
        cz_neural_cond_from_controls(jobs[j].req->controls, jobs[j].req->seed, &gens[j].cond);
        gens[j].seed = jobs[j].req->seed;
        gens[j].stopped = false;
    }
    cz_err err;
    cz_neural_pieces_sample(&d, gens, n, &err); // a failed step marks the pieces it stopped
    for (int j = 0; j < n; j++) {
        if (gens[j].failed) {
            jobs[j].rc = -1;
            jobs[j].out->failure_class = "internal";
            jobs[j].err = gens[j].err;
        } else if (gens[j].stopped) {
            jobs[j].rc = 1;
        }
    }
}

/* ---------------------------------------------------------------- arranging */

/* The decoded sections of one job as given material. A section the model
 * gave no chord opens on the tonic chord, since the arranger needs one. */
typedef struct material {
    cz_material m;
    cz_material_section sec[SECTIONS];
    cz_neural_piece piece[SECTIONS];
    cz_material_chord *chords[SECTIONS];
    cz_material_note *notes[SECTIONS];
} material;

static int material_make(material *mt, const cz_neural_gen *g, const cz_controls *controls,
                         cz_err *err) {
    memset(mt, 0, sizeof *mt);
    for (int k = 0; k < SECTIONS; k++) {
        const cz_neural_piece *p = &mt->piece[k];
        if (cz_neural_decode(g->sec[k].tokens, g->sec[k].n, &mt->piece[k], err))
            return -1;
        int nc = 1, nn = 0;
        for (int b = 0; b < p->n_bars; b++)
            nc += p->bars[b].n_chords, nn += p->bars[b].n_notes;
        cz_material_chord *ch = mt->chords[k] = cz_calloc((size_t)nc, sizeof *ch);
        cz_material_note *no = mt->notes[k] = cz_calloc((size_t)nn + 1, sizeof *no);
        int c = 0, o = 0;
        for (int b = 0; b < p->n_bars; b++) {
            const cz_neural_bar *bar = &p->bars[b];
            for (int i = 0; i < bar->n_chords; i++)
                ch[c++] = (cz_material_chord){b, bar->chords[i].pos, bar->chords[i].root,
                                              (cz_material_quality)bar->chords[i].quality};
            for (int i = 0; i < bar->n_notes; i++)
                no[o++] = (cz_material_note){b, bar->notes[i].pos, bar->notes[i].pitch,
                                             bar->notes[i].dur};
        }
        if (c == 0 || ch[0].bar != 0 || ch[0].pos != 0) {
            memmove(ch + 1, ch, sizeof *ch * (size_t)c);
            ch[0] = (cz_material_chord){0, 0, p->cond.key,
                                        p->cond.mode == CZ_MODE_MIN ? CZ_MATERIAL_MINOR
                                                                    : CZ_MATERIAL_MAJOR};
            c++;
        }
        mt->sec[k] = (cz_material_section){
            .kind = k == 0 ? CZ_MATERIAL_A : CZ_MATERIAL_B,
            .bars = p->n_bars,
            .chords = ch,
            .n_chords = c,
            .notes = no,
            .n_notes = o,
        };
    }
    const cz_neural_cond *cond = &mt->piece[0].cond;
    mt->m = (cz_material){
        .tonic = cond->key,
        .minor = cond->mode == CZ_MODE_MIN,
        .meter_num = 4,
        .meter_den = 4,
        .bpm = controls->tempo_bpm,
        .sections = mt->sec,
        .n_sections = SECTIONS,
    };
    return 0;
}

static void material_free(material *mt) {
    for (int k = 0; k < SECTIONS; k++) {
        cz_neural_piece_free(&mt->piece[k]);
        free(mt->chords[k]);
        free(mt->notes[k]);
    }
}

/* What the model did, for the job's provenance: both stages and their
 * versions, the weights' sha256, the tokens of each section. */
static void provenance(const neural *nm, const cz_neural_gen *g, cJSON *chosen) {
    const cz_neural_weights *w = cz_tf_weights(nm->model);
    cJSON *n = cJSON_AddObjectToObject(chosen, "neural");
    cJSON_AddStringToObject(n, "model", "neural@1");
    cJSON_AddStringToObject(n, "weights_sha256", w->sha256);
    cJSON_AddStringToObject(n, "arranger", "composer@1");
    cJSON_AddNumberToObject(n, "temperature", CZ_NEURAL_TEMPERATURE);
    cJSON_AddNumberToObject(n, "top_p", CZ_NEURAL_TOP_P);
    cJSON_AddNumberToObject(n, "max_shared_notes", CZ_NEURAL_MAX_SHARED_NOTES);
    cJSON *secs = cJSON_AddArrayToObject(n, "sections");
    for (int k = 0; k < SECTIONS; k++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "section", k == 0 ? "A" : "B");
        cJSON_AddNumberToObject(s, "tokens", g->sec[k].n);
        cJSON_AddNumberToObject(s, "guarded_draws", g->sec[k].sampler.refused);
        cJSON_AddItemToArray(secs, s);
    }
}

/* Arranges and renders one decoded job. @returns as generate(). */
static int finish_job(neural *nm, cz_gen_job *job, const cz_neural_gen *g) {
    const cz_gen_request *req = job->req;
    cz_gen_result *out = job->out;
    material mt;
    cz_score score;
    out->failure_class = "model_error";
    if (material_make(&mt, g, req->controls, &job->err) ||
        cz_compose_material(req->controls, &mt.m, req->duration_s, req->seed, &score, &out->chosen,
                            &job->err)) {
        material_free(&mt);
        return -1;
    }
    provenance(nm, g, out->chosen);
    material_free(&mt);
    int rc = cz_composer_write(nm->renderer, &score, req, job->hooks, DECODE_SHARE, out, &job->err);
    cz_score_free(&score);
    return rc;
}

/* ---------------------------------------------------------------- the backend */

static void cz_neural_batch(void *state, cz_gen_job *jobs, int n) {
    neural *nm = state;
    /* More jobs than the state has slots for go in turns. */
    for (int from = 0; from < n; from += nm->max_jobs) {
        int m = n - from < nm->max_jobs ? n - from : nm->max_jobs;
        cz_gen_job *batch = jobs + from;
        cz_neural_gen *gens = cz_calloc((size_t)m, sizeof *gens);
        for (int j = 0; j < m; j++)
            batch[j].rc = 0;
        decode_jobs(nm, batch, m, gens);
        /* Each job is handed back as soon as it is over: the failed and
         * canceled ones first, then each as its rendering ends. */
        for (int j = 0; j < m; j++)
            if (batch[j].rc != 0)
                cz_gen_job_finish(&batch[j], batch[j].rc);
        for (int j = 0; j < m; j++)
            if (batch[j].rc == 0)
                cz_gen_job_finish(&batch[j], finish_job(nm, &batch[j], &gens[j]));
        free(gens);
    }
}

static int cz_neural_generate(void *state, const cz_gen_request *req, const cz_gen_hooks *hooks,
                              cz_gen_result *out, cz_err *err) {
    cz_gen_job job = {.req = req, .hooks = hooks, .out = out};
    cz_neural_batch(state, &job, 1);
    if (job.rc < 0)
        *err = job.err;
    return job.rc;
}

static void cz_neural_release(void *state) {
    neural *nm = state;
    if (!nm)
        return;
    cz_tf_state_free(nm->tf);
    cz_tf_free(nm->model);
    cz_melody_index_free(nm->refs);
    free(nm);
}

/* Decodes one piece and drops it, so the first job pays no cold start
 * (first touches of the weights and the caches, OpenBLAS's buffers). */
static int warm_up(neural *nm, cz_err *err) {
    cz_controls controls = {.key_root = -1, .mode = -1};
    cz_gen_request req = {.model = "neural@1", .controls = &controls, .seed = 1};
    cz_gen_hooks hooks = {0};
    cz_gen_result out = {0};
    cz_gen_job job = {.req = &req, .hooks = &hooks, .out = &out};
    cz_neural_gen *gen = cz_calloc(1, sizeof *gen);
    int64_t tokens = 0;
    decode_jobs(nm, &job, 1, gen);
    for (int k = 0; k < SECTIONS; k++)
        tokens += gen->sec[k].n;
    free(gen);
    if (job.rc != 0) {
        *err = job.err;
        return -1;
    }
    cz_log_info("neural@1 warmed up: %lld tokens decoded", (long long)tokens);
    return 0;
}

static void *cz_neural_prepare(const cz_backend_env *env, cz_err *err) {
    neural *nm = cz_calloc(1, sizeof *nm);
    nm->renderer = env->renderer;
    nm->max_jobs = env->cfg->max_batch;
    /* One OpenBLAS thread: the state's own threads share each product's
     * rows, which suits workers that share a few cores (transformer.h). */
    if (!getenv("OPENBLAS_NUM_THREADS"))
        openblas_set_num_threads(1);
    cz_tf_device device;
    if (cz_tf_device_parse(env->cfg->neural_device, &device, err) ||
        !(nm->model = cz_tf_load(env->cfg->neural_weights, err)) ||
        !(nm->refs = cz_neural_melodies_load(env->cfg->neural_weights, err)) ||
        !(nm->tf = cz_tf_state_new_on(nm->model, nm->max_jobs, 0, device, err))) {
        cz_neural_release(nm);
        return NULL;
    }
    if (cz_tf_config_of(nm->model)->max_seq > CZ_NEURAL_MAX_SEQ) {
        cz_err_set(err, "neural@1: weights %s hold sequences of %d tokens, at most %d are served",
                   env->cfg->neural_weights, cz_tf_config_of(nm->model)->max_seq,
                   CZ_NEURAL_MAX_SEQ);
        cz_neural_release(nm);
        return NULL;
    }
    if (warm_up(nm, err)) {
        cz_neural_release(nm);
        return NULL;
    }
    cz_log_info("neural@1 ready: weights %s (sha256 %.12s...), %d training melodies guarded, "
                "batches of up to %d jobs",
                env->cfg->neural_weights, cz_tf_weights(nm->model)->sha256,
                cz_melody_index_count(nm->refs), nm->max_jobs);
    return nm;
}

const cz_backend cz_neural_backend = {
    .id = "neural@1",
    .prepare = cz_neural_prepare,
    .generate = cz_neural_generate,
    .generate_batch = cz_neural_batch,
    .release = cz_neural_release,
};
