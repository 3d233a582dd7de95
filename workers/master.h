/* The post-processing chain of the walking skeleton: measure, gain to the
 * job's loudness target, guard the true-peak ceiling, re-measure. */
#ifndef CZ_MASTER_H
#define CZ_MASTER_H

#include "audio.h"

typedef struct cz_master_target {
    double target_lufs;    /* e.g. -14 */
    double true_peak_dbtp; /* ceiling, e.g. -1 */
} cz_master_target;

typedef struct cz_master_report {
    cz_loudness input;  /* before the chain */
    cz_loudness output; /* after the chain, measured on the result */
    double gain_db;     /* loudness gain applied */
} cz_master_report;

/**
 * @brief Masters @p a in place to @p t and reports the measurements.
 * @returns 0, or -1 with @p err filled (e.g. the input is silent).
 */
int cz_master_apply(cz_audio *a, const cz_master_target *t, cz_master_report *rep, cz_err *err);

#endif
