/* Webhooks, the pure parts: see webhook.h. */
#include "common/webhook.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/ids.h"
#include "common/mem.h"

static const char *const events[] = {
    "job.succeeded", "job.failed",  "job.canceled", "job.in_review",
    "job.rejected",  "job.started", "job.progress", NULL,
};

bool cz_webhook_event_valid(const char *name) {
    for (int i = 0; name && events[i]; i++)
        if (!strcmp(name, events[i]))
            return true;
    return false;
}

const char *const *cz_webhook_events(void) {
    return events;
}

const char *cz_webhook_event_for_state(cz_job_state to) {
    switch (to) {
    case CZ_JOB_GENERATING:
        return "job.started";
    case CZ_JOB_IN_REVIEW:
        return "job.in_review";
    case CZ_JOB_SUCCEEDED:
        return "job.succeeded";
    case CZ_JOB_FAILED:
        return "job.failed";
    case CZ_JOB_CANCELED:
        return "job.canceled";
    case CZ_JOB_REJECTED:
        return "job.rejected";
    default:
        return NULL;
    }
}

/* ---- secrets and signatures ---------------------------------------------- */

void cz_webhook_secret_new(char out[CZ_WEBHOOK_SECRET_MAX]) {
    unsigned char key[CZ_WEBHOOK_SECRET_BYTES];
    cz_random_bytes(key, sizeof key);
    memcpy(out, "whsec_", 6);
    EVP_EncodeBlock((unsigned char *)out + 6, key, sizeof key);
}

int cz_webhook_secret_key(const char *secret, unsigned char *key, size_t n) {
    if (!secret)
        return -1;
    if (!strncmp(secret, "whsec_", 6))
        secret += 6;
    size_t len = strlen(secret);
    if (len == 0 || len % 4 || len / 4 * 3 > 96)
        return -1;
    unsigned char buf[96];
    int got = EVP_DecodeBlock(buf, (const unsigned char *)secret, (int)len);
    if (got < 0)
        return -1;
    /* EVP_DecodeBlock counts the bytes the padding stands for. */
    got -= (secret[len - 1] == '=') + (secret[len - 2] == '=');
    if (got < 1 || (size_t)got > n)
        return -1;
    memcpy(key, buf, (size_t)got);
    return got;
}

int cz_webhook_sign(const char *secret, const char *id, long long timestamp, const char *body,
                    size_t len, char out[CZ_WEBHOOK_SIG_LEN]) {
    unsigned char key[96];
    int klen = cz_webhook_secret_key(secret, key, sizeof key);
    if (klen < 0)
        return -1;
    char prefix[160];
    int plen = snprintf(prefix, sizeof prefix, "%s.%lld.", id, timestamp);
    if (plen < 0 || (size_t)plen >= sizeof prefix)
        return -1;
    /* One buffer: OpenSSL 3 keeps only the one-shot HMAC() undeprecated. */
    unsigned char *msg = cz_malloc((size_t)plen + len);
    memcpy(msg, prefix, (size_t)plen);
    memcpy(msg + plen, body, len);
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mlen = 0;
    unsigned char *ok = HMAC(EVP_sha256(), key, klen, msg, (size_t)plen + len, mac, &mlen);
    free(msg);
    if (!ok || mlen != 32)
        return -1;
    memcpy(out, "v1,", 3);
    EVP_EncodeBlock((unsigned char *)out + 3, mac, (int)mlen);
    return 0;
}

/* ---- the schedule --------------------------------------------------------- */

int cz_webhook_schedule_parse(const char *text, cz_webhook_schedule *s, cz_err *err) {
    s->n = 0;
    const char *p = text;
    while (p && *p) {
        while (*p == ' ')
            p++;
        if (!isdigit((unsigned char)*p))
            return cz_err_set(err,
                              "webhook schedule \"%s\": each entry is a number and a unit "
                              "(ms, s, m, h), such as 5s or 30m",
                              text);
        char *end;
        long long v = strtoll(p, &end, 10);
        long long unit = 1000;
        if (!strncmp(end, "ms", 2))
            unit = 1, end += 2;
        else if (*end == 's')
            unit = 1000, end++;
        else if (*end == 'm')
            unit = 60000, end++;
        else if (*end == 'h')
            unit = 3600000, end++;
        while (*end == ' ')
            end++;
        if ((*end && *end != ',') || v > 7LL * 24 * 3600 * 1000 / unit)
            return cz_err_set(err,
                              "webhook schedule \"%s\": each entry is a number and a unit "
                              "(ms, s, m, h) of at most a week",
                              text);
        if (s->n == CZ_WEBHOOK_SCHEDULE_MAX)
            return cz_err_set(err, "webhook schedule \"%s\": at most %d attempts", text,
                              CZ_WEBHOOK_SCHEDULE_MAX);
        s->delay_ms[s->n++] = v * unit;
        p = *end ? end + 1 : end;
    }
    if (s->n == 0)
        return cz_err_set(err, "webhook schedule is empty: list each attempt's delay, such as %s",
                          CZ_WEBHOOK_DEFAULT_SCHEDULE);
    if (s->delay_ms[0] != 0)
        return cz_err_set(err,
                          "webhook schedule \"%s\": the first entry is the first attempt "
                          "and must be 0 (immediately)",
                          text);
    return 0;
}

int64_t cz_webhook_jitter_ms(int64_t delay_ms, uint64_t dice) {
    if (delay_ms <= 0)
        return 0;
    /* 53 random bits as a fraction in [0, 1], mapped to [0.8, 1.2]. */
    double u = (double)(dice >> 11) / (double)((1ULL << 53) - 1);
    return (int64_t)((double)delay_ms * (0.8 + 0.4 * u) + 0.5);
}

int64_t cz_webhook_retry_after_ms(const char *value, time_t now) {
    if (!value)
        return -1;
    while (*value == ' ' || *value == '\t')
        value++;
    if (isdigit((unsigned char)*value)) {
        char *end;
        long long secs = strtoll(value, &end, 10);
        while (*end == ' ' || *end == '\t')
            end++;
        if (*end)
            return -1;
        return secs > CZ_WEBHOOK_RETRY_AFTER_CAP_MS / 1000 ? CZ_WEBHOOK_RETRY_AFTER_CAP_MS
                                                           : secs * 1000;
    }
    /* IMF-fixdate, the form RFC 9110 requires senders to use. */
    struct tm tm = {0};
    const char *end = strptime(value, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!end || *end)
        return -1;
    time_t at = timegm(&tm);
    if (at <= now)
        return 0;
    long long ms = (long long)(at - now) * 1000;
    return ms > CZ_WEBHOOK_RETRY_AFTER_CAP_MS ? CZ_WEBHOOK_RETRY_AFTER_CAP_MS : ms;
}

cz_webhook_verdict cz_webhook_decide(const cz_webhook_schedule *s, int tries, int status,
                                     int64_t retry_after_ms, uint64_t dice, int64_t *delay_ms) {
    *delay_ms = 0;
    if (status >= 200 && status < 300)
        return CZ_WEBHOOK_SUCCEEDED;
    if (status == 410)
        return CZ_WEBHOOK_GONE;
    if (tries < 1 || tries >= s->n)
        return CZ_WEBHOOK_EXHAUSTED;
    int64_t d = cz_webhook_jitter_ms(s->delay_ms[tries], dice);
    if (retry_after_ms > d)
        d = retry_after_ms < CZ_WEBHOOK_RETRY_AFTER_CAP_MS ? retry_after_ms
                                                           : CZ_WEBHOOK_RETRY_AFTER_CAP_MS;
    *delay_ms = d;
    return CZ_WEBHOOK_RETRY;
}

const char *cz_webhook_verdict_state(cz_webhook_verdict v) {
    return v == CZ_WEBHOOK_SUCCEEDED ? "succeeded" : v == CZ_WEBHOOK_RETRY ? "pending" : "failed";
}
