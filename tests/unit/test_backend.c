/* Model backends (workers/models/backend.c, composer.c, http.c): the
 * registry, composer@1's files (mix, MIDI, stems) and their determinism,
 * cancellation that leaves nothing behind, and http@1 against the reference
 * model server of the tests (tests/reference_model.py, started here) for
 * every failure class of the contract; neural@1's batches, where a
 * canceled or failing job ends alone and the others finish with the notes
 * they would have had alone. Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <dirent.h>
#include <signal.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/json.h"
#include "common/mem.h"
#include "tests/unit/reference_server.h"
#include "workers/models/backend.h"
#include "workers/models/http.h"

typedef struct fixture {
    cz_config cfg;
    cz_backends *b;
    pid_t server;
    char url[64];
    char dir[64];
} fixture;

static int group_setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    *state = f;
    if (!f || (f->server = start_reference(f->url, sizeof f->url, NULL)) < 0) {
        fprintf(stderr, "test_backend: cannot start tests/reference_model.py\n");
        return -1;
    }
    setenv("CADENZA_HTTP_MODEL_URL", f->url, 1);
    setenv("CADENZA_HTTP_MODEL_TIMEOUT_S", "2", 1);
    cz_config_load(&f->cfg);
    cz_err err = {{0}};
    if (!(f->b = cz_backends_open(&f->cfg, &err))) {
        fprintf(stderr, "test_backend: %s\n", err.msg);
        return -1;
    }
    strcpy(f->dir, "/tmp/cz_test_backend_XXXXXX");
    return mkdtemp(f->dir) ? 0 : -1;
}

static void empty_dir(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            unlink(path);
        }
    if (d)
        closedir(d);
}

static int count_files(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

static int group_teardown(void **state) {
    fixture *f = *state;
    if (f) {
        cz_backends_close(f->b);
        if (f->server > 0) {
            kill(f->server, SIGTERM);
            waitpid(f->server, NULL, 0);
        }
        empty_dir(f->dir);
        rmdir(f->dir);
        free(f);
    }
    return 0;
}

typedef struct job {
    cJSON *request;
    cz_controls controls;
    cz_gen_request g;
} job;

static void job_make(job *j, const fixture *f, const char *model, const char *prompt,
                     double seconds, uint64_t seed, bool stems) {
    memset(j, 0, sizeof *j);
    j->request = cJSON_CreateObject();
    cJSON_AddStringToObject(j->request, "prompt", prompt);
    cz_prompt_fields pf = {.prompt = prompt, .duration_s = seconds, .n_instruments = -1};
    cz_err err = {{0}};
    assert_int_equal(cz_prompt_controls(&pf, &j->controls, NULL, &err), 0);
    j->g = (cz_gen_request){.job_id = "test",
                            .attempt = 1,
                            .model = model,
                            .request = j->request,
                            .controls = &j->controls,
                            .duration_s = seconds,
                            .seed = seed,
                            .stems = stems,
                            .dir = f->dir};
}

static cJSON *generate_ok(fixture *f, job *j, cz_gen_result *res) {
    cz_gen_hooks hooks = {0};
    cz_err err = {{0}};
    if (cz_backends_generate(f->b, &j->g, &hooks, res, &err) != 0)
        fail_msg("%s: %s (%s)", j->g.model, err.msg, res->failure_class);
    cJSON *artifacts = cz_gen_result_commit(res, &err);
    assert_non_null(artifacts);
    return artifacts;
}

static const cJSON *artifact(const cJSON *list, const char *kind, const char *name) {
    for (const cJSON *a = list->child; a; a = a->next)
        if (!strcmp(cz_json_str(a, "kind"), kind) && !strcmp(cz_json_str(a, "name"), name))
            return a;
    return NULL;
}

static sf_count_t wav_frames(const char *uri, int *channels, int *rate) {
    SF_INFO info = {0};
    SNDFILE *s = sf_open(cz_artifact_uri_path(uri), SFM_READ, &info);
    assert_non_null(s);
    sf_close(s);
    *channels = info.channels;
    *rate = info.samplerate;
    return info.frames;
}

static void test_registry(void **state) {
    fixture *f = *state;
    assert_non_null(cz_backends_find(f->b, "composer@1"));
    assert_non_null(cz_backends_find(f->b, "http@1"));
    assert_null(cz_backends_find(f->b, "composer@2"));
    job j;
    job_make(&j, f, "composer@9", "x", 3, 1, false);
    cz_gen_result res;
    cz_gen_hooks hooks = {0};
    cz_err err = {{0}};
    assert_int_equal(cz_backends_generate(f->b, &j.g, &hooks, &res, &err), -1);
    assert_string_equal(res.failure_class, "model_error");
    assert_non_null(strstr(err.msg, "composer@9"));
    cz_gen_result_free(&res);
    cJSON_Delete(j.request);
}

/* composer@1 writes the mix, the MIDI file and a stem per group; the same
 * seed gives the same bytes, with or without stems. */
static void test_composer_files(void **state) {
    fixture *f = *state;
    job j;
    job_make(&j, f, "composer@1", "funky groove with clavinet, slap bass, sax and drums, 104 bpm",
             6, 77, true);
    cz_gen_result res;
    cJSON *a = generate_ok(f, &j, &res);
    const char *kinds[][2] = {{"raw", "mix"},   {"midi", "score"},  {"stem", "harmony"},
                              {"stem", "bass"}, {"stem", "melody"}, {"stem", "drums"}};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (!artifact(a, kinds[i][0], kinds[i][1]))
            fail_msg("no %s %s artifact", kinds[i][0], kinds[i][1]);
    int ch, rate;
    assert_int_equal(wav_frames(cz_json_str(artifact(a, "raw", "mix"), "uri"), &ch, &rate),
                     6 * 48000);
    assert_int_equal(ch, 2);
    assert_int_equal(rate, 48000);
    assert_non_null(cJSON_GetObjectItem(res.chosen, "form"));
    char mix_sha[CZ_SHA256_HEX], midi_sha[CZ_SHA256_HEX];
    strcpy(mix_sha, cz_json_str(artifact(a, "raw", "mix"), "sha256"));
    strcpy(midi_sha, cz_json_str(artifact(a, "midi", "score"), "sha256"));
    cJSON_Delete(a);
    cz_gen_result_free(&res);
    empty_dir(f->dir);

    j.g.stems = false; // no stems: the same mix, bit for bit
    a = generate_ok(f, &j, &res);
    assert_null(artifact(a, "stem", "drums"));
    assert_string_equal(cz_json_str(artifact(a, "raw", "mix"), "sha256"), mix_sha);
    assert_string_equal(cz_json_str(artifact(a, "midi", "score"), "sha256"), midi_sha);
    cJSON_Delete(a);
    cz_gen_result_free(&res);
    empty_dir(f->dir);

    j.g.seed = 78; // another seed: other music
    a = generate_ok(f, &j, &res);
    assert_string_not_equal(cz_json_str(artifact(a, "raw", "mix"), "sha256"), mix_sha);
    cJSON_Delete(a);
    cz_gen_result_free(&res);
    empty_dir(f->dir);
    cJSON_Delete(j.request);
}

static bool cancel_on_second(void *user) {
    return ++*(int *)user >= 2;
}

static void test_composer_cancel_leaves_nothing(void **state) {
    fixture *f = *state;
    job j;
    job_make(&j, f, "composer@1", "ambient", 20, 3, true);
    int calls = 0;
    cz_gen_hooks hooks = {.canceled = cancel_on_second, .user = &calls};
    cz_gen_result res;
    cz_err err = {{0}};
    assert_int_equal(cz_backends_generate(f->b, &j.g, &hooks, &res, &err), 1);
    assert_int_equal(res.n_files, 0);
    assert_int_equal(count_files(f->dir), 0);
    cz_gen_result_free(&res);
    cJSON_Delete(j.request);
}

static void test_http_answer(void **state) {
    fixture *f = *state;
    job j;
    job_make(&j, f, "http@1", "dreamy synthwave, 100 bpm", 2.5, 5, false);
    cz_gen_result res;
    cJSON *a = generate_ok(f, &j, &res);
    int ch, rate;
    assert_int_equal(wav_frames(cz_json_str(artifact(a, "raw", "mix"), "uri"), &ch, &rate), 120000);
    assert_int_equal(ch, 2);
    assert_string_equal(cz_json_str(res.chosen, "model_version"), "reference-1");
    cJSON_Delete(a);
    cz_gen_result_free(&res);
    assert_int_equal(count_files(f->dir), 1); /* the scratch answer is gone */
    empty_dir(f->dir);

    // A mono answer is valid: it becomes both channels.
    cJSON_Delete(j.request);
    job_make(&j, f, "http@1", "reference:mono", 1.5, 5, false);
    a = generate_ok(f, &j, &res);
    assert_int_equal(wav_frames(cz_json_str(artifact(a, "raw", "mix"), "uri"), &ch, &rate), 72000);
    assert_int_equal(ch, 2);
    cJSON_Delete(a);
    cz_gen_result_free(&res);
    empty_dir(f->dir);
    cJSON_Delete(j.request);
}

static void expect_failure(fixture *f, cz_backends *b, const char *prompt, const char *class) {
    job j;
    job_make(&j, f, "http@1", prompt, 1.5, 5, false);
    cz_gen_result res;
    cz_gen_hooks hooks = {0};
    cz_err err = {{0}};
    if (cz_backends_generate(b, &j.g, &hooks, &res, &err) != -1)
        fail_msg("%s: expected %s", prompt, class);
    if (strcmp(res.failure_class, class) != 0)
        fail_msg("%s: %s, expected %s (%s)", prompt, res.failure_class, class, err.msg);
    assert_true(strlen(err.msg) > 10);
    assert_int_equal(count_files(f->dir), 0);
    cz_gen_result_free(&res);
    cJSON_Delete(j.request);
}

static void test_http_failure_classes(void **state) {
    fixture *f = *state;
    expect_failure(f, f->b, "x reference:unavailable", "backend_unavailable");
    expect_failure(f, f->b, "x reference:error", "model_error");
    expect_failure(f, f->b, "x reference:garbage", "model_error");
    expect_failure(f, f->b, "x reference:short", "model_error");
    expect_failure(f, f->b, "x reference:slow", "timeout"); /* CADENZA_HTTP_MODEL_TIMEOUT_S=2 */

    // Nothing listening, and nothing configured.
    setenv("CADENZA_HTTP_MODEL_URL", "http://127.0.0.1:1", 1);
    cz_err err = {{0}};
    cz_backends *b = cz_backends_open(&f->cfg, &err);
    assert_non_null(b);
    expect_failure(f, b, "x", "backend_unavailable");
    cz_backends_close(b);
    unsetenv("CADENZA_HTTP_MODEL_URL");
    b = cz_backends_open(&f->cfg, &err);
    assert_non_null(b);
    expect_failure(f, b, "x", "backend_unavailable");
    cz_backends_close(b);
    setenv("CADENZA_HTTP_MODEL_URL", f->url, 1);
}

/* ---- neural@1: jobs decoded together, each finished on its own ----------- */

static bool always(void *user) {
    (void)user;
    return true;
}

static void count_done(cz_gen_job *g) {
    ++*(int *)g->user;
}

/* The MIDI file's sha256 of a finished job (its notes). */
static void midi_sha(fixture *f, cz_gen_result *res, char out[65]) {
    cz_err err = {{0}};
    cJSON *artifacts = cz_gen_result_commit(res, &err);
    assert_non_null(artifacts);
    const cJSON *midi = artifact(artifacts, "midi", "score");
    assert_non_null(midi);
    snprintf(out, 65, "%s", cz_json_str(midi, "sha256"));
    cJSON_Delete(artifacts);
    cz_gen_result_free(res);
    empty_dir(f->dir);
}

static void test_neural_batch(void **state) {
    fixture *f = *state;
    /* Alone first: the reference for the same job inside a batch. */
    job alone;
    job_make(&alone, f, "neural@1", "bright folk tune with flute", 4, 77, false);
    cz_gen_result res;
    cz_gen_hooks none = {0};
    cz_err err = {{0}};
    assert_int_equal(cz_backends_generate(f->b, &alone.g, &none, &res, &err), 0);
    char ref[65], got[65];
    midi_sha(f, &res, ref);

    /* A batch: the same job, one canceled, one failing (too short to arrange). */
    job j[3];
    job_make(&j[0], f, "neural@1", "bright folk tune with flute", 4, 77, false);
    job_make(&j[1], f, "neural@1", "dark slow waltz", 4, 78, false);
    job_make(&j[2], f, "neural@1", "a piece far too short", 0.2, 79, false);
    cz_gen_hooks plain = {0}, cancel = {.canceled = always};
    cz_gen_result out[3];
    int done = 0;
    cz_gen_job batch[3] = {
        {.req = &j[0].g, .hooks = &plain, .out = &out[0], .done = count_done, .user = &done},
        {.req = &j[1].g, .hooks = &cancel, .out = &out[1], .done = count_done, .user = &done},
        {.req = &j[2].g, .hooks = &plain, .out = &out[2], .done = count_done, .user = &done},
    };
    assert_true(cz_backends_batches(f->b, "neural@1"));
    assert_false(cz_backends_batches(f->b, "composer@1"));
    cz_backends_generate_batch(f->b, batch, 3);
    assert_int_equal(done, 3);
    assert_int_equal(batch[1].rc, 1); /* canceled: no files */
    assert_int_equal(out[1].n_files, 0);
    assert_int_equal(batch[2].rc, -1); /* failed alone, with a class and a reason */
    assert_string_equal(out[2].failure_class, "model_error");
    assert_true(strlen(batch[2].err.msg) > 0);
    assert_int_equal(out[2].n_files, 0);
    assert_int_equal(batch[0].rc, 0); /* the others finish, with the same notes as alone */
    midi_sha(f, &out[0], got);
    assert_string_equal(got, ref);
    cz_gen_result_free(&out[1]);
    cz_gen_result_free(&out[2]);
    for (int i = 0; i < 3; i++)
        cJSON_Delete(j[i].request);
    cJSON_Delete(alone.request);
}

int main(void) {
    cz_mem_init(); /* cJSON allocates as the binaries do */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_registry),
        cmocka_unit_test(test_composer_files),
        cmocka_unit_test(test_composer_cancel_leaves_nothing),
        cmocka_unit_test(test_http_answer),
        cmocka_unit_test(test_http_failure_classes),
        cmocka_unit_test(test_neural_batch),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
