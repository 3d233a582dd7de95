/* Quality assurance of a master: the measurements that are not loudness
 * (clipping, silence, DC offset, stereo correlation), and the QA report
 * that carries every figure with one verdict per rule. A rule that fails
 * adds a flag, a sentence a curator can act on, and turns the report's
 * overall verdict to "review": nothing questionable passes silently. */
#ifndef CZ_QA_H
#define CZ_QA_H

#include <cjson/cJSON.h>
#include <stdbool.h>

#include "workers/master/audio.h"
#include "workers/master/master.h"

/* Rule thresholds, documented in docs/api.md. */
#define CZ_QA_SILENCE_DBFS -60.0      /* a 100 ms window quieter than this is silent */
#define CZ_QA_SILENCE_MAX_RATIO 0.5   /* more silence than this needs a look */
#define CZ_QA_CLIPPED_MAX_RATIO 0.001 /* more clipped source samples than this is heavy */
#define CZ_QA_DC_MAX 0.001            /* DC offset left in the master, linear */

/** Sample statistics of one signal. */
typedef struct cz_qa_stats {
    size_t clipped_samples; /* samples at full scale in runs of two or more */
    double clipped_ratio;   /* clipped_samples / all samples */
    double silence_ratio;   /* share of 100 ms windows below CZ_QA_SILENCE_DBFS */
    double dc_offset;       /* largest per-channel mean, linear (signed) */
    double correlation;     /* Pearson correlation of the first two channels; NAN for mono */
} cz_qa_stats;

/** @brief Scans @p a once for clipping, silence, DC offset and correlation. */
void cz_qa_scan(const cz_audio *a, cz_qa_stats *out);

/**
 * @brief Builds the QA report of a master from the chain's report @p rep,
 * its target @p t (and @p preset name, or NULL), the source's statistics
 * @p in (at @p in_rate Hz) and the master's @p out, with a verdict for each
 * rule: loudness, true_peak, silence, source_clipping, dc_offset.
 * @returns a new cJSON object the caller owns.
 */
cJSON *cz_qa_report(const cz_master_report *rep, const cz_master_target *t, const char *preset,
                    const cz_qa_stats *in, unsigned in_rate, const cz_qa_stats *out,
                    const cz_audio *master);

/**
 * @brief Records rule @p rule's verdict in @p report; a failed rule adds
 * @p reason to the flags and sets the overall verdict to "review".
 */
void cz_qa_rule(cJSON *report, const char *rule, bool pass, const char *reason);

/* The curves a curator's page draws (docs/review.md): at most this many
 * points each, so the report stays a few kilobytes whatever the length. */
#define CZ_QA_CURVE_MAX_POINTS 300
#define CZ_QA_WAVEFORM_POINTS 300
#define CZ_QA_MOMENTARY_S 0.4 /* EBU R 128 momentary loudness window */

/**
 * @brief Adds two drawings of the master @p a to @p report, so a page can
 * show them without decoding audio:
 *   "loudness_curve": {"window_s": 0.4, "hop_s": h, "lufs": [...]}, the
 *     momentary loudness (EBU R 128, 400 ms, libebur128) at t = h, 2h, ...,
 *     null where silent, with h the shortest of 0.4, 1, 2, 5, 10 s that
 *     keeps it to CZ_QA_CURVE_MAX_POINTS;
 *   "waveform": {"points": n, "seconds_per_point": s, "min": [...],
 *     "max": [...]}, the lowest and highest sample (over channels) of each
 *     of n equal slices, to 0.01 of full scale.
 * @returns 0, or -1 with @p err filled (libebur128 refused the signal).
 */
int cz_qa_curves(const cz_audio *a, cJSON *report, cz_err *err);

#endif
