/* A curator's decision (approve, reject, regenerate) applied to a job in
 * review, in the caller's transaction. */
#ifndef CZ_DB_DECISION_H
#define CZ_DB_DECISION_H

#include <libpq-fe.h>

#include "common/db/jobs.h"
#include "common/db/review.h"
#include "common/err.h"

/**
 * @brief Applies decision @p d inside the caller's transaction: locks the
 * task and its job, checks the task is open and not held by another
 * curator's live claim, applies the job's event (approved or rejected)
 * through cz_db_job_apply_tx() with @p policy, for regenerate first stores
 * the new job (same request, the new seed, regenerated_from set, its
 * generate message in the outbox), records the decision in the task and
 * the audit. The caller commits, then publishes @p out->announce.
 * @returns 0 with @p out filled (free with cz_review_outcome_free; on a
 * status other than CZ_REVIEW_OK nothing was written), or -1 with @p err.
 */
int cz_db_review_decide_tx(PGconn *c, const cz_review_decision *d, const cz_apply_policy *policy,
                           cz_review_outcome *out, cz_err *err);

#endif
