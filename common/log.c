/* JSON-lines logger: see log.h. Each line is formatted into a local buffer
 * and written with a single write(2), so lines from threads never interleave. */
#include "common/log.h"

#include "common/clock.h"
#include "common/json.h"

#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

static const char *log_process = "cadenza";
static cz_log_level log_min = CZ_LOG_INFO;

void cz_log_init(const char *process) {
    log_process = process;
    const char *lvl = getenv("CADENZA_LOG_LEVEL");
    if (!lvl)
        return;
    if (!strcasecmp(lvl, "debug"))
        log_min = CZ_LOG_DEBUG;
    else if (!strcasecmp(lvl, "warn"))
        log_min = CZ_LOG_WARN;
    else if (!strcasecmp(lvl, "error"))
        log_min = CZ_LOG_ERROR;
}

void cz_log_job(cz_log_level level, const char *job_id, const char *trace_id, const char *fmt,
                ...) {
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < log_min)
        return;

    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    char when[CZ_RFC3339_LEN];
    cz_now_rfc3339(when);

    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "ts", when);
    cJSON_AddStringToObject(o, "level", names[level]);
    cJSON_AddStringToObject(o, "proc", log_process);
    if (job_id)
        cJSON_AddStringToObject(o, "job_id", job_id);
    if (trace_id)
        cJSON_AddStringToObject(o, "trace_id", trace_id);
    cJSON_AddStringToObject(o, "msg", msg);
    char *line = cz_json_print(o);
    cJSON_Delete(o);
    size_t n = strlen(line);
    line[n] = '\n'; /* replaces the terminator; the length is known */
    ssize_t w = write(STDERR_FILENO, line, n + 1);
    (void)w;
    free(line);
}
