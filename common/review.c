/* The review rules: see review.h. */
#include "common/review.h"

#include <stdio.h>
#include <string.h>

static const char *const decision_names[] = {"approve", "reject", "regenerate"};

const char *cz_review_decision_name(cz_review_decision_kind d) {
    return (unsigned)d < 3 ? decision_names[d] : "unknown";
}

int cz_review_decision_parse(const char *name) {
    for (int i = 0; name && i < 3; i++)
        if (!strcmp(name, decision_names[i]))
            return i;
    return -1;
}

static void add_reason(cJSON *reasons, const char *rule, const char *detail) {
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "rule", rule);
    cJSON_AddStringToObject(r, "detail", detail);
    cJSON_AddItemToArray(reasons, r);
}

cJSON *cz_review_reasons(const cJSON *qa, const char *request_review, bool tenant_always,
                         const char *tenant) {
    cJSON *reasons = cJSON_CreateArray();
    const cJSON *verdicts = cJSON_GetObjectItemCaseSensitive(qa, "verdicts");
    const cJSON *flag = cJSON_GetObjectItemCaseSensitive(qa, "flags");
    flag = cJSON_IsArray(flag) ? flag->child : NULL;
    const cJSON *v;
    cJSON_ArrayForEach(v, verdicts) {
        if (!cJSON_IsString(v) || strcmp(v->valuestring, "fail"))
            continue;
        char fallback[96];
        snprintf(fallback, sizeof fallback, "the QA rule %s failed", v->string);
        add_reason(reasons, v->string, cJSON_IsString(flag) ? flag->valuestring : fallback);
        flag = flag ? flag->next : NULL;
    }
    if (request_review && !strcmp(request_review, "always"))
        add_reason(reasons, "requested", "the request asked for review (\"review\": \"always\")");
    if (tenant_always) {
        char detail[160];
        snprintf(detail, sizeof detail, "tenant %s has every track reviewed (its review policy)",
                 tenant ? tenant : "");
        add_reason(reasons, "tenant_policy", detail);
    }
    return reasons;
}
