/* The review rules: why a mastered job waits for a curator.
 *
 * A job goes to in_review, instead of succeeding, when any of these holds:
 *   - a QA rule failed (loudness, true_peak, silence, source_clipping,
 *     dc_offset: workers/master/qa.c), including `catalog`, a catalogue track
 *     matched at or over the threshold;
 *   - its request says "review": "always";
 *   - its tenant's review policy is "always" (tenants.review_policy).
 * Each holds as one reason {"rule": ..., "detail": a sentence for the
 * curator}; the post pool sends them with its needs_review event and the
 * scheduler stores them in the job's review task. One definition, used by
 * the post pool to decide and by the scheduler for events that carry no
 * reasons of their own (sent before reasons existed). Pure: no I/O. */
#ifndef CZ_REVIEW_H
#define CZ_REVIEW_H

#include <cjson/cJSON.h>
#include <stdbool.h>

/* The decisions a curator can take. */
typedef enum cz_review_decision_kind {
    CZ_REVIEW_APPROVE,    /* the job succeeds */
    CZ_REVIEW_REJECT,     /* the job is rejected; a reason is required */
    CZ_REVIEW_REGENERATE, /* the job is rejected and a new one, with a new seed, replaces it */
} cz_review_decision_kind;

/** @brief The wire name of @p d ("approve", "reject", "regenerate"). */
const char *cz_review_decision_name(cz_review_decision_kind d);

/** @brief Parses a decision name. @returns the decision, or -1 if unknown. */
int cz_review_decision_parse(const char *name);

/**
 * @brief The reasons a job with QA report @p qa must be reviewed: one per
 * failed QA rule (its flag as the detail), then "requested" when
 * @p request_review is "always", then "tenant_policy" when
 * @p tenant_always (naming @p tenant).
 * Failed rules are matched with the report's flags in order: qa.c adds a
 * flag for each failed rule, in the order of the verdicts.
 * @returns a new JSON array (caller frees); empty when nothing needs review.
 */
cJSON *cz_review_reasons(const cJSON *qa, const char *request_review, bool tenant_always,
                         const char *tenant);

#endif
