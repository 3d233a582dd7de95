/* http@1: see http_model.h for the contract and the failure classes.
 *
 * The answer is streamed to a scratch file in the job's folder (never more
 * than the longest valid answer could be), then read back with libsndfile,
 * checked, and rewritten as the job's raw mix: 48 kHz stereo float, exactly
 * the requested number of frames. The scratch file is removed either way.
 *
 * Configuration, read once when the worker starts:
 *   CADENZA_HTTP_MODEL_URL        base URL of the model server (no default:
 *                                 jobs for http@1 fail as backend_unavailable)
 *   CADENZA_HTTP_MODEL_TIMEOUT_S  whole request, default 300
 *   connecting gives up after 5 s (backend_unavailable). */
#include "workers/models/http.h"

#include <curl/curl.h>
#include <math.h>
#include <sndfile.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/json.h"
#include "common/mem.h"
#include "common/music/audio_file.h"

#define CZ_HTTP_CONNECT_MS 5000
#define CZ_HTTP_TOLERANCE_S 0.05 /* how far the answer's length may be off */
#define CZ_HTTP_CHUNK 16384      /* frames converted at a time */

typedef struct cz_http_model {
    char url[1024]; /* "" when not configured */
    long timeout_ms;
} cz_http_model;

static void *cz_http_prepare(const cz_backend_env *env, cz_err *err) {
    (void)env;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        cz_err_set(err, "libcurl failed to initialise");
        return NULL;
    }
    cz_http_model *m = cz_calloc(1, sizeof *m);
    const char *url = cz_env("CADENZA_HTTP_MODEL_URL", "");
    snprintf(m->url, sizeof m->url, "%s", url);
    size_t n = strlen(m->url);
    while (n > 0 && m->url[n - 1] == '/')
        m->url[--n] = '\0';
    m->timeout_ms = 1000L * cz_env_int("CADENZA_HTTP_MODEL_TIMEOUT_S", 300, 1, 86400);
    return m;
}

static void cz_http_release(void *state) {
    if (!state)
        return;
    free(state);
    curl_global_cleanup();
}

/* ================================================================ transfer */

typedef struct cz_http_call {
    FILE *body;
    curl_off_t bytes, max_bytes;
    int too_big;
    char version[128]; /* X-Model-Version */
    const cz_gen_hooks *hooks;
    int stopped; /* the hooks asked to stop */
    int64_t started_ms;
    long timeout_ms;
} cz_http_call;

static size_t cz_http_write(char *data, size_t size, size_t n, void *user) {
    cz_http_call *c = user;
    size_t len = size * n;
    if (c->bytes + (curl_off_t)len > c->max_bytes) {
        c->too_big = 1;
        return 0; // curl reports a write error: the answer is not what was asked
    }
    c->bytes += (curl_off_t)len;
    return fwrite(data, 1, len, c->body);
}

static size_t cz_http_header(char *data, size_t size, size_t n, void *user) {
    cz_http_call *c = user;
    size_t len = size * n;
    static const char name[] = "x-model-version:";
    if (len > sizeof name && !strncasecmp(data, name, sizeof name - 1)) {
        const char *v = data + sizeof name - 1;
        size_t k = len - (sizeof name - 1);
        while (k > 0 && (*v == ' ' || *v == '\t'))
            v++, k--;
        while (k > 0 && (v[k - 1] == '\r' || v[k - 1] == '\n' || v[k - 1] == ' '))
            k--;
        snprintf(c->version, sizeof c->version, "%.*s", (int)k, v);
    }
    return len;
}

/* Called by libcurl about once a second even while waiting: progress, and
 * the way a canceled job stops the transfer. */
static int cz_http_xfer(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                        curl_off_t ulnow) {
    (void)ultotal;
    (void)ulnow;
    cz_http_call *c = user;
    double waited = (double)(cz_mono_ms() - c->started_ms) / (double)c->timeout_ms;
    double fraction = dltotal > 0 ? 0.5 + 0.49 * (double)dlnow / (double)dltotal
                                  : 0.5 * (waited < 1 ? waited : 1);
    const cz_gen_hooks *h = c->hooks;
    if ((h->progress && h->progress(h->user, fraction) != 0) ||
        (h->canceled && h->canceled(h->user))) {
        c->stopped = 1;
        return 1;
    }
    return 0;
}

static char *cz_http_body(const cz_gen_request *req) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "contract", "cadenza.generate/1");
    cJSON_AddStringToObject(o, "job_id", req->job_id);
    cJSON_AddNumberToObject(o, "attempt", req->attempt);
    cJSON_AddStringToObject(o, "model", req->model);
    cJSON_AddNumberToObject(o, "seed", (double)req->seed);
    const char *prompt = cz_json_str(req->request, "prompt");
    cJSON_AddStringToObject(o, "prompt", prompt ? prompt : "");
    cJSON_AddItemToObject(o, "controls", cz_controls_json(req->controls));
    cJSON_AddNumberToObject(o, "duration_s", req->duration_s);
    cJSON_AddNumberToObject(o, "sample_rate", CZ_GEN_SAMPLE_RATE);
    cJSON_AddNumberToObject(o, "channels", 2);
    char *s = cz_json_print(o);
    cJSON_Delete(o);
    return s;
}

/* Classifies a finished transfer. @returns 0 for a 200 answer to read. */
static int cz_http_classify(CURL *curl, CURLcode rc, const cz_http_call *c, const char *url,
                            cz_gen_result *out, cz_err *err) {
    long status = 0, connected = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t connect_us = 0;
    curl_easy_getinfo(curl, CURLINFO_CONNECT_TIME_T, &connect_us);
    connected = connect_us > 0;
    if (rc == CURLE_OK && status == 200)
        return 0;
    out->failure_class = "model_error";
    if (c->too_big)
        return cz_err_set(err,
                          "model server %s answered more than %lld bytes: not the audio asked for",
                          url, (long long)c->max_bytes);
    if (rc == CURLE_OPERATION_TIMEDOUT && connected) {
        out->failure_class = "timeout";
        return cz_err_set(err, "model server %s gave no full answer within %ld s", url,
                          c->timeout_ms / 1000);
    }
    if (rc != CURLE_OK && rc != CURLE_HTTP_RETURNED_ERROR) {
        out->failure_class = rc == CURLE_WRITE_ERROR ? "internal" : "backend_unavailable";
        return cz_err_set(err, "model server %s unreachable: %s", url, curl_easy_strerror(rc));
    }
    if (status == 429 || status == 502 || status == 503 || status == 504) {
        out->failure_class = "backend_unavailable";
        return cz_err_set(err, "model server %s is unavailable (HTTP %ld); retry later", url,
                          status);
    }
    if (status == 408)
        out->failure_class = "timeout";
    return cz_err_set(err, "model server %s answered HTTP %ld", url, status);
}

/* ================================================================ audio */

int cz_http_model_audio(const char *path, const char *dst, double duration_s, cz_err *err) {
    cz_audio_file in;
    if (cz_audio_file_open(&in, path, 0, NULL))
        return cz_err_set(err, "the model's answer is not audio: %s", sf_strerror(NULL));
    int type = in.format & SF_FORMAT_TYPEMASK;
    sf_count_t want = (sf_count_t)llround(duration_s * CZ_GEN_SAMPLE_RATE);
    sf_count_t slack = (sf_count_t)llround(CZ_HTTP_TOLERANCE_S * CZ_GEN_SAMPLE_RATE);
    int rc = 0;
    if (type != SF_FORMAT_WAV && type != SF_FORMAT_WAVEX)
        rc = cz_err_set(err, "the model answered a format other than WAV");
    else if (in.rate != CZ_GEN_SAMPLE_RATE || in.channels < 1 || in.channels > 2)
        rc =
            cz_err_set(err, "the model answered %d channels at %d Hz; the contract is 1 or 2 at %d",
                       in.channels, in.rate, CZ_GEN_SAMPLE_RATE);
    else if (in.frames < want - slack || in.frames > want + slack)
        rc = cz_err_set(err, "the model answered %.3f s of audio for a %.3f s request",
                        (double)in.frames / in.rate, duration_s);
    if (rc != 0) {
        cz_audio_file_close(&in, NULL);
        return -1;
    }
    SF_INFO out_info = {
        .samplerate = CZ_GEN_SAMPLE_RATE, .channels = 2, .format = SF_FORMAT_WAV | SF_FORMAT_FLOAT};
    SNDFILE *o = sf_open(dst, SFM_WRITE, &out_info);
    float *buf = cz_malloc(CZ_HTTP_CHUNK * 2 * sizeof *buf);
    if (!o) {
        rc = cz_err_set(err, "cannot write %s: %s", dst, sf_strerror(NULL));
    } else {
        sf_command(o, SFC_SET_ADD_PEAK_CHUNK, NULL, SF_FALSE); // no timestamp: same bytes
        for (sf_count_t done = 0; done < want && rc == 0;) {
            sf_count_t n = want - done < CZ_HTTP_CHUNK ? want - done : CZ_HTTP_CHUNK;
            sf_count_t got = (sf_count_t)cz_audio_file_read(&in, buf, (size_t)n);
            // Mono becomes both channels; a short answer is padded with silence.
            for (sf_count_t i = n - 1; in.channels == 1 && i >= 0; i--)
                buf[2 * i] = buf[2 * i + 1] = i < got ? buf[i] : 0.0f;
            if (in.channels == 2)
                memset(buf + 2 * got, 0, (size_t)(n - got) * 2 * sizeof *buf);
            if (sf_writef_float(o, buf, n) != n)
                rc = cz_err_set(err, "writing %s failed: %s", dst, sf_strerror(o));
            done += n;
        }
    }
    free(buf);
    cz_audio_file_close(&in, NULL);
    if (o && sf_close(o) != 0 && rc == 0)
        rc = cz_err_set(err, "closing %s failed: is the disk full?", dst);
    return rc;
}

/* ================================================================ generate */

static int cz_http_generate(void *state, const cz_gen_request *req, const cz_gen_hooks *hooks,
                            cz_gen_result *out, cz_err *err) {
    cz_http_model *m = state;
    if (!m->url[0]) {
        out->failure_class = "backend_unavailable";
        return cz_err_set(err, "no model server configured: set CADENZA_HTTP_MODEL_URL on the "
                               "inference workers (see docs/composer.md)");
    }
    out->failure_class = "internal";
    char url[1100];
    snprintf(url, sizeof url, "%s/v1/generate", m->url);
    cz_artifact_file scratch;
    if (cz_artifact_prepare_in(req->dir, "http-answer.wav", &scratch, err) != 0)
        return -1;
    cz_http_call c = {
        .body = fopen(scratch.tmp, "wb"),
        // The largest valid answer: float stereo of the length plus the slack.
        .max_bytes = (curl_off_t)((req->duration_s + 1) * CZ_GEN_SAMPLE_RATE * 2 * 8) + 65536,
        .hooks = hooks,
        .started_ms = cz_mono_ms(),
        .timeout_ms = m->timeout_ms,
    };
    char *body = cz_http_body(req);
    CURL *curl = curl_easy_init();
    struct curl_slist *headers = NULL;
    char trace[160];
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: audio/wav");
    if (req->traceparent && req->traceparent[0]) {
        snprintf(trace, sizeof trace, "traceparent: %s", req->traceparent);
        headers = curl_slist_append(headers, trace);
    }
    int rc = 0;
    if (!c.body || !body || !curl || !headers) {
        rc = cz_err_set(err, "cannot start a request to the model server (out of memory or %s)",
                        scratch.tmp);
    } else {
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, cz_http_write);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &c);
        curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, cz_http_header);
        curl_easy_setopt(curl, CURLOPT_HEADERDATA, &c);
        curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, cz_http_xfer);
        curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &c);
        curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, (long)CZ_HTTP_CONNECT_MS);
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, m->timeout_ms);
        CURLcode cr = curl_easy_perform(curl);
        if (fclose(c.body) != 0 && cr == CURLE_OK)
            cr = CURLE_WRITE_ERROR;
        c.body = NULL;
        if (c.stopped)
            rc = 1;
        else if (cz_http_classify(curl, cr, &c, m->url, out, err) != 0)
            rc = -1;
    }
    if (c.body)
        fclose(c.body);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    free(body);
    cz_gen_file *f = NULL;
    if (rc == 0) {
        out->failure_class = "model_error";
        if (!(f = cz_gen_result_add(out, req, "raw", "mix", "wav", "raw.wav", req->duration_s,
                                    err)) ||
            cz_http_model_audio(scratch.tmp, f->file.tmp, req->duration_s, err) != 0)
            rc = -1;
    }
    unlink(scratch.tmp);
    if (rc == 0) {
        out->failure_class = NULL;
        out->chosen = cJSON_CreateObject();
        cJSON_AddStringToObject(out->chosen, "server", m->url);
        if (c.version[0])
            cJSON_AddStringToObject(out->chosen, "model_version", c.version);
        cJSON_AddNumberToObject(out->chosen, "answer_bytes", (double)c.bytes);
        cJSON_AddNumberToObject(out->chosen, "answer_ms", (double)(cz_mono_ms() - c.started_ms));
        if (hooks->progress && hooks->progress(hooks->user, 1.0) != 0)
            rc = 1;
    }
    return rc;
}

const cz_backend cz_http_backend = {
    .id = "http@1",
    .prepare = cz_http_prepare,
    .generate = cz_http_generate,
    .release = cz_http_release,
};
