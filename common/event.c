/* Status event schema: see event.h. */
#include "common/event.h"

#include <string.h>

#include "common/clock.h"
#include "common/json.h"

cJSON *cz_event_new(cz_job_event type, const char *job_id, int attempt, const char *worker) {
    char now[CZ_RFC3339_LEN];
    cz_now_rfc3339(now);
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "schema", CZ_EVENT_SCHEMA);
    cJSON_AddStringToObject(o, "type", cz_job_event_name(type));
    cJSON_AddStringToObject(o, "job_id", job_id);
    cJSON_AddNumberToObject(o, "attempt", attempt);
    cJSON_AddStringToObject(o, "at", now);
    if (worker)
        cJSON_AddStringToObject(o, "worker", worker);
    return o;
}

int cz_event_parse(const char *json, size_t len, cz_event *ev, cz_err *err) {
    memset(ev, 0, sizeof *ev);
    ev->root = cJSON_ParseWithLength(json, len);
    if (!cJSON_IsObject(ev->root)) {
        cz_event_free(ev);
        return cz_err_set(err, "event is not a JSON object");
    }
    double schema = cz_json_num(ev->root, "schema", 0);
    if (schema != CZ_EVENT_SCHEMA) {
        cz_event_free(ev);
        return cz_err_set(err, "event schema %g is not %d", schema, CZ_EVENT_SCHEMA);
    }
    int type = cz_job_event_parse(cz_json_str(ev->root, "type"));
    const char *id = cz_json_str(ev->root, "job_id");
    double attempt = cz_json_num(ev->root, "attempt", 0);
    if (type < 0 || !cz_uuid_valid(id) || attempt < 1 || !cz_json_is_integer(attempt)) {
        cz_event_free(ev);
        return cz_err_set(err, "event lacks a valid type, job_id or attempt");
    }
    ev->type = (cz_job_event)type;
    memcpy(ev->job_id, id, CZ_UUID_LEN);
    ev->attempt = (int)attempt;
    ev->worker = cz_json_str(ev->root, "worker");
    ev->stage = cz_json_str(ev->root, "stage");
    ev->percent = cz_json_num(ev->root, "percent", 0);
    ev->compute_ms = (long long)cz_json_num(ev->root, "compute_ms", 0);
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(ev->root, "artifacts");
    ev->artifacts = cJSON_IsArray(a) ? a : NULL;
    const cJSON *qa = cJSON_GetObjectItemCaseSensitive(ev->root, "qa");
    ev->qa = cJSON_IsObject(qa) ? qa : NULL;
    const cJSON *f = cJSON_GetObjectItemCaseSensitive(ev->root, "failure");
    ev->failure_class = cz_json_str(f, "class");
    ev->failure_detail = cz_json_str(f, "detail");
    return 0;
}

void cz_event_free(cz_event *ev) {
    cJSON_Delete(ev->root);
    ev->root = NULL;
}
