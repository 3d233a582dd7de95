/* Failure classes and retry policy: see failure.h. */
#include "common/failure.h"

#include <string.h>

static const struct {
    const char *name;
    bool retryable;
} classes[] = {
    {"invalid_input", false},      {"model_error", true}, {"timeout", true},  {"oom", true},
    {"backend_unavailable", true}, {"worker_lost", true}, {"internal", true},
};

static int find(const char *name) {
    for (size_t i = 0; name && i < sizeof classes / sizeof *classes; i++)
        if (!strcmp(name, classes[i].name))
            return (int)i;
    return -1;
}

bool cz_failure_class_valid(const char *failure_class) {
    return find(failure_class) >= 0;
}

bool cz_failure_retryable(const char *failure_class) {
    int i = find(failure_class);
    /* An unknown class is a bug somewhere: treat it as internal (retryable). */
    return i < 0 || classes[i].retryable;
}

int64_t cz_failure_backoff_ms(int attempt, int64_t base_ms, int64_t cap_ms, uint64_t random) {
    int64_t ceiling = base_ms;
    for (int i = 1; i < attempt && ceiling < cap_ms; i++)
        ceiling *= 2;
    if (ceiling > cap_ms)
        ceiling = cap_ms;
    if (ceiling <= 0)
        return 0;
    return (int64_t)(random % (uint64_t)(ceiling + 1));
}
