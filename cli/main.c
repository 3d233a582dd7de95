/* cadenzactl: the command line for users and operators.
 *
 *   cadenzactl keys create --tenant NAME --role ROLE [--rate-per-s R] [--burst N]
 *   cadenzactl keys list [--tenant NAME]
 *   cadenzactl keys revoke ID|PREFIX
 *   cadenzactl quota set --tenant NAME --minutes M|none
 *   cadenzactl submit --prompt TEXT [--duration S] [--seed N] [--key K]
 *                     [--tempo BPM] [--target-lufs L] [--wait]
 *   cadenzactl get ID
 *   cadenzactl watch ID
 *   cadenzactl catalog import DIR [--artist NAME]
 *   cadenzactl catalog seed --tracks N [--seed S]
 *   cadenzactl pools list
 *   cadenzactl pools scale NAME N [--reason TEXT]
 *   cadenzactl pools autoscale NAME on|off [--reason TEXT]
 *   cadenzactl models list|show NAME [--all]
 *   cadenzactl models set NAME [--split NAME@V=W,...] [--retire V,...] [--activate V,...]
 *                              [--max-duration V=S,...] [--reason TEXT]
 *   cadenzactl models promote NAME VERSION | rollback NAME [--reason TEXT]
 *   cadenzactl status
 *
 * `pools` talks to the API with an operator (or admin) key; `status` too, and
 * reads the scheduler's metrics (CADENZA_SCHED_METRICS_URL) for the rest.
 * `models` talks to the API as well: any key lists the models, changing
 * them needs an operator's (or admin's).
 * `keys` and `quota` talk to Postgres (CADENZA_DATABASE_URL): they are how
 * the first key of a tenant comes to exist, and they are an operator's
 * tools, so they need the database's credentials rather than an API key. `catalog import`
 * fingerprints every audio file in DIR (chromaprint, common/music/fingerprint.c) into
 * catalog_tracks, which the post workers check every master against; it also talks to Postgres
 * directly, as an operator's tool. A file already imported (same bytes) is reported, not
 * duplicated. Each file is also analysed (common/music/analysis.c) into its playlist row in
 * `tracks` ('c' || its id), also when it was imported before, so running the import again fills
 * rows missing. Everything else talks to the API (CADENZA_API_URL, CADENZA_API_KEY), `review` with
 * a curator's key: list the queue, claim a task (exit 3 when nothing waits), approve, reject,
 * regenerate or release it; `review policy` sets a tenant's review policy in Postgres, as an
 * operator's tool. Errors are one line on stderr and a non-zero exit: 1 for a failed operation, 2
 * for a usage error. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/catalog_seed.h"
#include "common/buf.h"
#include "common/config.h"
#include "common/db/catalog.h"
#include "common/db/db.h"
#include "common/db/keys.h"
#include "common/db/playlists.h"
#include "common/db/review.h"
#include "common/hash.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/music/analysis.h"
#include "common/music/fingerprint.h"

static int usage(void) {
    fprintf(stderr,
            "usage: cadenzactl keys create --tenant NAME --role submitter|curator|operator|admin\n"
            "                              [--rate-per-s R] [--burst N]\n"
            "       cadenzactl keys list [--tenant NAME]\n"
            "       cadenzactl keys revoke ID|PREFIX\n"
            "       cadenzactl quota set --tenant NAME --minutes M|none\n"
            "       cadenzactl submit --prompt TEXT [--duration S] [--seed N] [--key K]\n"
            "                         [--tempo BPM] [--target-lufs L] [--wait]\n"
            "       cadenzactl get ID\n"
            "       cadenzactl watch ID\n"
            "       cadenzactl catalog import DIR [--artist NAME]\n"
            "       cadenzactl catalog seed --tracks N [--seed S]\n"
            "       cadenzactl review list [--limit N]\n"
            "       cadenzactl review claim [--lease S]\n"
            "       cadenzactl review approve|regenerate JOB [--reason TEXT]\n"
            "       cadenzactl review reject JOB --reason TEXT\n"
            "       cadenzactl review release JOB\n"
            "       cadenzactl review policy --tenant NAME auto|always\n"
            "       cadenzactl pools list\n"
            "       cadenzactl pools scale NAME N [--reason TEXT]\n"
            "       cadenzactl pools autoscale NAME on|off [--reason TEXT]\n"
            "       cadenzactl models list [--all]\n"
            "       cadenzactl models show NAME [--all]\n"
            "       cadenzactl models set NAME [--split NAME@V=W,...] [--retire V,...]\n"
            "                         [--activate V,...] [--max-duration V=S,...] [--reason T]\n"
            "       cadenzactl models promote NAME VERSION [--reason TEXT]\n"
            "       cadenzactl models rollback NAME [--reason TEXT]\n"
            "       cadenzactl status\n");
    return 2;
}

/* Finds "--name value" in argv. */
static const char *opt(int argc, char **argv, const char *name) {
    for (int i = 0; i + 1 < argc; i++)
        if (!strcmp(argv[i], name))
            return argv[i + 1];
    return NULL;
}

static bool flag(int argc, char **argv, const char *name) {
    for (int i = 0; i < argc; i++)
        if (!strcmp(argv[i], name))
            return true;
    return false;
}

/* ---- keys ------------------------------------------------------------------ */

static PGconn *connect_db(void) {
    cz_config cfg;
    cz_config_load(&cfg);
    cz_err err;
    PGconn *c = cz_db_connect(cfg.database_url, &err);
    if (!c)
        fprintf(stderr, "cadenzactl: %s\n", err.msg);
    return c;
}

/* Reads a positive number option; @returns 0 (absent or fine) or -1 (told). */
static int positive(int argc, char **argv, const char *name, double max, double *out) {
    const char *v = opt(argc, argv, name);
    if (!v)
        return 0;
    char *end;
    double d = strtod(v, &end);
    if (end == v || *end || !(d > 0) || d > max) {
        fprintf(stderr, "cadenzactl: %s must be a number above 0 and at most %g\n", name, max);
        return -1;
    }
    *out = d;
    return 0;
}

static int keys_create(int argc, char **argv) {
    const char *tenant = opt(argc, argv, "--tenant"), *role = opt(argc, argv, "--role");
    if (!tenant || !role)
        return usage();
    if (!*tenant || strlen(tenant) >= CZ_TENANT_MAX) {
        fprintf(stderr, "cadenzactl: --tenant must be 1 to %d characters\n", CZ_TENANT_MAX - 1);
        return 2;
    }
    double rate = 0, burst = 0;
    if (positive(argc, argv, "--rate-per-s", 1e6, &rate) ||
        positive(argc, argv, "--burst", 1e6, &burst))
        return 2;
    cz_key_options o = {.rate_per_s = rate, .rate_burst = (int)burst};
    if (burst && o.rate_burst < 1) {
        fprintf(stderr, "cadenzactl: --burst must be at least 1\n");
        return 2;
    }
    PGconn *c = connect_db();
    if (!c)
        return 1;
    char key[CZ_KEY_LEN];
    long long id;
    cz_err err;
    int rc = cz_db_key_create(c, tenant, role, &o, key, &id, &err);
    PQfinish(c);
    if (rc) {
        fprintf(stderr, "cadenzactl: cannot create key: %s\n", err.msg);
        return 1;
    }
    printf("%s\n", key);
    fprintf(stderr, "key %lld (%.11s...) for tenant %s, role %s: shown once, store it now\n", id,
            key, tenant, role);
    return 0;
}

/* One JSON object per line: id, prefix, tenant, role, limits, timestamps. */
static int keys_list(int argc, char **argv) {
    PGconn *c = connect_db();
    if (!c)
        return 1;
    cz_err err;
    char *json = cz_db_key_list(c, opt(argc, argv, "--tenant"), &err);
    PQfinish(c);
    if (!json) {
        fprintf(stderr, "cadenzactl: cannot list keys: %s\n", err.msg);
        return 1;
    }
    cJSON *list = cJSON_Parse(json);
    free(json);
    for (cJSON *k = list ? list->child : NULL; k; k = k->next) {
        char *line = cz_json_print(k);
        printf("%s\n", line);
        free(line);
    }
    cJSON_Delete(list);
    return 0;
}

static int keys_revoke(int argc, char **argv) {
    if (argc != 1 || !*argv[0])
        return usage();
    PGconn *c = connect_db();
    if (!c)
        return 1;
    cz_err err;
    int rc = cz_db_key_revoke(c, argv[0], &err);
    PQfinish(c);
    if (rc < 0)
        fprintf(stderr, "cadenzactl: cannot revoke: %s\n", err.msg);
    else if (rc == 0)
        fprintf(stderr, "cadenzactl: no unrevoked key with id or prefix %s\n", argv[0]);
    else if (rc == 2)
        fprintf(stderr, "cadenzactl: several keys have prefix %s; revoke by id (keys list)\n",
                argv[0]);
    else
        fprintf(stderr, "revoked %s\n", argv[0]);
    return rc == 1 ? 0 : 1;
}

static int quota_set(int argc, char **argv) {
    const char *tenant = opt(argc, argv, "--tenant"), *m = opt(argc, argv, "--minutes");
    if (!tenant || !m)
        return usage();
    double minutes = -1;
    if (strcmp(m, "none")) {
        char *end;
        minutes = strtod(m, &end);
        if (end == m || *end || !(minutes >= 0) || minutes > 1e9) {
            fprintf(stderr, "cadenzactl: --minutes must be a number >= 0, or none\n");
            return 2;
        }
    }
    PGconn *c = connect_db();
    if (!c)
        return 1;
    cz_err err;
    int rc = cz_db_tenant_set_quota(c, tenant, minutes, &err);
    PQfinish(c);
    if (rc < 0)
        fprintf(stderr, "cadenzactl: cannot set the quota: %s\n", err.msg);
    else if (rc == 0)
        fprintf(stderr, "cadenzactl: no tenant %s (create a key for it first)\n", tenant);
    return rc == 1 ? 0 : 1;
}

/* ---- API calls ------------------------------------------------------------- */

typedef struct response {
    long status;
    cz_buf body; /* body.data is NULL when the answer had no body */
} response;

static size_t collect(char *data, size_t size, size_t n, void *user) {
    response *r = user;
    cz_buf_append(&r->body, data, size * n);
    return size * n;
}

/* Calls the API. @returns 0 with @p out filled (free with cz_buf_free(&out->body)), or -1 after
 * printing why. */
static int call(const char *method, const char *path, const char *body, response *out) {
    const char *base = getenv("CADENZA_API_URL"), *key = getenv("CADENZA_API_KEY");
    if (!base || !key) {
        fprintf(stderr, "cadenzactl: set CADENZA_API_URL and CADENZA_API_KEY "
                        "(e.g. source .cadenza/env)\n");
        return -1;
    }
    char url[2048], auth[256];
    snprintf(url, sizeof url, "%s%s", base, path);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    CURL *h = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, auth);
    headers = curl_slist_append(headers, "Content-Type: application/json");
    memset(out, 0, sizeof *out);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 30L);
    if (body)
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "cadenzactl: cannot reach %s: %s\n", base, curl_easy_strerror(rc));
        cz_buf_free(&out->body);
        return -1;
    }
    return 0;
}

/* Prints an API error as one line: the problem's detail (and field). */
static int api_error(const response *r) {
    cJSON *p = cJSON_Parse(r->body.data ? r->body.data : "");
    const char *detail = cz_json_str(p, "detail"), *field = cz_json_str(p, "field");
    fprintf(stderr, "cadenzactl: HTTP %ld: %s%s%s%s\n", r->status, detail ? detail : "error",
            field ? " (field " : "", field ? field : "", field ? ")" : "");
    cJSON_Delete(p);
    return 1;
}

static const char *const terminal[] = {"succeeded", "failed", "canceled", "rejected", NULL};

static bool is_terminal(const char *state) {
    for (int i = 0; state && terminal[i]; i++)
        if (!strcmp(state, terminal[i]))
            return true;
    return false;
}

/* ---- following a job live ---------------------------------------------- */

/* What a live view of a job knows: the last event's id, state, stage and
 * percentage, and the bytes of an event still arriving. */
typedef struct watch {
    cz_buf buf;        /* the stream's bytes after the last whole event */
    long long last_id; /* -1: none yet */
    char state[32], stage[32];
    double percent;
    bool tty, ended;
} watch;

/* Draws the job's line: in place on a terminal, one line per event elsewhere. */
static void draw(const watch *w) {
    if (!w->tty) {
        fprintf(stderr, "%s %s %.0f%%\n", w->state, w->stage[0] ? w->stage : "-", w->percent);
        return;
    }
    char bar[31];
    int filled = (int)(w->percent * 30 / 100 + 0.5);
    for (int i = 0; i < 30; i++)
        bar[i] = i < filled ? '#' : '.';
    bar[30] = '\0';
    fprintf(stderr, "\r%-14s [%s] %5.1f%%  %-12s", w->state, bar, w->percent, w->stage);
    if (w->ended)
        fputc('\n', stderr);
}

/* One complete SSE event: "id:", "event:" and "data:" lines. */
static void on_event(watch *w, char *text) {
    long long id = -1;
    const char *data = NULL;
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (!strncmp(line, "id: ", 4))
            id = atoll(line + 4);
        else if (!strncmp(line, "data: ", 6))
            data = line + 6;
    }
    cJSON *d = data ? cJSON_Parse(data) : NULL;
    const char *state = cz_json_str(d, "state"), *stage = cz_json_str(d, "stage");
    if (state) {
        w->last_id = id >= 0 ? id : w->last_id;
        bool moved = strcmp(state, w->state) != 0;
        snprintf(w->state, sizeof w->state, "%s", state);
        if (stage)
            snprintf(w->stage, sizeof w->stage, "%s", stage);
        w->percent = cJSON_HasObjectItem(d, "percent") ? cz_json_num(d, "percent", 0)
                     : !strcmp(state, "succeeded")     ? 100
                                                       : w->percent;
        w->ended = is_terminal(state);
        if (moved || w->tty || w->ended)
            draw(w);
    }
    cJSON_Delete(d);
}

static size_t on_bytes(char *data, size_t size, size_t n, void *user) {
    watch *w = user;
    cz_buf_append(&w->buf, data, size * n);
    char *end;
    while ((end = strstr(w->buf.data, "\n\n"))) { // events end with a blank line
        *end = '\0';
        on_event(w, w->buf.data);
        size_t used = (size_t)(end + 2 - w->buf.data);
        memmove(w->buf.data, end + 2, w->buf.len - used + 1);
        w->buf.len -= used;
    }
    return size * n;
}

/* Follows GET /v1/jobs/{id}/events until the job ends, reconnecting with
 * Last-Event-ID when the stream breaks; then prints the job on stdout.
 * @returns 0 when it succeeded, 1 otherwise. */
static int follow(const char *id) {
    const char *base = getenv("CADENZA_API_URL"), *key = getenv("CADENZA_API_KEY");
    if (!base || !key) {
        fprintf(stderr, "cadenzactl: set CADENZA_API_URL and CADENZA_API_KEY "
                        "(e.g. source .cadenza/env)\n");
        return 1;
    }
    watch w = {.last_id = -1, .tty = isatty(STDERR_FILENO)};
    char url[2048], auth[256], resume[64];
    snprintf(url, sizeof url, "%s/v1/jobs/%s/events", base, id);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", key);
    long status = 0;
    for (int tries = 0; !w.ended && tries < 20; tries++) {
        CURL *h = curl_easy_init();
        struct curl_slist *headers = curl_slist_append(NULL, auth);
        headers = curl_slist_append(headers, "Accept: text/event-stream");
        if (w.last_id >= 0) {
            snprintf(resume, sizeof resume, "Last-Event-ID: %lld", w.last_id);
            headers = curl_slist_append(headers, resume);
        }
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_bytes);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &w);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L); // heartbeats keep it above
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
        CURLcode rc = curl_easy_perform(h);
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_slist_free_all(headers);
        curl_easy_cleanup(h);
        cz_buf_reset(&w.buf);
        if (rc == CURLE_OK && status != 200)
            break; // an answer, not a stream: reported below
        if (!w.ended)
            sleep(1);
    }
    cz_buf_free(&w.buf);
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    response r;
    if (call("GET", path, NULL, &r))
        return 1;
    if (r.status != 200) {
        int rc = api_error(&r);
        cz_buf_free(&r.body);
        return rc;
    }
    cJSON *job = cJSON_Parse(r.body.data);
    const char *state = cz_json_str(job, "state");
    int rc = 1;
    if (!is_terminal(state))
        fprintf(stderr, "cadenzactl: lost the job's event stream; it is %s\n",
                state ? state : "unknown");
    else
        rc = strcmp(state, "succeeded") ? 1 : 0;
    printf("%s\n", r.body.data);
    cJSON_Delete(job);
    cz_buf_free(&r.body);
    return rc;
}

static int add_number(cJSON *req, int argc, char **argv, const char *flag_name, const char *field) {
    const char *v = opt(argc, argv, flag_name);
    if (!v)
        return 0;
    char *end;
    double d = strtod(v, &end);
    if (*end || end == v) {
        fprintf(stderr, "cadenzactl: %s must be a number\n", flag_name);
        return -1;
    }
    cJSON_AddNumberToObject(req, field, d);
    return 0;
}

static int submit(int argc, char **argv) {
    const char *prompt = opt(argc, argv, "--prompt");
    if (!prompt)
        return usage();
    cJSON *req = cJSON_CreateObject();
    cJSON_AddStringToObject(req, "prompt", prompt);
    if (opt(argc, argv, "--key"))
        cJSON_AddStringToObject(req, "key", opt(argc, argv, "--key"));
    if (add_number(req, argc, argv, "--duration", "duration_s") ||
        add_number(req, argc, argv, "--seed", "seed") ||
        add_number(req, argc, argv, "--tempo", "tempo_bpm")) {
        cJSON_Delete(req);
        return 2;
    }
    const char *lufs = opt(argc, argv, "--target-lufs");
    if (lufs) {
        cJSON *l = cJSON_AddObjectToObject(req, "loudness");
        cJSON_AddNumberToObject(l, "target_lufs", atof(lufs));
    }
    char *body = cz_json_print(req);
    cJSON_Delete(req);
    response r;
    int rc = call("POST", "/v1/jobs", body, &r);
    free(body);
    if (rc)
        return 1;
    if (r.status != 202 && r.status != 200) {
        rc = api_error(&r);
        cz_buf_free(&r.body);
        return rc;
    }
    cJSON *job = cJSON_Parse(r.body.data);
    const char *id = cz_json_str(job, "id");
    if (!flag(argc, argv, "--wait") || !id) {
        printf("%s\n", r.body.data);
    } else {
        fprintf(stderr, "job %s\n", id);
        rc = follow(id);
    }
    cJSON_Delete(job);
    cz_buf_free(&r.body);
    return rc;
}

static int get(const char *id) {
    char path[128];
    if (strlen(id) > 64) {
        fprintf(stderr, "cadenzactl: %s is not a job id\n", id);
        return 2;
    }
    snprintf(path, sizeof path, "/v1/jobs/%s", id);
    response r;
    if (call("GET", path, NULL, &r))
        return 1;
    int rc = r.status == 200 ? (printf("%s\n", r.body.data), 0) : api_error(&r);
    cz_buf_free(&r.body);
    return rc;
}

/* ---- catalogue ------------------------------------------------------------- */

static int by_name(const struct dirent **a, const struct dirent **b) {
    return strcmp((*a)->d_name, (*b)->d_name);
}

/* Fingerprints one file and records it; prints one JSON line. */
static int import_one(PGconn *c, const char *path, const char *name, const char *artist) {
    cz_err err;
    cz_fp fp;
    char sha[CZ_SHA256_HEX], title[256];
    if (cz_sha256_file(path, sha, NULL, &err) || cz_fp_compute_file(path, &fp, &err)) {
        fprintf(stderr, "cadenzactl: skipping %s: %s\n", path, err.msg);
        return 1;
    }
    // The title is the file name without its extension.
    snprintf(title, sizeof title, "%s", name);
    char *dot = strrchr(title, '.');
    if (dot && dot != title)
        *dot = '\0';
    // Where the file is, so curators can listen to a track a job matched.
    char real[PATH_MAX + 8] = "";
    char *abs = realpath(path, NULL);
    if (abs)
        snprintf(real, sizeof real, "file://%s", abs);
    free(abs);
    cz_catalog_track t = {.title = title,
                          .artist = artist,
                          .source_name = name,
                          .source_uri = real[0] ? real : NULL,
                          .source_sha256 = sha,
                          .fp = &fp};
    int64_t id;
    bool created;
    int rc = cz_db_catalog_import(c, &t, &id, &created, &err);
    // Its playlist row: analysed now, also for a file imported before
    // features existed (re-running the import fills what is missing).
    int has = rc ? -1 : cz_db_playlist_has_catalog_track(c, id, &err);
    cz_track_features f;
    const char *features = has > 0 ? "exists" : "added";
    if (rc == 0 && has < 0)
        rc = -1;
    if (rc == 0 && has == 0 &&
        (cz_analysis_file(path, &f, &err) ||
         cz_db_playlist_add_catalog_track(c, id, &f, &err) < 0)) {
        fprintf(stderr,
                "cadenzactl: catalogue track %lld has no features: %s (import it again once "
                "that is fixed)\n",
                (long long)id, err.msg);
        cz_fp_free(&fp);
        return 1;
    }
    if (rc) {
        fprintf(stderr, "cadenzactl: cannot import %s: %s\n", path, err.msg);
    } else {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "id", (double)id);
        cJSON_AddStringToObject(o, "status", created ? "imported" : "exists");
        cJSON_AddStringToObject(o, "file", path);
        cJSON_AddStringToObject(o, "title", title);
        cJSON_AddNumberToObject(o, "duration_s", fp.duration_s);
        cJSON_AddNumberToObject(o, "fingerprint_items", (double)fp.n);
        cJSON_AddStringToObject(o, "features", features);
        if (has == 0) {
            cJSON_AddNumberToObject(o, "tempo_bpm", round(f.tempo_bpm * 100) / 100);
            cJSON_AddStringToObject(o, "key", cz_analysis_key_name(f.key));
            cJSON_AddStringToObject(o, "mode", f.mode ? "major" : "minor");
        }
        char *line = cz_json_print(o);
        printf("%s\n", line);
        free(line);
        cJSON_Delete(o);
    }
    cz_fp_free(&fp);
    return rc ? 1 : 0;
}

static int catalog_import(int argc, char **argv) {
    if (argc < 1)
        return usage();
    const char *dir = argv[0], *artist = opt(argc, argv, "--artist");
    struct dirent **names;
    int n = scandir(dir, &names, NULL, by_name);
    if (n < 0) {
        fprintf(stderr, "cadenzactl: cannot read folder %s: %s\n", dir, strerror(errno));
        return 1;
    }
    cz_config cfg;
    cz_config_load(&cfg);
    cz_err err;
    PGconn *c = cz_db_connect(cfg.database_url, &err);
    if (!c)
        fprintf(stderr, "cadenzactl: %s\n", err.msg);
    int failed = 0, files = 0;
    for (int i = 0; i < n; i++) {
        char path[4096];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
        if (c && names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
            files++;
            failed += import_one(c, path, names[i]->d_name, artist);
        }
        free(names[i]);
    }
    free(names);
    PQfinish(c);
    if (!c)
        return 1;
    if (files == 0)
        fprintf(stderr, "cadenzactl: no audio files in %s\n", dir);
    else if (failed)
        fprintf(stderr, "cadenzactl: %d of %d files were not imported\n", failed, files);
    return failed || files == 0 ? 1 : 0;
}

/* ---- review ---------------------------------------------------------------- */

/* A job id on the command line: a UUID, or a usage error. */
static bool job_arg(int argc, char **argv) {
    if (argc >= 1 && strlen(argv[0]) == 36 && strspn(argv[0], "0123456789abcdef-") == 36)
        return true;
    fprintf(stderr, "cadenzactl: %s is not a job id\n", argc >= 1 ? argv[0] : "(none)");
    return false;
}

/* Prints a 2xx answer's body on stdout, or the problem as one line. */
static int print_answer(response *r, long want) {
    int rc =
        r->status == want ? (printf("%s\n", r->body.data ? r->body.data : ""), 0) : api_error(r);
    cz_buf_free(&r->body);
    return rc;
}

static int review_list(int argc, char **argv) {
    const char *limit = opt(argc, argv, "--limit");
    char path[64] = "/v1/review/queue";
    if (limit) {
        if (strspn(limit, "0123456789") != strlen(limit) || !*limit || strlen(limit) > 3) {
            fprintf(stderr, "cadenzactl: --limit must be a number from 1 to 100\n");
            return 2;
        }
        snprintf(path, sizeof path, "/v1/review/queue?limit=%s", limit);
    }
    response r;
    return call("GET", path, NULL, &r) ? 1 : print_answer(&r, 200);
}

static int review_claim(int argc, char **argv) {
    const char *lease = opt(argc, argv, "--lease");
    char body[64] = "";
    if (lease) {
        if (strspn(lease, "0123456789") != strlen(lease) || !*lease || strlen(lease) > 5) {
            fprintf(stderr, "cadenzactl: --lease must be seconds, 1 to 3600\n");
            return 2;
        }
        snprintf(body, sizeof body, "{\"lease_s\":%s}", lease);
    }
    response r;
    if (call("POST", "/v1/review/claim", body[0] ? body : NULL, &r))
        return 1;
    if (r.status == 204) {
        cz_buf_free(&r.body);
        fprintf(stderr, "cadenzactl: nothing is waiting for review\n");
        return 3;
    }
    return print_answer(&r, 200);
}

/* approve, reject, regenerate: POST /v1/review/JOB/<what> with the reason. */
static int review_decide(const char *what, int argc, char **argv) {
    if (!job_arg(argc, argv))
        return 2;
    const char *reason = opt(argc, argv, "--reason");
    if (!reason && !strcmp(what, "reject")) {
        fprintf(stderr, "cadenzactl: review reject needs --reason TEXT\n");
        return 2;
    }
    char *body = NULL;
    if (reason) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "reason", reason);
        body = cz_json_print(o);
        cJSON_Delete(o);
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/review/%s/%s", argv[0], what);
    response r;
    int rc = call("POST", path, body, &r);
    free(body);
    return rc ? 1 : print_answer(&r, 200);
}

static int review_release(int argc, char **argv) {
    if (!job_arg(argc, argv))
        return 2;
    char path[128];
    snprintf(path, sizeof path, "/v1/review/%s/release", argv[0]);
    response r;
    if (call("POST", path, NULL, &r))
        return 1;
    if (r.status != 204)
        return print_answer(&r, 204);
    cz_buf_free(&r.body);
    fprintf(stderr, "released %s\n", argv[0]);
    return 0;
}

static int review_policy(int argc, char **argv) {
    const char *tenant = opt(argc, argv, "--tenant"), *policy = NULL;
    for (int i = 0; i < argc; i++) // the one argument that is not --tenant's
        if (!strcmp(argv[i], "--tenant"))
            i++;
        else
            policy = policy ? "" : argv[i];
    if (!tenant || !policy || (strcmp(policy, "auto") && strcmp(policy, "always")))
        return usage();
    PGconn *c = connect_db();
    if (!c)
        return 1;
    cz_err err;
    int rc = cz_db_tenant_set_review_policy(c, tenant, policy, &err);
    PQfinish(c);
    if (rc < 0)
        fprintf(stderr, "cadenzactl: cannot set the review policy: %s\n", err.msg);
    else if (rc == 0)
        fprintf(stderr, "cadenzactl: no tenant %s (create a key for it first)\n", tenant);
    else
        fprintf(stderr, "tenant %s: review policy %s\n", tenant, policy);
    return rc == 1 ? 0 : 1;
}

static int review(int argc, char **argv) {
    const char *what = argc > 0 ? argv[0] : "";
    argc--, argv++;
    if (!strcmp(what, "list"))
        return review_list(argc, argv);
    if (!strcmp(what, "claim"))
        return review_claim(argc, argv);
    if (!strcmp(what, "approve") || !strcmp(what, "reject") || !strcmp(what, "regenerate"))
        return review_decide(what, argc, argv);
    if (!strcmp(what, "release"))
        return review_release(argc, argv);
    if (!strcmp(what, "policy"))
        return review_policy(argc, argv);
    return usage();
}

/* ---- pools (operators) ------------------------------------------------------ */

/* Prints one pool as a table row. */
static void pool_row(const cJSON *p) {
    const cJSON *run = cJSON_GetObjectItem(p, "running"), *lag = cJSON_GetObjectItem(p, "lag"),
                *tp = cJSON_GetObjectItem(p, "throughput_per_s");
    char r[16] = "-", l[24] = "-", t[24] = "-";
    if (cJSON_IsNumber(run))
        snprintf(r, sizeof r, "%d", run->valueint);
    if (cJSON_IsNumber(lag))
        snprintf(l, sizeof l, "%.0f", lag->valuedouble);
    if (cJSON_IsNumber(tp))
        snprintf(t, sizeof t, "%.2f", tp->valuedouble);
    printf("%-10s %4.0f %4.0f %7.0f %7s %9s %6s %8.0f %8.0f %-3s %s\n", cz_json_str(p, "name"),
           cz_json_num(p, "min", 0), cz_json_num(p, "max", 0), cz_json_num(p, "desired", 0), r, l,
           t, cz_json_num(p, "target_lag_per_replica", 0), cz_json_num(p, "cooldown_s", 0),
           cJSON_IsTrue(cJSON_GetObjectItem(p, "autoscale")) ? "on" : "off",
           cz_json_str(p, "updated_by") ? cz_json_str(p, "updated_by") : "");
}

static void pool_header(void) {
    printf("%-10s %4s %4s %7s %7s %9s %6s %8s %8s %-3s %s\n", "POOL", "MIN", "MAX", "DESIRED",
           "RUNNING", "LAG", "MSG/S", "LAG/REP", "COOLDOWN", "AS", "CHANGED BY");
}

static int pools_list(void) {
    response r;
    if (call("GET", "/v1/pools", NULL, &r))
        return 1;
    int rc = r.status == 200 ? 0 : api_error(&r);
    cJSON *list = rc ? NULL : cJSON_Parse(r.body.data);
    if (list) {
        pool_header();
        const cJSON *p;
        cJSON_ArrayForEach(p, cJSON_GetObjectItem(list, "data")) pool_row(p);
    }
    cJSON_Delete(list);
    cz_buf_free(&r.body);
    return rc;
}

/* PUT /v1/pools/NAME with @p change (consumed); prints the pool after it. */
static int pool_put(const char *name, cJSON *change, int argc, char **argv) {
    const char *reason = opt(argc, argv, "--reason");
    char why[200];
    if (!reason) {
        const char *user = getenv("USER");
        snprintf(why, sizeof why, "cadenzactl pools by %s", user ? user : "an operator");
        reason = why;
    }
    cJSON_AddStringToObject(change, "reason", reason);
    char *body = cz_json_print(change), path[128];
    cJSON_Delete(change);
    snprintf(path, sizeof path, "/v1/pools/%s", name);
    response r;
    int rc = call("PUT", path, body, &r) ? 1 : 0;
    free(body);
    if (rc)
        return rc;
    if (r.status != 200) {
        rc = api_error(&r);
    } else {
        cJSON *p = cJSON_Parse(r.body.data);
        pool_header();
        pool_row(p);
        cJSON_Delete(p);
    }
    cz_buf_free(&r.body);
    return rc;
}

static bool pool_name_ok(const char *name) {
    size_t n = strlen(name);
    return n > 0 && n < 32 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static int pools_scale(int argc, char **argv) {
    char *end;
    long n = argc >= 2 ? strtol(argv[1], &end, 10) : -1;
    if (argc < 2 || !pool_name_ok(argv[0]) || *end || n < 0 || n > 64) {
        fprintf(stderr, "cadenzactl: pools scale NAME N: N is a whole number from 0 to 64\n");
        return 2;
    }
    cJSON *change = cJSON_CreateObject();
    cJSON_AddNumberToObject(change, "desired", (double)n);
    return pool_put(argv[0], change, argc, argv);
}

static int pools_autoscale(int argc, char **argv) {
    if (argc < 2 || !pool_name_ok(argv[0]) || (strcmp(argv[1], "on") && strcmp(argv[1], "off"))) {
        fprintf(stderr, "cadenzactl: pools autoscale NAME on|off\n");
        return 2;
    }
    cJSON *change = cJSON_CreateObject();
    cJSON_AddBoolToObject(change, "autoscale", !strcmp(argv[1], "on"));
    return pool_put(argv[0], change, argc, argv);
}

/* ---- models (operators change them; any key lists them) --------------------- */

/* Prints each version of model object @p m as a table row. */
static void model_rows(const cJSON *m) {
    const cJSON *v;
    cJSON_ArrayForEach(v, cJSON_GetObjectItem(m, "versions")) {
        const cJSON *limits = cJSON_GetObjectItem(v, "limits");
        printf("%-12s %-8s %-8s %6.0f %-6s %-9s %-10s %7.0f %-5s %g\n", cz_json_str(m, "name"),
               cz_json_str(v, "version"), cz_json_str(v, "status"), cz_json_num(v, "weight", 0),
               cz_json_str(v, "tier"), cz_json_str(v, "backend"), cz_json_str(v, "pool"),
               cz_json_num(limits, "max_duration_s", 0),
               cJSON_IsTrue(cJSON_GetObjectItem(limits, "stems")) ? "yes" : "no",
               cz_json_num(v, "price_per_compute_s", 0));
    }
}

static void model_header(void) {
    printf("%-12s %-8s %-8s %6s %-6s %-9s %-10s %7s %-5s %s\n", "MODEL", "VERSION", "STATUS",
           "WEIGHT", "TIER", "BACKEND", "POOL", "MAX_S", "STEMS", "PRICE/S");
}

/* Prints a 200 answer holding a model (@p one) or a list of them as a table. */
static int model_table(response *r, bool one) {
    int rc = r->status == 200 ? 0 : api_error(r);
    cJSON *doc = rc ? NULL : cJSON_Parse(r->body.data);
    if (doc) {
        model_header();
        if (one) {
            model_rows(doc);
        } else {
            const cJSON *m;
            cJSON_ArrayForEach(m, cJSON_GetObjectItem(doc, "data")) model_rows(m);
        }
    }
    cJSON_Delete(doc);
    cz_buf_free(&r->body);
    return rc;
}

static bool model_name_ok(const char *name) {
    size_t n = strlen(name);
    return n > 0 && n < 32 && strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

static int models_list(int argc, char **argv) {
    bool all = argc == 1 && !strcmp(argv[0], "--all");
    if (argc > 1 || (argc == 1 && !all)) {
        fprintf(stderr, "cadenzactl: models list [--all]\n");
        return 2;
    }
    response r;
    return call("GET", all ? "/v1/models?all=true" : "/v1/models", NULL, &r)
               ? 1
               : model_table(&r, false);
}

static int models_show(int argc, char **argv) {
    if (argc < 1 || !model_name_ok(argv[0]) || argc > 2 ||
        (argc == 2 && strcmp(argv[1], "--all"))) {
        fprintf(stderr, "cadenzactl: models show NAME [--all]\n");
        return 2;
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s%s", argv[0], argc == 2 ? "?all=true" : "");
    response r;
    return call("GET", path, NULL, &r) ? 1 : print_answer(&r, 200);
}

/* Sends @p body (consumed) to @p method @p path and prints the model after it. */
static int model_change(const char *method, const char *path, cJSON *body, const char *reason) {
    char why[200];
    if (!reason) {
        const char *user = getenv("USER");
        snprintf(why, sizeof why, "cadenzactl models by %s", user ? user : "an operator");
        reason = why;
    }
    cJSON_AddStringToObject(body, "reason", reason);
    char *text = cz_json_print(body);
    cJSON_Delete(body);
    response r;
    int rc = call(method, path, text, &r);
    free(text);
    return rc ? 1 : model_table(&r, true);
}

/* "a=1,b=2" into @p out as {a: number}: VERSION=N for --max-duration,
 * NAME@VERSION=N (or VERSION=N) for --split. @returns 0, or -1 when told. */
static int pairs(const char *list, const char *what, const char *name, bool split, cJSON *out) {
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", list);
    for (char *save = NULL, *item = strtok_r(buf, ",", &save); item;
         item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '='), *end;
        double v = eq ? strtod(eq + 1, &end) : 0;
        if (!eq || eq == item || end == eq + 1 || *end || !(v >= 0)) {
            fprintf(stderr, "cadenzactl: %s takes %s, not \"%s\"\n", what,
                    split ? "NAME@VERSION=WEIGHT,..." : "VERSION=SECONDS,...", item);
            return -1;
        }
        *eq = '\0';
        char key[96];
        snprintf(key, sizeof key, "%s%s%s", split && !strchr(item, '@') ? name : "",
                 split && !strchr(item, '@') ? "@" : "", item);
        cJSON_AddNumberToObject(out, key, v);
    }
    return 0;
}

/* Adds {"status": @p status} to each version of the list @p csv in @p versions. */
static void statuses(cJSON *versions, const char *csv, const char *status) {
    char buf[512];
    snprintf(buf, sizeof buf, "%s", csv);
    for (char *save = NULL, *v = strtok_r(buf, ",", &save); v; v = strtok_r(NULL, ",", &save)) {
        cJSON *o = cJSON_GetObjectItem(versions, v);
        if (!o)
            o = cJSON_AddObjectToObject(versions, v);
        cJSON_AddStringToObject(o, "status", status);
    }
}

static int models_set(int argc, char **argv) {
    static const char *const known[] = {"--split",        "--retire", "--activate",
                                        "--max-duration", "--reason", NULL};
    if (argc < 2 || !model_name_ok(argv[0]) || argc % 2 == 0) {
        fprintf(stderr, "cadenzactl: models set NAME [--split NAME@V=W,...] [--retire V,...] "
                        "[--activate V,...] [--max-duration V=S,...] [--reason TEXT]\n");
        return 2;
    }
    for (int i = 1; i < argc; i += 2) {
        bool ok = false;
        for (int k = 0; known[k] && !ok; k++)
            ok = !strcmp(argv[i], known[k]);
        if (!ok) {
            fprintf(stderr, "cadenzactl: models set: unknown option %s\n", argv[i]);
            return 2;
        }
    }
    const char *name = argv[0], *split = opt(argc, argv, "--split"),
               *retire = opt(argc, argv, "--retire"), *activate = opt(argc, argv, "--activate"),
               *max = opt(argc, argv, "--max-duration");
    if (!split && !retire && !activate && !max) {
        fprintf(stderr,
                "cadenzactl: models set %s: name a change (--split, --retire, --activate "
                "or --max-duration)\n",
                name);
        return 2;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON *versions = cJSON_CreateObject(), *limits = cJSON_CreateObject();
    int rc = 0;
    if (split)
        rc |= pairs(split, "--split", name, true, cJSON_AddObjectToObject(body, "split"));
    if (max && !rc)
        rc |= pairs(max, "--max-duration", name, false, limits);
    if (rc) {
        cJSON_Delete(body);
        cJSON_Delete(versions);
        cJSON_Delete(limits);
        return 2;
    }
    if (retire)
        statuses(versions, retire, "retired");
    if (activate)
        statuses(versions, activate, "active");
    for (const cJSON *l = limits->child; l; l = l->next) {
        cJSON *o = cJSON_GetObjectItem(versions, l->string);
        if (!o)
            o = cJSON_AddObjectToObject(versions, l->string);
        cJSON_AddNumberToObject(o, "max_duration_s", l->valuedouble);
    }
    cJSON_Delete(limits);
    if (versions->child)
        cJSON_AddItemToObject(body, "versions", versions);
    else
        cJSON_Delete(versions);
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s", name);
    return model_change("PUT", path, body, opt(argc, argv, "--reason"));
}

static int models_promote(int argc, char **argv) {
    if (argc < 2 || !model_name_ok(argv[0]) || (argc != 2 && argc != 4) ||
        (argc == 4 && strcmp(argv[2], "--reason"))) {
        fprintf(stderr, "cadenzactl: models promote NAME VERSION [--reason TEXT]\n");
        return 2;
    }
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "version", argv[1]);
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/promote", argv[0]);
    return model_change("POST", path, body, opt(argc, argv, "--reason"));
}

static int models_rollback(int argc, char **argv) {
    if (argc < 1 || !model_name_ok(argv[0]) || (argc != 1 && argc != 3) ||
        (argc == 3 && strcmp(argv[1], "--reason"))) {
        fprintf(stderr, "cadenzactl: models rollback NAME [--reason TEXT]\n");
        return 2;
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/models/%s/rollback", argv[0]);
    return model_change("POST", path, cJSON_CreateObject(), opt(argc, argv, "--reason"));
}

static int models(int argc, char **argv) {
    const char *verb = argc ? argv[0] : "";
    if (!strcmp(verb, "list"))
        return models_list(argc - 1, argv + 1);
    if (!strcmp(verb, "show"))
        return models_show(argc - 1, argv + 1);
    if (!strcmp(verb, "set"))
        return models_set(argc - 1, argv + 1);
    if (!strcmp(verb, "promote"))
        return models_promote(argc - 1, argv + 1);
    if (!strcmp(verb, "rollback"))
        return models_rollback(argc - 1, argv + 1);
    return usage();
}

/* ---- status: one screen for operators --------------------------------------- */

/* GETs @p url into @p out (free with cz_buf_free(&out->body)). @returns 0 on a 200. */
static int fetch(const char *url, response *out) {
    memset(out, 0, sizeof *out);
    CURL *h = curl_easy_init();
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_cleanup(h);
    return rc == CURLE_OK && out->status == 200 && out->body.data ? 0 : -1;
}

/* The value of series @p name{@p labels} in Prometheus text @p text (labels
 * exactly as the exposition writes them; "" for none), or @p def. */
static double metric(const char *text, const char *name, const char *labels, double def) {
    size_t n = strlen(name), l = strlen(labels);
    for (const char *line = text; line && *line;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, name, n))
            continue;
        const char *p = line + n;
        if (l ? (*p == '{' && !strncmp(p + 1, labels, l) && p[1 + l] == '}') : *p == ' ')
            return strtod(strchr(p, ' ') + 1, NULL);
    }
    return def;
}

/* The 95th percentile of the end-to-end histogram, interpolated within its
 * bucket as Prometheus's histogram_quantile does. @returns -1 without data. */
static double p95(const char *text, double *count) {
    static const char prefix[] = "cadenza_job_duration_seconds_bucket{stage=\"end_to_end\",le=\"";
    double bounds[32], cum[32];
    int n = 0;
    for (const char *line = text; line && *line && n < 32;
         line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, prefix, sizeof prefix - 1))
            continue;
        const char *le = line + sizeof prefix - 1;
        bounds[n] = !strncmp(le, "+Inf", 4) ? -1 : strtod(le, NULL);
        cum[n++] = strtod(strchr(le, ' ') + 1, NULL);
    }
    *count = n ? cum[n - 1] : 0;
    if (!n || cum[n - 1] <= 0)
        return -1;
    double rank = 0.95 * cum[n - 1];
    for (int i = 0; i < n; i++)
        if (cum[i] >= rank) {
            if (bounds[i] < 0) /* beyond the last bound */
                return i ? bounds[i - 1] : -1;
            double lo = i ? bounds[i - 1] : 0, below = i ? cum[i - 1] : 0;
            return lo + (bounds[i] - lo) * (rank - below) / (cum[i] - below);
        }
    return -1;
}

static int status_view(void) {
    response r;
    if (call("GET", "/v1/pools", NULL, &r))
        return 1;
    if (r.status != 200) {
        int rc = api_error(&r);
        cz_buf_free(&r.body);
        return rc;
    }
    cJSON *list = cJSON_Parse(r.body.data);
    cz_buf_free(&r.body);
    double total_tput = 0;
    printf("POOLS\n");
    pool_header();
    const cJSON *p;
    cJSON_ArrayForEach(p, cJSON_GetObjectItem(list, "data")) {
        pool_row(p);
        total_tput += cz_json_num(p, "throughput_per_s", 0) * cz_json_num(p, "running", 0);
    }
    cJSON_Delete(list);
    const char *url = getenv("CADENZA_SCHED_METRICS_URL");
    char full[1024];
    snprintf(full, sizeof full, "%s/metrics", url ? url : "");
    if (!url || fetch(full, &r)) {
        printf(
            "\n(no scheduler metrics: set CADENZA_SCHED_METRICS_URL, e.g. source .cadenza/env)\n");
        if (url)
            cz_buf_free(&r.body);
        return 0;
    }
    static const char *const states[] = {"queued",    "dispatched",     "generating",
                                         "generated", "postprocessing", "in_review"};
    printf("\nJOBS NOW  ");
    for (int i = 0; i < 6; i++) {
        char l[64];
        snprintf(l, sizeof l, "state=\"%s\"", states[i]);
        printf(" %s %.0f", states[i], metric(r.body.data, "cadenza_jobs_in_state", l, 0));
    }
    printf("\nBACKLOG    outbox %.0f, oldest in review %.0f s\n",
           metric(r.body.data, "cadenza_outbox_backlog", "", 0),
           metric(r.body.data, "cadenza_review_queue_oldest_seconds", "", 0));
    double count, q = p95(r.body.data, &count);
    if (q >= 0)
        printf("LATENCY    end-to-end p95 %.1f s over %.0f jobs (since the scheduler started)\n", q,
               count);
    else
        printf("LATENCY    end-to-end p95 - (no job ended since the scheduler started)\n");
    printf("THROUGHPUT %.2f msg/s across pools; since start: %.0f succeeded, %.0f failed, "
           "%.1f audio min, cost %.4f per audio min\n",
           total_tput, metric(r.body.data, "cadenza_jobs_total", "state=\"succeeded\"", 0),
           metric(r.body.data, "cadenza_jobs_total", "state=\"failed\"", 0),
           metric(r.body.data, "cadenza_audio_seconds_total", "", 0) / 60.0,
           metric(r.body.data, "cadenza_cost_per_audio_minute", "", 0));
    cz_buf_free(&r.body);
    return 0;
}

int main(int argc, char **argv) {
    cz_mem_init();
    if (argc < 2)
        return usage();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc;
    if (!strcmp(argv[1], "keys") && argc > 2 && !strcmp(argv[2], "create"))
        rc = keys_create(argc - 3, argv + 3);
    else if (!strcmp(argv[1], "keys") && argc > 2 && !strcmp(argv[2], "list"))
        rc = keys_list(argc - 3, argv + 3);
    else if (!strcmp(argv[1], "keys") && argc > 2 && !strcmp(argv[2], "revoke"))
        rc = keys_revoke(argc - 3, argv + 3);
    else if (!strcmp(argv[1], "quota") && argc > 2 && !strcmp(argv[2], "set"))
        rc = quota_set(argc - 3, argv + 3);
    else if (!strcmp(argv[1], "submit"))
        rc = submit(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "get") && argc == 3)
        rc = get(argv[2]);
    else if (!strcmp(argv[1], "watch") && argc == 3)
        rc = strlen(argv[2]) <= 64
                 ? follow(argv[2])
                 : (fprintf(stderr, "cadenzactl: %s is not a job id\n", argv[2]), 2);
    else if (!strcmp(argv[1], "catalog") && argc > 2 && !strcmp(argv[2], "import"))
        rc = catalog_import(argc - 3, argv + 3);
    else if (!strcmp(argv[1], "catalog") && argc > 2 && !strcmp(argv[2], "seed"))
        rc = cz_cli_catalog_seed(argc - 3, argv + 3);
    else if (!strcmp(argv[1], "review"))
        rc = review(argc - 2, argv + 2);
    else if (!strcmp(argv[1], "status") && argc == 2)
        rc = status_view();
    else if (!strcmp(argv[1], "pools") && argc == 3 && !strcmp(argv[2], "list"))
        rc = pools_list();
    else if (!strcmp(argv[1], "pools") && argc > 2 && !strcmp(argv[2], "scale"))
        rc = pools_scale(argc - 3, argv + 3);
    else if (!strcmp(argv[1], "pools") && argc > 2 && !strcmp(argv[2], "autoscale"))
        rc = pools_autoscale(argc - 3, argv + 3);
    else if (!strcmp(argv[1], "models"))
        rc = models(argc - 2, argv + 2);
    else
        rc = usage();
    curl_global_cleanup();
    return rc;
}
