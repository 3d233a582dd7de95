/* The mastering chain: DC/high-pass, a gentle bus compressor, gain to the
 * job's loudness target, a look-ahead true-peak limiter, then re-measurement
 * with libebur128 and correction until the master is within tolerance of
 * its target and at or under its ceiling. Loudness presets live here too. */
#ifndef CZ_MASTER_H
#define CZ_MASTER_H

#include <stdbool.h>

#include "workers/master/audio.h"

typedef struct cz_master_target {
    double target_lufs;    /* e.g. -14 */
    double true_peak_dbtp; /* ceiling, e.g. -1 */
} cz_master_target;

/** Every knob of the chain; recorded in each job's provenance manifest. */
typedef struct cz_master_settings {
    double highpass_hz;       /* DC removal / rumble filter corner */
    double comp_threshold_lu; /* compressor threshold above the input's loudness */
    double comp_ratio;        /* e.g. 2 for 2:1 */
    double comp_knee_db;      /* soft knee width */
    double comp_attack_ms;    /* detector attack */
    double comp_release_ms;   /* detector release */
    double comp_max_db;       /* most gain reduction the compressor applies */
    double limiter_lookahead_ms;
    double limiter_release_ms;
    double limiter_margin_db; /* first guess of headroom under the ceiling */
    double max_push_db;       /* most gain added above the plain loudness gain */
    double aim_lu;            /* correct when the verified loudness misses by more */
    double tolerance_lu;      /* a master further than this from target misses it */
    int max_corrections;      /* libebur128-verified corrections after the first pass */
} cz_master_settings;

typedef struct cz_master_report {
    cz_loudness input;    /* the source: integrated loudness and peaks (chain's own meter) */
    cz_loudness output;   /* the master, measured by libebur128 */
    double gain_db;       /* loudness gain applied */
    double compressor_db; /* largest compressor gain reduction */
    double limiter_db;    /* largest limiter gain reduction */
    int passes;           /* libebur128 verifications run (1 + corrections) */
    bool met;             /* within tolerance of target and at or under the ceiling */
} cz_master_report;

/** A named loudness preset. */
typedef struct cz_master_preset {
    const char *name;
    double target_lufs;
    double true_peak_dbtp;
} cz_master_preset;

/** @brief Fills @p s with the chain's default settings. */
void cz_master_defaults(cz_master_settings *s);

/**
 * @brief Looks up a loudness preset: streaming (-14/-1), podcast (-16/-1),
 * broadcast (EBU R 128, -23/-1).
 * @returns the preset, or NULL for an unknown name.
 */
const cz_master_preset *cz_master_preset_find(const char *name);

/**
 * @brief Masters @p a in place to @p t with the default settings.
 * @returns 0, or -1 with @p err filled (e.g. the input is silent).
 */
int cz_master_apply(cz_audio *a, const cz_master_target *t, cz_master_report *rep, cz_err *err);

/**
 * @brief Masters @p a in place to @p t with settings @p s. The report's
 * output figures are libebur128's measurement of the returned samples;
 * report->met says whether the target and ceiling were both reached. When
 * they cannot both be, the ceiling wins.
 * @returns 0, or -1 with @p err filled (silent input, bad target, no memory).
 */
int cz_master_apply_with(cz_audio *a, const cz_master_target *t, const cz_master_settings *s,
                         cz_master_report *rep, cz_err *err);

#endif
