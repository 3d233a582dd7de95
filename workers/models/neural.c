/* neural@1: see neural.h.
 *
 * A job's piece is written as two sections, A and B, of eight bars each:
 * one sequence per section, conditioned on the job's key, mode, tempo band
 * and density (tokens.h) and on the section. Every sequence of every job in
 * a batch is one slot of the transformer's state, so one batched forward
 * step (cz_tf_step) advances them all; each sequence samples from its own
 * stream, seeded from the job's seed and the section, under the grammar, so
 * every sequence parses and a job's tokens do not depend on its batch.
 *
 * Decoding is the first DECODE_SHARE of a job's progress. Every STEP_CHECK
 * steps each job still decoding is asked whether it was canceled (it then
 * leaves the batch, the others go on) and told its progress. Then, job by
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
#include "workers/models/neural/sampler.h"
#include "workers/models/neural/transformer.h"

#define SECTIONS 2
#define SECTION_BARS 8
#define DECODE_SHARE 0.15
#define STEP_CHECK 16
#define CZ_NEURAL_MAX_SEQ 512 /* the longest sequence a weights file may hold */

typedef struct neural {
    cz_tf_model *model;
    cz_tf_state *tf;
    int max_jobs; /* the state holds SECTIONS slots per job */
    cz_renderer *renderer;
} neural;

/* One section of one job being decoded. */
typedef struct sequence {
    int job;
    cz_neural_sampler sampler;
    int tokens[CZ_NEURAL_MAX_SEQ];
    int n;
    bool done;
    float *logits; /* the model's output after the last token: where the next is drawn from */
} sequence;

/* ---------------------------------------------------------------- decoding */

/* The sequences of @p jobs jobs, each with room for the model's logits. */
static sequence *sequences_new(const neural *nm, int jobs) {
    const cz_tf_config *cfg = cz_tf_config_of(nm->model);
    sequence *seq = cz_calloc((size_t)jobs * SECTIONS, sizeof *seq);
    for (int i = 0; i < jobs * SECTIONS; i++)
        seq[i].logits = cz_malloc(sizeof(float) * cfg->vocab);
    return seq;
}

static void sequences_free(sequence *seq, int jobs) {
    for (int i = 0; i < jobs * SECTIONS; i++)
        free(seq[i].logits);
    free(seq);
}

/* Starts section @p k of job @p j in its slot: the prefix, fed to the
 * grammar and to the model at once. */
static int sequence_start(neural *nm, sequence *s, int j, int k, const cz_gen_request *req,
                          float *scratch, cz_err *err) {
    const cz_tf_config *cfg = cz_tf_config_of(nm->model);
    cz_neural_cond cond;
    cz_neural_cond_from_controls(req->controls, req->seed, &cond);
    cond.section = k == 0 ? CZ_SECTION_A : CZ_SECTION_B;
    s->job = j;
    s->done = false;
    s->n = cz_neural_cond_tokens(&cond, s->tokens);
    /* Each section its own stream: the same seed gives the same two sections. */
    cz_neural_sampler_init(&s->sampler, cz_splitmix64_mix(req->seed + 0x5EC7104ull * (k + 1)),
                           CZ_NEURAL_TEMPERATURE, CZ_NEURAL_TOP_P, cfg->max_seq, SECTION_BARS,
                           SECTION_BARS);
    int slot = j * SECTIONS + k;
    cz_tf_slot_reset(nm->tf, slot);
    if (cz_neural_sampler_feed(&s->sampler, s->tokens, s->n, err) ||
        cz_tf_prefill(nm->model, nm->tf, slot, s->tokens, s->n, scratch, err))
        return -1;
    memcpy(s->logits, scratch + (size_t)(s->n - 1) * cfg->vocab, sizeof(float) * cfg->vocab);
    return 0;
}

/* Asks each job still decoding whether it was canceled and tells it how
 * far it is. A canceled job's sequences stop. */
static void decode_check(cz_gen_job *jobs, int n, sequence *seq, int steps, int expect) {
    for (int j = 0; j < n; j++) {
        if (jobs[j].rc != 0)
            continue;
        const cz_gen_hooks *h = jobs[j].hooks;
        double share = DECODE_SHARE * (steps < expect ? (double)steps / expect : 1.0);
        bool stop = (h->canceled && h->canceled(h->user)) ||
                    (h->progress && h->progress(h->user, share) != 0);
        if (!stop)
            continue;
        jobs[j].rc = 1;
        for (int k = 0; k < SECTIONS; k++)
            seq[j * SECTIONS + k].done = true;
    }
}

/* Fails every job still going with @p why (the batch's forward step failed). */
static void decode_fail(cz_gen_job *jobs, int n, const cz_err *why) {
    for (int j = 0; j < n; j++)
        if (jobs[j].rc == 0) {
            jobs[j].rc = -1;
            jobs[j].out->failure_class = "internal";
            jobs[j].err = *why;
        }
}

/* Samples every sequence to its end, one batched forward step per token. */
static void decode_batch(neural *nm, cz_gen_job *jobs, int n, sequence *seq) {
    const cz_tf_config *cfg = cz_tf_config_of(nm->model);
    int nseq = n * SECTIONS;
    int *slots = cz_malloc(sizeof *slots * nseq), *next = cz_malloc(sizeof *next * nseq);
    /* One row per sequence stepped, or per prefix token of a prefill. */
    int nrows = nseq > CZ_NEURAL_PREFIX ? nseq : CZ_NEURAL_PREFIX;
    float *rows = cz_malloc(sizeof(float) * cfg->vocab * (size_t)nrows);
    for (int j = 0; j < n; j++)
        for (int k = 0; k < SECTIONS && jobs[j].rc == 0; k++)
            if (sequence_start(nm, &seq[j * SECTIONS + k], j, k, jobs[j].req, rows, &jobs[j].err)) {
                jobs[j].rc = -1;
                jobs[j].out->failure_class = "internal";
            }
    for (int i = 0; i < nseq; i++)
        seq[i].done = seq[i].done || jobs[seq[i].job].rc != 0;

    /* About 20 tokens a bar: the progress of a typical piece. */
    int expect = SECTION_BARS * 20, steps = 0;
    for (;;) {
        int m = 0;
        for (int i = 0; i < nseq; i++) {
            sequence *s = &seq[i];
            if (s->done)
                continue;
            int t = cz_neural_sampler_next(&s->sampler, s->logits);
            if (t >= 0)
                s->tokens[s->n++] = t;
            if (t < 0 || t == CZ_TOK_EOS) {
                s->done = true;
                continue;
            }
            slots[m] = i, next[m] = t;
            m++;
        }
        if (m == 0)
            break;
        cz_err err;
        if (cz_tf_step(nm->model, nm->tf, slots, next, m, rows, &err)) {
            decode_fail(jobs, n, &err);
            break;
        }
        for (int r = 0; r < m; r++)
            memcpy(seq[slots[r]].logits, rows + (size_t)r * cfg->vocab, sizeof(float) * cfg->vocab);
        if (++steps % STEP_CHECK == 0)
            decode_check(jobs, n, seq, steps, expect);
    }
    free(slots);
    free(next);
    free(rows);
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

static int material_make(material *mt, const sequence *seq, const cz_controls *controls,
                         cz_err *err) {
    memset(mt, 0, sizeof *mt);
    for (int k = 0; k < SECTIONS; k++) {
        const cz_neural_piece *p = &mt->piece[k];
        if (cz_neural_decode(seq[k].tokens, seq[k].n, &mt->piece[k], err))
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
static void provenance(const neural *nm, const sequence *seq, cJSON *chosen) {
    const cz_neural_weights *w = cz_tf_weights(nm->model);
    cJSON *n = cJSON_AddObjectToObject(chosen, "neural");
    cJSON_AddStringToObject(n, "model", "neural@1");
    cJSON_AddStringToObject(n, "weights_sha256", w->sha256);
    cJSON_AddStringToObject(n, "arranger", "composer@1");
    cJSON_AddNumberToObject(n, "temperature", CZ_NEURAL_TEMPERATURE);
    cJSON_AddNumberToObject(n, "top_p", CZ_NEURAL_TOP_P);
    cJSON *secs = cJSON_AddArrayToObject(n, "sections");
    for (int k = 0; k < SECTIONS; k++) {
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "section", k == 0 ? "A" : "B");
        cJSON_AddNumberToObject(s, "tokens", seq[k].n);
        cJSON_AddItemToArray(secs, s);
    }
}

/* Arranges and renders one decoded job. @returns as generate(). */
static int finish_job(neural *nm, cz_gen_job *job, const sequence *seq) {
    const cz_gen_request *req = job->req;
    cz_gen_result *out = job->out;
    material mt;
    cz_score score;
    out->failure_class = "model_error";
    if (material_make(&mt, seq, req->controls, &job->err) ||
        cz_compose_material(req->controls, &mt.m, req->duration_s, req->seed, &score, &out->chosen,
                            &job->err)) {
        material_free(&mt);
        return -1;
    }
    provenance(nm, seq, out->chosen);
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
        sequence *seq = sequences_new(nm, m);
        for (int j = 0; j < m; j++)
            batch[j].rc = 0;
        decode_batch(nm, batch, m, seq);
        /* Each job is handed back as soon as it is over: the failed and
         * canceled ones first, then each as its rendering ends. */
        for (int j = 0; j < m; j++)
            if (batch[j].rc != 0)
                cz_gen_job_finish(&batch[j], batch[j].rc);
        for (int j = 0; j < m; j++)
            if (batch[j].rc == 0)
                cz_gen_job_finish(&batch[j], finish_job(nm, &batch[j], &seq[j * SECTIONS]));
        sequences_free(seq, m);
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
    sequence *seq = sequences_new(nm, 1);
    int64_t tokens = 0;
    decode_batch(nm, &job, 1, seq);
    for (int k = 0; k < SECTIONS; k++)
        tokens += seq[k].n;
    sequences_free(seq, 1);
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
        !(nm->tf = cz_tf_state_new_on(nm->model, nm->max_jobs * SECTIONS, 0, device, err))) {
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
    cz_log_info("neural@1 ready: weights %s (sha256 %.12s...), batches of up to %d jobs",
                env->cfg->neural_weights, cz_tf_weights(nm->model)->sha256, nm->max_jobs);
    return nm;
}

const cz_backend cz_neural_backend = {
    .id = "neural@1",
    .prepare = cz_neural_prepare,
    .generate = cz_neural_generate,
    .generate_batch = cz_neural_batch,
    .release = cz_neural_release,
};
