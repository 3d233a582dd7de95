/* Job request validation and canonicalisation: see request.h.
 *
 * Each field has a checker that reads the client's value and writes the
 * canonical value into the output object. A table lists the fields, so an
 * unknown field is simply one that is not in the table. */
#include "api/request.h"

#include <ctype.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/json.h"
#include "common/mem.h"
#include "common/music/prompt.h"
#include "common/webhook.h"

#define PROMPT_MAX 2000
#define NAME_MAX_LEN 64
#define INSTRUMENTS_MAX 16
#define METADATA_MAX 8192
#define URL_MAX 2048
#define METADATA_DEPTH 16
#define DEFAULT_DURATION_S 30
#define PARAMETERS_MAX 16
#define PARAMETER_NAME_MAX 40
#define PARAMETER_TEXT_MAX 256

static int fail(cz_request_error *e, int status, const char *type, const char *field,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(cz_request_error *e, int status, const char *type, const char *field,
                const char *fmt, ...) {
    e->status = status;
    e->type = type;
    snprintf(e->field, sizeof e->field, "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->detail, sizeof e->detail, fmt, ap);
    va_end(ap);
    return -1;
}

static int invalid(cz_request_error *e, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int invalid(cz_request_error *e, const char *field, const char *fmt, ...) {
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    return fail(e, 422, "invalid-field", field, "%s", detail);
}

/* Copies at most n - 1 bytes of UTF-8 @p src, never cutting a character. */
static void copy_utf8(char *dst, size_t n, const char *src) {
    size_t len = strlen(src);
    if (len >= n) {
        len = n - 1;
        while (len && ((unsigned char)src[len] & 0xc0) == 0x80)
            len--; /* src[len] would start the next character: cut before it */
    }
    memcpy(dst, src, len);
    dst[len] = '\0';
}

/* How many bytes of UTF-8 @p s to print to show at most @p max bytes
 * without cutting a character (for "%.*s"). */
static int utf8_cut(const char *s, int max) {
    int len = (int)strnlen(s, (size_t)max + 1);
    if (len <= max)
        return len;
    len = max;
    while (len && ((unsigned char)s[len] & 0xc0) == 0x80)
        len--;
    return len;
}

/* Finds the first object key or string value under @p v that is not
 * UTF-8, and writes its JSON path into @p path. @returns true if found. */
static bool find_bad_utf8(const cJSON *v, char *path, size_t n) {
    size_t at = strlen(path);
    int i = 0;
    for (const cJSON *m = v->child; m; m = m->next, i++) {
        if (cJSON_IsObject(v)) {
            if (!cz_json_utf8(m->string))
                return true; /* the path so far names the object holding the bad key */
            char name[48];
            copy_utf8(name, sizeof name, m->string);
            snprintf(path + at, n - at, "%s%s", at ? "." : "", name);
        } else {
            snprintf(path + at, n - at, "[%d]", i);
        }
        if ((cJSON_IsString(m) && !cz_json_utf8(m->valuestring)) || find_bad_utf8(m, path, n))
            return true;
        path[at] = '\0';
    }
    return false;
}

static int depth(const cJSON *v) {
    int d = 0;
    for (const cJSON *m = v->child; m; m = m->next) {
        int k = depth(m);
        d = k > d ? k : d;
    }
    return d + 1;
}

/* True when a JSON string in @p body contains the escape \u0000. cJSON
 * decodes it into a C string's terminator, which would silently cut the
 * text short; such input is refused instead. */
static bool has_nul_escape(const char *body, size_t len) {
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        if (!in_string) {
            in_string = body[i] == '"';
        } else if (body[i] == '"') {
            in_string = false;
        } else if (body[i] == '\\' && i + 1 < len) {
            if (body[i + 1] == 'u' && i + 5 < len && !strncmp(body + i + 2, "0000", 4))
                return true;
            i++; /* skip the escaped character */
        }
    }
    return false;
}

/* Collapses runs of whitespace to one space and trims both ends. */
static char *collapse_spaces(const char *s) {
    char *out = cz_malloc(strlen(s) + 1), *w = out;
    bool space = false;
    for (; *s; s++) {
        if (isspace((unsigned char)*s)) {
            space = w != out;
        } else {
            if (space)
                *w++ = ' ';
            space = false;
            *w++ = *s;
        }
    }
    *w = '\0';
    return out;
}

static size_t utf8_length(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

/* A short text field: clean text, 1..max characters after trimming. */
static int text(const cJSON *v, const char *field, size_t max, cJSON *out, cz_request_error *e) {
    if (!cJSON_IsString(v))
        return invalid(e, field, "%s must be a string", field);
    if (!cz_json_clean_text(v->valuestring))
        return invalid(e, field, "%s must be UTF-8 text without control characters", field);
    char *s = collapse_spaces(v->valuestring);
    size_t n = utf8_length(s);
    if (n == 0 || n > max) {
        free(s);
        return invalid(e, field, "%s must be 1 to %zu characters", field, max);
    }
    cJSON_AddStringToObject(out, field, s);
    free(s);
    return 0;
}

static int number(const cJSON *v, const char *field, double lo, double hi, bool integer, cJSON *out,
                  cz_request_error *e) {
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return invalid(e, field, "%s must be a number", field);
    if (integer && !cz_json_is_integer(v->valuedouble))
        return invalid(e, field, "%s must be an integer", field);
    if (v->valuedouble < lo || v->valuedouble > hi)
        return invalid(e, field, "%s must be between %g and %g", field, lo, hi);
    cJSON_AddNumberToObject(out, field, v->valuedouble);
    return 0;
}

static int one_of(const cJSON *v, const char *field, const char *const *allowed, cJSON *out,
                  cz_request_error *e) {
    char list[128] = "";
    for (int i = 0; allowed[i]; i++) {
        if (cJSON_IsString(v) && !strcmp(v->valuestring, allowed[i])) {
            cJSON_AddStringToObject(out, field, allowed[i]);
            return 0;
        }
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "",
                 allowed[i]);
    }
    return invalid(e, field, "%s must be one of: %s", field, list);
}

/* ---- the fields ---------------------------------------------------------- */

static int check_prompt(const cJSON *v, cJSON *out, cz_request_error *e) {
    return text(v, "prompt", PROMPT_MAX, out, e);
}

static int check_duration(const cJSON *v, cJSON *out, cz_request_error *e) {
    return number(v, "duration_s", 1, 600, false, out, e);
}

static int check_tempo(const cJSON *v, cJSON *out, cz_request_error *e) {
    return number(v, "tempo_bpm", 20, 300, false, out, e);
}

/* Keys: a note name, an optional accidental, an optional mode:
 * "A minor", "C#", "Eb major", "F#m", "bb min". Canonical: "A minor". */
static int check_key(const cJSON *v, cJSON *out, cz_request_error *e) {
    static const char *const hint = "key must be a note A-G, optional # or b, optional "
                                    "major/minor (e.g. \"A minor\", \"F#m\", \"Eb major\")";
    if (!cJSON_IsString(v))
        return invalid(e, "key", "%s", hint);
    const char *s = v->valuestring;
    while (isspace((unsigned char)*s))
        s++;
    char note = (char)toupper((unsigned char)*s);
    if (note < 'A' || note > 'G')
        return invalid(e, "key", "%s", hint);
    s++;
    char acc = 0;
    if (*s == '#' || *s == 'b')
        acc = *s++;
    while (isspace((unsigned char)*s))
        s++;
    const char *mode;
    if (!*s || !strcasecmp(s, "major") || !strcasecmp(s, "maj"))
        mode = "major";
    else if (!strcasecmp(s, "minor") || !strcasecmp(s, "min") || !strcmp(s, "m"))
        mode = "minor";
    else
        return invalid(e, "key", "%s", hint);
    char canon[16];
    snprintf(canon, sizeof canon, "%c%s %s", note, acc == '#' ? "#" : acc ? "b" : "", mode);
    cJSON_AddStringToObject(out, "key", canon);
    return 0;
}

static int check_mood(const cJSON *v, cJSON *out, cz_request_error *e) {
    return text(v, "mood", NAME_MAX_LEN, out, e);
}

static int check_genre(const cJSON *v, cJSON *out, cz_request_error *e) {
    return text(v, "genre", NAME_MAX_LEN, out, e);
}

static int check_instruments(const cJSON *v, cJSON *out, cz_request_error *e) {
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) > INSTRUMENTS_MAX)
        return invalid(e, "instruments", "instruments must be an array of at most %d names",
                       INSTRUMENTS_MAX);
    cJSON *list = cJSON_AddArrayToObject(out, "instruments");
    int i = 0;
    for (const cJSON *item = v->child; item; item = item->next, i++) {
        cJSON *tmp = cJSON_CreateObject();
        char field[32];
        snprintf(field, sizeof field, "instruments[%d]", i);
        int rc = text(item, "name", NAME_MAX_LEN, tmp, e);
        if (rc) {
            snprintf(e->field, sizeof e->field, "%s", field);
            cJSON_Delete(tmp);
            return rc;
        }
        cJSON_AddItemToArray(list, cJSON_DetachItemFromObject(tmp, "name"));
        cJSON_Delete(tmp);
    }
    return 0;
}

static int check_seed(const cJSON *v, cJSON *out, cz_request_error *e) {
    return number(v, "seed", 0, 9007199254740991.0, true, out, e);
}

/* A run of 1..max bytes from @p first (the first) and @p rest (the others). */
static bool word(const char *s, size_t len, const char *first, const char *rest, size_t max) {
    return len >= 1 && len <= max && strchr(first, s[0]) && strspn(s + 1, rest) >= len - 1;
}

#define LOWER_DIGITS "abcdefghijklmnopqrstuvwxyz0123456789"

bool cz_request_model_name_valid(const char *s) {
    size_t n = strlen(s);
    return n && word(s, n, "abcdefghijklmnopqrstuvwxyz", LOWER_DIGITS "-", 31);
}

bool cz_request_model_version_valid(const char *s) {
    size_t n = strlen(s);
    return n && word(s, n, LOWER_DIGITS, LOWER_DIGITS ".-", 16);
}

/* The model's form only: a name ("neural", routed among its versions by
 * weight) or a pinned name@version. Which exist is the registry's to say
 * (api/routing.c). */
static int check_model(const cJSON *v, cJSON *out, cz_request_error *e) {
    bool ok = cJSON_IsString(v) && strlen(v->valuestring) < CZ_REQUEST_MODEL_MAX;
    if (ok) {
        char name[CZ_REQUEST_MODEL_MAX];
        snprintf(name, sizeof name, "%s", v->valuestring);
        char *at = strchr(name, '@');
        if (at)
            *at = '\0';
        ok = cz_request_model_name_valid(name) && (!at || cz_request_model_version_valid(at + 1));
    }
    if (!ok)
        return invalid(e, "model",
                       "model must be a model name or name@version, e.g. composer or %s; "
                       "GET /v1/models lists them",
                       CZ_DEFAULT_MODEL);
    cJSON_AddStringToObject(out, "model", v->valuestring);
    return 0;
}

/* The end user the job is for, as the client knows them (opaque): it keeps
 * their model version the same from job to job (api/routing.c). Printable
 * text, kept exactly as sent. */
static int check_user(const cJSON *v, cJSON *out, cz_request_error *e) {
    size_t n = cJSON_IsString(v) ? utf8_length(v->valuestring) : 0;
    if (!cJSON_IsString(v) || !cz_json_clean_text(v->valuestring) ||
        strpbrk(v->valuestring, "\t\r\n") || n < 1 || n > 128)
        return invalid(e, "user", "user must be 1 to 128 printable characters");
    cJSON_AddStringToObject(out, "user", v->valuestring);
    return 0;
}

static int check_quality(const cJSON *v, cJSON *out, cz_request_error *e) {
    static const char *const q[] = {"draft", "final", NULL};
    return one_of(v, "quality", q, out, e);
}

/* Formats the post pool writes; the FLAC master is always made as well. */
static int check_outputs(const cJSON *v, cJSON *out, cz_request_error *e) {
    static const char *const formats[] = {"flac", "wav", "mp3", "opus", NULL};
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) < 1 || cJSON_GetArraySize(v) > 4)
        return invalid(e, "outputs", "outputs must be an array of 1 to 4 formats");
    bool seen[4] = {false, false, false, false};
    for (const cJSON *item = v->child; item; item = item->next) {
        int i = 0;
        while (formats[i] && !(cJSON_IsString(item) && !strcmp(item->valuestring, formats[i])))
            i++;
        if (!formats[i])
            return invalid(e, "outputs", "outputs may contain flac, wav, mp3 and opus");
        if (seen[i])
            return invalid(e, "outputs", "outputs lists %s twice", formats[i]);
        seen[i] = true;
    }
    /* Canonical order, so ["wav","flac"] and ["flac","wav"] are one request. */
    cJSON *list = cJSON_AddArrayToObject(out, "outputs");
    for (int i = 0; formats[i]; i++)
        if (seen[i])
            cJSON_AddItemToArray(list, cJSON_CreateString(formats[i]));
    return 0;
}

/* Loudness presets: a preset names a target and a ceiling; numbers given
 * beside it override its own (fill_defaults applies the preset). */
static const struct loudness_preset {
    const char *name;
    double target_lufs, true_peak_dbtp;
} loudness_presets[] = {
    {"streaming", -14, -1}, {"podcast", -16, -1}, {"broadcast", -23, -1}, /* EBU R 128 */
};

static const struct loudness_preset *find_preset(const char *name) {
    for (size_t i = 0; name && i < sizeof loudness_presets / sizeof *loudness_presets; i++)
        if (!strcmp(loudness_presets[i].name, name))
            return &loudness_presets[i];
    return NULL;
}

static int check_loudness(const cJSON *v, cJSON *out, cz_request_error *e) {
    if (!cJSON_IsObject(v))
        return invalid(e, "loudness", "loudness must be an object");
    cJSON *l = cJSON_AddObjectToObject(out, "loudness");
    for (const cJSON *m = v->child; m; m = m->next) {
        int rc;
        if (!strcmp(m->string, "target_lufs"))
            rc = number(m, "target_lufs", -40, -5, false, l, e);
        else if (!strcmp(m->string, "true_peak_dbtp"))
            rc = number(m, "true_peak_dbtp", -9, 0, false, l, e);
        else if (!strcmp(m->string, "preset")) {
            static const char *const names[] = {"streaming", "podcast", "broadcast", NULL};
            rc = one_of(m, "preset", names, l, e);
        } else
            return fail(e, 422, "unknown-field", "loudness", "loudness has no field \"%.*s\"",
                        utf8_cut(m->string, 40), m->string);
        if (rc) {
            snprintf(e->field, sizeof e->field, "loudness.%.*s", utf8_cut(m->string, 40),
                     m->string);
            return rc;
        }
    }
    return 0;
}

static int check_stems(const cJSON *v, cJSON *out, cz_request_error *e) {
    if (!cJSON_IsBool(v))
        return invalid(e, "stems", "stems must be true or false");
    cJSON_AddBoolToObject(out, "stems", cJSON_IsTrue(v));
    return 0;
}

static int check_cache(const cJSON *v, cJSON *out, cz_request_error *e) {
    if (!cJSON_IsBool(v))
        return invalid(e, "cache", "cache must be true or false");
    cJSON_AddBoolToObject(out, "cache", cJSON_IsTrue(v));
    return 0;
}

static int check_review(const cJSON *v, cJSON *out, cz_request_error *e) {
    static const char *const r[] = {"auto", "always", NULL};
    return one_of(v, "review", r, out, e);
}

static int check_webhook(const cJSON *v, cJSON *out, cz_request_error *e) {
    const char *const *events = cz_webhook_events();
    if (!cJSON_IsObject(v))
        return invalid(e, "webhook", "webhook must be an object with a url");
    const cJSON *url = cJSON_GetObjectItemCaseSensitive(v, "url");
    if (!cJSON_IsString(url) || strlen(url->valuestring) > URL_MAX ||
        (strncmp(url->valuestring, "https://", 8) && strncmp(url->valuestring, "http://", 7)) ||
        !cz_json_clean_text(url->valuestring) || strpbrk(url->valuestring, " \t\r\n"))
        return invalid(e, "webhook.url", "webhook.url must be an http(s) URL of at most %d bytes",
                       URL_MAX);
    cJSON *w = cJSON_AddObjectToObject(out, "webhook");
    cJSON_AddStringToObject(w, "url", url->valuestring);
    for (const cJSON *m = v->child; m; m = m->next) {
        if (!strcmp(m->string, "url"))
            continue;
        if (strcmp(m->string, "events"))
            return fail(e, 422, "unknown-field", "webhook", "webhook has no field \"%.*s\"",
                        utf8_cut(m->string, 40), m->string);
        if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) > 16)
            return invalid(e, "webhook.events", "webhook.events must be an array of event types");
        cJSON *list = cJSON_AddArrayToObject(w, "events");
        for (const cJSON *ev = m->child; ev; ev = ev->next) {
            cJSON *tmp = cJSON_CreateObject();
            int rc = one_of(ev, "webhook.events", events, tmp, e);
            if (!rc)
                cJSON_AddItemToArray(list, cJSON_DetachItemFromObject(tmp, "webhook.events"));
            cJSON_Delete(tmp);
            if (rc)
                return rc;
        }
    }
    return 0;
}

/* Model parameters (temperature, top_p, guidance...): names and simple
 * values only here. Which names a model takes and their ranges are the
 * model's to declare: http@2's worker checks them against its server's
 * declaration (docs/http2.md); models that declare none refuse the field
 * (add_controls), so a field accepted always changes what it says. */
static int check_parameters(const cJSON *v, cJSON *out, cz_request_error *e) {
    if (!cJSON_IsObject(v) || cJSON_GetArraySize(v) > PARAMETERS_MAX)
        return invalid(e, "parameters", "parameters must be an object of at most %d entries",
                       PARAMETERS_MAX);
    cJSON *p = cJSON_AddObjectToObject(out, "parameters");
    for (const cJSON *m = v->child; m; m = m->next) {
        size_t n = strlen(m->string);
        bool name_ok = n >= 1 && n <= PARAMETER_NAME_MAX;
        for (size_t i = 0; name_ok && i < n; i++)
            name_ok = islower((unsigned char)m->string[i]) ||
                      isdigit((unsigned char)m->string[i]) || m->string[i] == '_';
        if (!name_ok)
            return invalid(e, "parameters",
                           "parameter names are 1 to %d of a-z, 0-9 and _ (e.g. top_p)",
                           PARAMETER_NAME_MAX);
        if (cJSON_HasObjectItem(p, m->string))
            return invalid(e, "parameters", "parameters names %s twice", m->string);
        bool ok = (cJSON_IsNumber(m) && isfinite(m->valuedouble)) || cJSON_IsBool(m) ||
                  (cJSON_IsString(m) && strlen(m->valuestring) <= PARAMETER_TEXT_MAX &&
                   cz_json_clean_text(m->valuestring));
        if (!ok) {
            char field[64];
            snprintf(field, sizeof field, "parameters.%s", m->string);
            return fail(e, 422, "invalid-field", field,
                        "parameters.%s must be a number, true/false or a string of at most %d "
                        "bytes",
                        m->string, PARAMETER_TEXT_MAX);
        }
        cJSON_AddItemToObject(p, m->string, cJSON_Duplicate(m, false));
    }
    return 0;
}

static int check_metadata(const cJSON *v, cJSON *out, cz_request_error *e) {
    if (!cJSON_IsObject(v))
        return invalid(e, "metadata", "metadata must be an object");
    if (depth(v) > METADATA_DEPTH)
        return invalid(e, "metadata", "metadata may nest at most %d levels", METADATA_DEPTH);
    char *s = cz_json_print(v);
    size_t n = s ? strlen(s) : SIZE_MAX;
    free(s);
    if (n > METADATA_MAX)
        return invalid(e, "metadata", "metadata must serialise to at most %d bytes", METADATA_MAX);
    cJSON_AddItemToObject(out, "metadata", cJSON_Duplicate(v, true));
    return 0;
}

typedef int (*checker)(const cJSON *v, cJSON *out, cz_request_error *e);

static const struct field {
    const char *name;
    checker check;
} fields[] = {
    {"prompt", check_prompt},
    {"duration_s", check_duration},
    {"tempo_bpm", check_tempo},
    {"key", check_key},
    {"mood", check_mood},
    {"genre", check_genre},
    {"instruments", check_instruments},
    {"seed", check_seed},
    {"model", check_model},
    {"user", check_user},
    {"quality", check_quality},
    {"outputs", check_outputs},
    {"loudness", check_loudness},
    {"stems", check_stems},
    {"review", check_review},
    {"cache", check_cache},
    {"webhook", check_webhook},
    {"metadata", check_metadata},
    {"parameters", check_parameters},
};

static const struct field *find_field(const char *name) {
    for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
        if (!strcmp(fields[i].name, name))
            return &fields[i];
    return NULL;
}

/* Reads the prompt and the explicit fields into control tokens (see
 * common/music/prompt.h) and adds them to the canonical request as "controls",
 * with the words that were not understood as "ignored". A duration the
 * prompt names ("45 seconds") becomes duration_s unless the field was given.
 * Runs before the defaults are filled in, so only what the client sent
 * overrides the prompt. */
static int add_controls(cJSON *c, cz_request_error *e) {
    cz_controls ctl;
    cz_err err;
    int bad;
    if (cz_prompt_controls_of(c, &ctl, &bad, &err) != 0) {
        char field[32];
        snprintf(field, sizeof field, "instruments[%d]", bad);
        return invalid(e, bad >= 0 ? field : "key", "%s", err.msg);
    }
    if (!cJSON_HasObjectItem(c, "duration_s")) {
        if (!(ctl.duration_s > 0))
            ctl.duration_s = DEFAULT_DURATION_S;
        cJSON_AddNumberToObject(c, "duration_s", ctl.duration_s);
    }
    cJSON *controls = cz_controls_json(&ctl), *ignored = cz_controls_ignored_json(&ctl);
    cJSON_AddItemToObject(c, "controls", controls);
    cJSON_AddItemToObject(c, "ignored", ignored);
    return 0;
}

static void fill_defaults(cJSON *c, uint64_t fallback_seed) {
    if (!cJSON_HasObjectItem(c, "duration_s"))
        cJSON_AddNumberToObject(c, "duration_s", DEFAULT_DURATION_S);
    if (!cJSON_HasObjectItem(c, "seed"))
        cJSON_AddNumberToObject(c, "seed", (double)fallback_seed);
    if (!cJSON_HasObjectItem(c, "model"))
        cJSON_AddStringToObject(c, "model", CZ_DEFAULT_MODEL);
    if (!cJSON_HasObjectItem(c, "quality"))
        cJSON_AddStringToObject(c, "quality", "final");
    if (!cJSON_HasObjectItem(c, "outputs")) {
        cJSON *o = cJSON_AddArrayToObject(c, "outputs");
        cJSON_AddItemToArray(o, cJSON_CreateString("flac"));
    }
    cJSON *l = cJSON_GetObjectItemCaseSensitive(c, "loudness");
    if (!l)
        l = cJSON_AddObjectToObject(c, "loudness");
    const struct loudness_preset *preset = find_preset(cz_json_str(l, "preset"));
    if (!cJSON_HasObjectItem(l, "target_lufs"))
        cJSON_AddNumberToObject(l, "target_lufs", preset ? preset->target_lufs : -14);
    if (!cJSON_HasObjectItem(l, "true_peak_dbtp"))
        cJSON_AddNumberToObject(l, "true_peak_dbtp", preset ? preset->true_peak_dbtp : -1);
    if (!cJSON_HasObjectItem(c, "stems"))
        cJSON_AddBoolToObject(c, "stems", false);
    if (!cJSON_HasObjectItem(c, "review"))
        cJSON_AddStringToObject(c, "review", "auto");
    if (!cJSON_HasObjectItem(c, "metadata"))
        cJSON_AddObjectToObject(c, "metadata");
}

/* The fields that shape the audio: a request that repeats them all (and the
 * seed, unless the client let the cache pick any earlier result) asks for
 * the same track. metadata, webhook, review and cache do not count. */
static const char *const shaping_fields[] = {"prompt",     "controls", "duration_s", "model",
                                             "quality",    "outputs",  "loudness",   "stems",
                                             "parameters", NULL};

/* Fills @p key with the hash of what shapes the audio when the request may
 * be answered by an earlier job: when it names its seed (the model is
 * deterministic), or says "cache": true; never when it says "cache": false. */
static void cache_key_of(const cJSON *c, bool seeded, const char *model, char key[CZ_SHA256_HEX]) {
    const cJSON *opt = cJSON_GetObjectItemCaseSensitive(c, "cache");
    key[0] = '\0';
    if (cJSON_IsFalse(opt) || (!seeded && !cJSON_IsTrue(opt)))
        return;
    cJSON *g = cJSON_CreateObject();
    for (int i = 0; shaping_fields[i]; i++) {
        const cJSON *f = cJSON_GetObjectItemCaseSensitive(c, shaping_fields[i]);
        if (model && !strcmp(shaping_fields[i], "model"))
            cJSON_AddStringToObject(g, "model", model); /* the version that runs */
        else if (f)
            cJSON_AddItemToObject(g, shaping_fields[i], cJSON_Duplicate(f, true));
    }
    if (seeded)
        cJSON_AddItemToObject(g, "seed", cJSON_Duplicate(cJSON_GetObjectItem(c, "seed"), true));
    char *json = cz_json_canonical(g);
    if (json)
        cz_sha256_hex(json, strlen(json), key);
    free(json);
    cJSON_Delete(g);
}

int cz_request_read_object(const char *body, size_t len, cJSON **object, cz_request_error *e) {
    *object = NULL;
    memset(e, 0, sizeof *e);
    if (len > CZ_REQUEST_MAX_BODY)
        return fail(e, 413, "body-too-large", "", "the body is larger than %d bytes",
                    CZ_REQUEST_MAX_BODY);
    /* cJSON would copy a raw NUL into a string and cut it short there. */
    if (memchr(body, '\0', len))
        return fail(e, 400, "malformed-json", "", "the body contains a NUL byte");
    const char *end = NULL;
    cJSON *in = cJSON_ParseWithLengthOpts(body, len, &end, false);
    if (in) {
        /* Only whitespace may follow the value. */
        while (end < body + len && isspace((unsigned char)*end))
            end++;
        if (end != body + len) {
            cJSON_Delete(in);
            in = NULL;
        }
    }
    if (!in)
        return fail(e, 400, "malformed-json", "", "the body is not valid JSON");
    char bad[64] = "";
    if (find_bad_utf8(in, bad, sizeof bad)) {
        cJSON_Delete(in);
        for (size_t n = strlen(bad); n && !cz_json_utf8(bad);) /* a path cut mid-character */
            bad[--n] = '\0';
        return fail(e, 422, "invalid-field", bad, "strings and field names must be UTF-8");
    }
    if (has_nul_escape(body, len)) {
        cJSON_Delete(in);
        return fail(e, 422, "invalid-field", "", "strings must not contain \\u0000");
    }
    if (!cJSON_IsObject(in)) {
        cJSON_Delete(in);
        return fail(e, 422, "invalid-body", "", "the body must be a JSON object");
    }
    *object = in;
    return 0;
}

int cz_request_parse(const char *body, size_t len, uint64_t fallback_seed, cz_request *out,
                     cz_request_error *e) {
    memset(out, 0, sizeof *out);
    cJSON *in;
    if (cz_request_read_object(body, len, &in, e))
        return -1;

    cJSON *c = cJSON_CreateObject();
    int rc = 0;
    for (const cJSON *m = in->child; m && !rc; m = m->next) {
        const struct field *f = find_field(m->string);
        if (!f) {
            char name[61];
            copy_utf8(name, sizeof name, m->string);
            rc = fail(e, 422, "unknown-field", name, "unknown field \"%s\"", name);
        } else if (cJSON_HasObjectItem(c, m->string))
            rc = invalid(e, m->string, "%s is given twice", m->string);
        else
            rc = f->check(m, c, e);
    }
    if (!rc && !cJSON_HasObjectItem(c, "prompt"))
        rc = fail(e, 422, "missing-field", "prompt", "prompt is required");
    if (!rc)
        rc = add_controls(c, e);
    cJSON_Delete(in);
    if (rc) {
        cJSON_Delete(c);
        return rc;
    }

    bool seeded = cJSON_HasObjectItem(c, "seed");
    fill_defaults(c, fallback_seed);
    cache_key_of(c, seeded, NULL, out->cache_key);
    out->canonical = c;
    out->json = cz_json_canonical(c);
    cz_sha256_hex(out->json, strlen(out->json), out->hash);
    out->model = cz_json_str(c, "model");
    snprintf(out->model_run, sizeof out->model_run, "%s", out->model);
    out->seeded = seeded;
    out->seed = (uint64_t)cz_json_num(c, "seed", 0);
    return 0;
}

bool cz_request_idempotency_key_valid(const char *key) {
    size_t n = strlen(key);
    for (size_t i = 0; i < n; i++)
        if (key[i] < 0x20 || key[i] > 0x7e)
            return false;
    return n >= 1 && n <= 255;
}

void cz_request_set_model(cz_request *r, const char *model) {
    snprintf(r->model_run, sizeof r->model_run, "%s", model);
    /* A pin runs as itself: its key already names the version. */
    if (r->cache_key[0] && strcmp(model, r->model))
        cache_key_of(r->canonical, r->seeded, model, r->cache_key);
}

void cz_request_free(cz_request *r) {
    cJSON_Delete(r->canonical);
    free(r->json);
    memset(r, 0, sizeof *r);
}
