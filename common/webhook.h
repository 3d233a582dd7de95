/* Webhooks, the pure parts: event names, Standard Webhooks secrets and
 * signatures, the retry schedule with its jitter, Retry-After, and what an
 * attempt's outcome means for its delivery. No I/O, so every rule here is
 * unit-tested on its own (tests/unit/test_webhook.c).
 *
 * Signatures follow Standard Webhooks (https://www.standardwebhooks.com):
 * a secret is "whsec_" followed by the base64 of random bytes, and a
 * message is signed as
 *
 *     v1,<base64 of HMAC-SHA256(key, "<webhook-id>.<webhook-timestamp>.<body>")>
 *
 * where key is the secret's decoded bytes. During a secret rotation the
 * header carries one signature per live secret, separated by spaces.
 *
 * The schedule is a list of delays, one per attempt: the first is the first
 * attempt's (0: immediately), each later one is counted from the attempt
 * before it. A delay is drawn within +-20% of its nominal value so that
 * receivers coming back from an outage are not hit by every retry at once. */
#ifndef CZ_WEBHOOK_H
#define CZ_WEBHOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "common/err.h"
#include "common/job_state.h"

/* "whsec_" + base64 of 32 bytes (44 characters) + NUL, with room for
 * longer secrets of up to 64 bytes imported from elsewhere. */
#define CZ_WEBHOOK_SECRET_MAX 96
#define CZ_WEBHOOK_SECRET_BYTES 32
/* "v1," + 44 base64 characters + NUL */
#define CZ_WEBHOOK_SIG_LEN 48

/* Events an endpoint or a job's webhook gets when it names none. */
#define CZ_WEBHOOK_DEFAULT_EVENTS                                                                  \
    "{job.succeeded,job.failed,job.canceled,job.in_review,job.rejected}"

/* The documented production schedule: 8 attempts over about 28 hours. */
#define CZ_WEBHOOK_DEFAULT_SCHEDULE "0,5s,5m,30m,2h,5h,10h,10h"
#define CZ_WEBHOOK_SCHEDULE_MAX 16

/* The longest a Retry-After may hold a delivery back. */
#define CZ_WEBHOOK_RETRY_AFTER_CAP_MS (24LL * 3600 * 1000)

/** @brief True when @p name is one of the job.* event types. */
bool cz_webhook_event_valid(const char *name);

/** @brief The NULL-terminated list of every event type. */
const char *const *cz_webhook_events(void);

/**
 * @brief The event a job's move to @p to announces.
 * @returns "job.succeeded" and so on, "job.started" for generating, or NULL
 * for states no event announces (queued, dispatched, generated, ...).
 */
const char *cz_webhook_event_for_state(cz_job_state to);

/** @brief Writes a new secret ("whsec_" + base64 of 32 random bytes) into @p out. */
void cz_webhook_secret_new(char out[CZ_WEBHOOK_SECRET_MAX]);

/**
 * @brief Decodes @p secret (with or without the "whsec_" prefix) into its key
 * bytes.
 * @returns the key's length (>= 1), or -1 when it is not valid base64 or its
 * key is longer than @p n bytes.
 */
int cz_webhook_secret_key(const char *secret, unsigned char *key, size_t n);

/**
 * @brief Signs one message with @p secret: writes "v1,<base64>" into @p out.
 * @returns 0, or -1 when the secret cannot be decoded.
 */
int cz_webhook_sign(const char *secret, const char *id, long long timestamp, const char *body,
                    size_t len, char out[CZ_WEBHOOK_SIG_LEN]);

/** The delays before each attempt, in milliseconds. */
typedef struct cz_webhook_schedule {
    int n;
    int64_t delay_ms[CZ_WEBHOOK_SCHEDULE_MAX];
} cz_webhook_schedule;

/**
 * @brief Parses a comma-separated schedule such as "0,5s,5m,30m,2h": each
 * entry a whole number with a unit (ms, s, m, h; none means seconds). The
 * first entry is the first attempt and must be 0.
 * @returns 0, or -1 with @p err filled.
 */
int cz_webhook_schedule_parse(const char *text, cz_webhook_schedule *s, cz_err *err);

/**
 * @brief @p delay_ms with jitter: uniform in [0.8, 1.2] x delay_ms, from the
 * random 64 bits @p dice.
 */
int64_t cz_webhook_jitter_ms(int64_t delay_ms, uint64_t dice);

/**
 * @brief Reads a Retry-After value (delay-seconds or an HTTP-date, RFC 9110
 * 10.2.3) received at @p now.
 * @returns milliseconds to wait (0 for a date in the past), or -1 when
 * @p value is NULL or not a valid Retry-After.
 */
int64_t cz_webhook_retry_after_ms(const char *value, time_t now);

/** What a delivery does after an attempt. */
typedef enum cz_webhook_verdict {
    CZ_WEBHOOK_SUCCEEDED, /* a 2xx: done */
    CZ_WEBHOOK_RETRY,     /* try again after the delay */
    CZ_WEBHOOK_EXHAUSTED, /* the schedule is used up: failed */
    CZ_WEBHOOK_GONE,      /* 410: failed, and the endpoint is disabled */
} cz_webhook_verdict;

/**
 * @brief Decides what follows attempt number @p tries (1-based, counted from
 * the delivery's creation or its last redelivery) that ended with HTTP
 * @p status (0: no response: a network error, a timeout, a refused address).
 * A retry's delay is the schedule's next entry with jitter, or the
 * receiver's Retry-After (@p retry_after_ms, -1 when absent) when that is
 * longer, at most CZ_WEBHOOK_RETRY_AFTER_CAP_MS.
 * @returns the verdict, with @p delay_ms set for CZ_WEBHOOK_RETRY.
 */
cz_webhook_verdict cz_webhook_decide(const cz_webhook_schedule *s, int tries, int status,
                                     int64_t retry_after_ms, uint64_t dice, int64_t *delay_ms);

/** @brief The verdict's name as a delivery state: succeeded, pending or failed. */
const char *cz_webhook_verdict_state(cz_webhook_verdict v);

#endif
