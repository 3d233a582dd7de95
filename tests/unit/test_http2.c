/* http@2 (workers/models/http2.c) against the reference model server of
 * the tests (tests/reference_model.py, started here with --oom-above 3):
 * jobs gathered together go out as one batch and each gets its audio; a
 * batch of four runs out of memory and succeeds as two batches of two; a
 * job asked for again finds its prediction by key instead of starting a
 * new one; a canceled job's prediction is deleted on the server while a
 * job handed back by a stopping worker leaves it running; parameters the
 * model declares change the music and ones it does not are refused before
 * anything is sent; each failure class of the contract. The server's
 * GET /v1/stats shows what it really did. Run from the repository root. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* cmocka needs the headers above. */
#include <cmocka.h>

#include "common/buf.h"
#include "common/json.h"
#include "common/mem.h"
#include "tests/unit/reference_server.h"
#include "workers/models/backend.h"

#define JOBS_MAX 8

typedef struct fixture {
    cz_config cfg;
    cz_backends *b;
    pid_t server;
    char url[64];
    char root[64];
} fixture;

static int group_setup(void **state) {
    fixture *f = calloc(1, sizeof *f);
    *state = f;
    if (!f || (f->server = start_reference(
                   f->url, sizeof f->url,
                   (const char *const[]){"--oom-above", "3", "--max-batch", "8", NULL})) < 0) {
        fprintf(stderr, "test_http2: cannot start tests/reference_model.py\n");
        return -1;
    }
    setenv("CADENZA_HTTP2_MODEL_URL", f->url, 1);
    setenv("CADENZA_HTTP2_TIMEOUT_S", "5", 1);
    cz_config_load(&f->cfg);
    cz_err err = {{0}};
    if (!(f->b = cz_backends_open(&f->cfg, &err))) {
        fprintf(stderr, "test_http2: %s\n", err.msg);
        return -1;
    }
    strcpy(f->root, "/tmp/cz_test_http2_XXXXXX");
    return mkdtemp(f->root) ? 0 : -1;
}

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
            if (unlink(path) != 0)
                remove_tree(path);
        }
    if (d)
        closedir(d);
    rmdir(dir);
}

static int group_teardown(void **state) {
    fixture *f = *state;
    if (f) {
        cz_backends_close(f->b);
        if (f->server > 0) {
            kill(f->server, SIGTERM);
            waitpid(f->server, NULL, 0);
        }
        remove_tree(f->root);
        free(f);
    }
    return 0;
}

/* ---- the server's counters ---------------------------------------------- */

static size_t collect(char *data, size_t size, size_t n, void *user) {
    cz_buf_append(user, data, size * n);
    return size * n;
}

static cJSON *http_json(const fixture *f, const char *path) {
    char url[256];
    snprintf(url, sizeof url, "%s%s", f->url, path);
    cz_buf body = {0};
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
    assert_int_equal(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    cJSON *doc = cJSON_Parse(body.data);
    cz_buf_free(&body);
    assert_non_null(doc);
    return doc;
}

/* What the server counted for the job's keys ("cadenza-<job id>-<input hash>"). */
static int count_by_key(const cJSON *stats, const char *which, const char *job_id) {
    char prefix[128];
    int n = snprintf(prefix, sizeof prefix, "cadenza-%s-", job_id), count = 0;
    for (const cJSON *k = cJSON_GetObjectItem(stats, which)->child; k; k = k->next)
        if (!strncmp(k->string, prefix, (size_t)n))
            count += (int)k->valuedouble;
    return count;
}

/* The sizes and outcomes of the batches run since @p from, as "4:oom 2 2". */
static void batches_since(const cJSON *stats, int from, char *out, size_t n) {
    const cJSON *list = cJSON_GetObjectItem(stats, "batches");
    out[0] = '\0';
    for (int i = from; i < cJSON_GetArraySize(list); i++) {
        const cJSON *b = cJSON_GetArrayItem(list, i);
        size_t len = strlen(out);
        snprintf(out + len, n - len, "%s%d%s", len ? " " : "", (int)cz_json_num(b, "size", 0),
                 strcmp(cz_json_str(b, "outcome"), "oom") ? "" : ":oom");
    }
}

static int n_batches(const fixture *f) {
    cJSON *s = http_json(f, "/v1/stats");
    int n = cJSON_GetArraySize(cJSON_GetObjectItem(s, "batches"));
    cJSON_Delete(s);
    return n;
}

/* ---- jobs ---------------------------------------------------------------- */

typedef struct job {
    char id[64];
    char dir[128];
    cJSON *request;
    cz_controls controls;
    cz_gen_request g;
    cz_gen_result out;
    cz_gen_hooks hooks;
    int calls; /* how often the hooks were called */
} job;

static void job_make(job *j, fixture *f, const char *id, const char *prompt, double seconds,
                     uint64_t seed, const char *parameters) {
    memset(j, 0, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", id);
    snprintf(j->dir, sizeof j->dir, "%s/%s", f->root, id);
    mkdir(j->dir, 0755);
    j->request = cJSON_CreateObject();
    cJSON_AddStringToObject(j->request, "prompt", prompt);
    if (parameters)
        cJSON_AddItemToObject(j->request, "parameters", cJSON_Parse(parameters));
    cz_prompt_fields pf = {.prompt = prompt, .duration_s = seconds, .n_instruments = -1};
    cz_err err = {{0}};
    assert_int_equal(cz_prompt_controls(&pf, &j->controls, NULL, &err), 0);
    j->g = (cz_gen_request){.job_id = j->id,
                            .attempt = 1,
                            .model = "http@2",
                            .request = j->request,
                            .controls = &j->controls,
                            .duration_s = seconds,
                            .seed = seed,
                            .dir = j->dir};
}

static void job_free(job *j) {
    cz_gen_result_free(&j->out);
    cJSON_Delete(j->request);
}

/* Runs @p n jobs as one batch of the pool. */
static void run_batch(fixture *f, job *jobs, int n, cz_gen_job *g) {
    for (int i = 0; i < n; i++)
        g[i] = (cz_gen_job){.req = &jobs[i].g, .hooks = &jobs[i].hooks, .out = &jobs[i].out};
    assert_true(cz_backends_batches(f->b, "http@2"));
    cz_backends_generate_batch(f->b, g, n);
}

static void expect_ok(cz_gen_job *g, job *j) {
    if (g->rc != 0)
        fail_msg("job %s: rc %d, %s (%s)", j->id, g->rc, g->err.msg, j->out.failure_class);
    assert_int_equal(j->out.n_files, 1);
    assert_string_equal(j->out.files[0].kind, "raw");
}

static void expect_failure(cz_gen_job *g, job *j, const char *class) {
    if (g->rc != -1 || !j->out.failure_class || strcmp(j->out.failure_class, class) != 0)
        fail_msg("job %s: rc %d class %s, expected %s (%s)", j->id, g->rc,
                 j->out.failure_class ? j->out.failure_class : "none", class, g->err.msg);
    assert_true(strlen(g->err.msg) > 10);
    assert_int_equal(j->out.n_files, 0);
}

static cJSON *committed(job *j) {
    cz_err err = {{0}};
    cJSON *a = cz_gen_result_commit(&j->out, &err);
    assert_non_null(a);
    return a;
}

/* ---- tests ------------------------------------------------------------- */

/* Three jobs of the pool's batch: one POST, one batch on the server. */
static void test_batch(void **state) {
    fixture *f = *state;
    int before = n_batches(f);
    job j[3];
    cz_gen_job g[3];
    for (int i = 0; i < 3; i++) {
        char id[32];
        snprintf(id, sizeof id, "batch-%d", i);
        job_make(&j[i], f, id, "dreamy synthwave, 100 bpm", 2.5, 10 + (uint64_t)i, NULL);
    }
    run_batch(f, j, 3, g);
    for (int i = 0; i < 3; i++) {
        expect_ok(&g[i], &j[i]);
        assert_int_equal((int)cz_json_num(j[i].out.chosen, "batch_size", 0), 3);
        assert_false(cJSON_IsTrue(cJSON_GetObjectItem(j[i].out.chosen, "resumed")));
        assert_string_equal(cz_json_str(j[i].out.chosen, "model_version"), "reference-1");
        cJSON *a = committed(&j[i]);
        assert_int_equal((int)(cz_json_num(a->child, "duration_s", 0) * 10), 25);
        cJSON_Delete(a);
    }
    cJSON *s = http_json(f, "/v1/stats");
    char sizes[128];
    batches_since(s, before, sizes, sizeof sizes);
    assert_string_equal(sizes, "3");
    cJSON_Delete(s);
    for (int i = 0; i < 3; i++)
        job_free(&j[i]);
}

/* A batch of four on a server that fits three: two batches of two. */
static void test_oom_splits(void **state) {
    fixture *f = *state;
    int before = n_batches(f);
    job j[4];
    cz_gen_job g[4];
    for (int i = 0; i < 4; i++) {
        char id[32];
        snprintf(id, sizeof id, "oom-%d", i);
        job_make(&j[i], f, id, "calm piano", 1.5, 20 + (uint64_t)i, NULL);
    }
    run_batch(f, j, 4, g);
    for (int i = 0; i < 4; i++) {
        expect_ok(&g[i], &j[i]);
        assert_int_equal((int)cz_json_num(j[i].out.chosen, "batch_size", 0), 2);
    }
    cJSON *s = http_json(f, "/v1/stats");
    char sizes[128];
    batches_since(s, before, sizes, sizeof sizes);
    assert_string_equal(sizes, "4:oom 2 2");
    for (int i = 0; i < 4; i++) /* one failed prediction each, then one that succeeded */
        assert_int_equal(count_by_key(s, "created_by_key", j[i].id), 2);
    cJSON_Delete(s);
    for (int i = 0; i < 4; i++)
        job_free(&j[i]);

    /* Alone and still out of memory: the job fails oom (the scheduler retries it). */
    job one;
    job_make(&one, f, "oom-alone", "calm piano reference:oom", 1.5, 1, NULL);
    run_batch(f, &one, 1, g);
    expect_failure(&g[0], &one, "oom");
    job_free(&one);
}

/* The same job again (a worker that restarted): the same prediction. */
static void test_resume_by_key(void **state) {
    fixture *f = *state;
    job a, b;
    cz_gen_job g[1];
    job_make(&a, f, "resume-1", "folk tune", 1.5, 5, NULL);
    run_batch(f, &a, 1, g);
    expect_ok(&g[0], &a);
    const char *first = cz_json_str(a.out.chosen, "prediction_id");
    job_make(&b, f, "resume-1", "folk tune", 1.5, 5, NULL);
    b.g.attempt = 2; /* a retry after the lease ran out names the same key */
    run_batch(f, &b, 1, g);
    expect_ok(&g[0], &b);
    assert_true(cJSON_IsTrue(cJSON_GetObjectItem(b.out.chosen, "resumed")));
    assert_string_equal(cz_json_str(b.out.chosen, "prediction_id"), first);
    cJSON *s = http_json(f, "/v1/stats");
    assert_int_equal(count_by_key(s, "started_by_key", "resume-1"), 1);
    cJSON_Delete(s);
    /* Another ask under the same job id is another prediction. */
    job c;
    job_make(&c, f, "resume-1", "another folk tune", 1.5, 5, NULL);
    run_batch(f, &c, 1, g);
    expect_ok(&g[0], &c);
    assert_false(cJSON_IsTrue(cJSON_GetObjectItem(c.out.chosen, "resumed")));
    s = http_json(f, "/v1/stats");
    assert_int_equal(count_by_key(s, "started_by_key", "resume-1"), 2);
    cJSON_Delete(s);
    job_free(&c);
    job_free(&a);
    job_free(&b);
}

static bool cancel_after_some(void *user) {
    job *j = user;
    return ++j->calls >= 4; /* about a second in */
}

static bool yes(void *user) {
    (void)user;
    return true;
}

static bool no(void *user) {
    (void)user;
    return false;
}

static bool canceled_on_server(const fixture *f, const char *prediction_or_null, int *n) {
    cJSON *s = http_json(f, "/v1/stats");
    const cJSON *list = cJSON_GetObjectItem(s, "canceled");
    *n = cJSON_GetArraySize(list);
    bool found = false;
    for (const cJSON *x = list->child; x && prediction_or_null; x = x->next)
        found |= !strcmp(x->valuestring, prediction_or_null);
    cJSON_Delete(s);
    return found;
}

/* A canceled job's prediction is deleted; a handed-back one keeps running. */
static void test_cancel_and_hand_back(void **state) {
    fixture *f = *state;
    int before, after;
    canceled_on_server(f, NULL, &before);
    job j;
    cz_gen_job g[1];
    job_make(&j, f, "cancel-1", "ambient reference:slow", 3, 1, NULL);
    j.hooks = (cz_gen_hooks){.canceled = cancel_after_some, .stopping = no, .user = &j};
    run_batch(f, &j, 1, g);
    assert_int_equal(g[0].rc, 1);
    assert_int_equal(j.out.n_files, 0);
    canceled_on_server(f, NULL, &after);
    assert_int_equal(after, before + 1);
    job_free(&j);

    job k;
    job_make(&k, f, "handback-1", "ambient reference:slow", 3, 1, NULL);
    k.hooks = (cz_gen_hooks){.canceled = cancel_after_some, .stopping = yes, .user = &k};
    run_batch(f, &k, 1, g);
    assert_int_equal(g[0].rc, 1);
    canceled_on_server(f, NULL, &after);
    assert_int_equal(after, before + 1); /* left running for the next worker */
    cJSON *s = http_json(f, "/v1/stats");
    assert_int_equal(count_by_key(s, "started_by_key", "handback-1"), 1);
    cJSON_Delete(s);
    job_free(&k);
}

/* Declared parameters reach the model and change the music; undeclared or
 * out of range ones are refused before anything is sent. */
static void test_parameters(void **state) {
    fixture *f = *state;
    cJSON *models = http_json(f, "/v1/models");
    const cJSON *m = cJSON_GetArrayItem(cJSON_GetObjectItem(models, "models"), 0);
    assert_non_null(cJSON_GetObjectItem(cJSON_GetObjectItem(m, "parameters"), "temperature"));
    cJSON_Delete(models);

    job j[4];
    cz_gen_job g[4];
    job_make(&j[0], f, "param-0", "pop song", 2, 9, NULL);
    job_make(&j[1], f, "param-1", "pop song", 2, 9, "{\"temperature\":1.6,\"top_p\":0.5}");
    job_make(&j[2], f, "param-2", "pop song", 2, 9, "{\"cfg_scale\":2}");
    job_make(&j[3], f, "param-3", "pop song", 2, 9, "{\"temperature\":7}");
    run_batch(f, j, 4, g);
    expect_ok(&g[0], &j[0]);
    expect_ok(&g[1], &j[1]);
    expect_failure(&g[2], &j[2], "invalid_input");
    assert_non_null(strstr(g[2].err.msg, "cfg_scale"));
    assert_non_null(strstr(g[2].err.msg, "temperature")); /* says what it declares */
    expect_failure(&g[3], &j[3], "invalid_input");
    cJSON *a0 = committed(&j[0]), *a1 = committed(&j[1]);
    assert_string_not_equal(cz_json_str(a0->child, "sha256"), cz_json_str(a1->child, "sha256"));
    cJSON_Delete(a0);
    cJSON_Delete(a1);
    cJSON *s = http_json(f, "/v1/stats");
    assert_int_equal(count_by_key(s, "created_by_key", "param-2"), 0); /* never sent */
    cJSON_Delete(s);
    for (int i = 0; i < 4; i++)
        job_free(&j[i]);
}

static void test_failure_classes(void **state) {
    fixture *f = *state;
    job j[3];
    cz_gen_job g[3];
    job_make(&j[0], f, "fail-0", "x reference:error", 1, 1, NULL);
    job_make(&j[1], f, "fail-1", "x reference:unavailable", 1, 1, NULL);
    job_make(&j[2], f, "fail-2", "x reference:slow", 1, 1, NULL); /* 5 s timeout */
    for (int i = 0; i < 3; i++)
        run_batch(f, &j[i], 1, &g[i]);
    expect_failure(&g[0], &j[0], "model_error");
    expect_failure(&g[1], &j[1], "backend_unavailable");
    expect_failure(&g[2], &j[2], "timeout");
    int n;
    cJSON *s = http_json(f, "/v1/stats");
    const cJSON *canceled = cJSON_GetObjectItem(s, "canceled");
    n = cJSON_GetArraySize(canceled);
    assert_true(n >= 1); /* the timed-out prediction was canceled */
    cJSON_Delete(s);
    for (int i = 0; i < 3; i++)
        job_free(&j[i]);

    /* Nothing listening. */
    setenv("CADENZA_HTTP2_MODEL_URL", "http://127.0.0.1:1", 1);
    cz_err err = {{0}};
    cz_backends *b = cz_backends_open(&f->cfg, &err);
    assert_non_null(b);
    job k;
    job_make(&k, f, "fail-3", "x", 1, 1, NULL);
    cz_gen_job kg = {.req = &k.g, .hooks = &k.hooks, .out = &k.out};
    cz_backends_generate_batch(b, &kg, 1);
    expect_failure(&kg, &k, "backend_unavailable");
    job_free(&k);
    cz_backends_close(b);
    setenv("CADENZA_HTTP2_MODEL_URL", f->url, 1);
}

int main(void) {
    cz_mem_init();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch),         cmocka_unit_test(test_oom_splits),
        cmocka_unit_test(test_resume_by_key), cmocka_unit_test(test_cancel_and_hand_back),
        cmocka_unit_test(test_parameters),    cmocka_unit_test(test_failure_classes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
