/* The signal processing blocks of the post chain, each a plain function over
 * a cz_audio or over per-frame arrays: DC/high-pass filter, bus compressor,
 * 4x oversampled true-peak detector, look-ahead limiter gain, and a fast
 * BS.1770 meter that the chain uses to converge on its gain before the final
 * libebur128 verification. master.c strings them together. */
#ifndef CZ_DSP_H
#define CZ_DSP_H

#include <stddef.h>

#include "workers/master/audio.h"

/** Settings of the gentle bus compressor. */
typedef struct cz_comp_params {
    double threshold_db; /* detector level where compression starts, dBFS */
    double ratio;        /* e.g. 2 for 2:1 */
    double knee_db;      /* soft knee width */
    double attack_ms, release_ms;
    double max_reduction_db; /* gain reduction never exceeds this */
} cz_comp_params;

/**
 * @brief Second-order Butterworth high-pass at @p cutoff_hz on every channel
 * of @p a, in place: removes DC offset and subsonic rumble.
 */
void cz_dsp_highpass(cz_audio *a, double cutoff_hz);

/**
 * @brief The gain curve of a stereo-linked feed-forward compressor
 * (mean-square detector, soft knee) for @p a: @p c gets one linear gain per
 * frame (a->frames entries). The samples are not changed; the chain applies
 * this gain together with the others in one pass.
 * @returns the largest gain reduction, in dB (>= 0).
 */
double cz_dsp_compressor_gain(const cz_audio *a, const cz_comp_params *p, float *c);

/**
 * @brief Per-frame true-peak envelope of @p a: for each frame, the largest
 * magnitude over all channels of the sample and of the 4x oversampled
 * (polyphase windowed-sinc) values on both sides of it. @p tp has a->frames
 * entries.
 */
void cz_dsp_true_peaks(const cz_audio *a, float *tp);

/**
 * @brief Per-frame K-weighted energy of @p a (BS.1770: pre-filter and RLB
 * high-pass, channel weights as libebur128's default map), summed over
 * channels. @p e has a->frames entries.
 */
void cz_dsp_k_energy(const cz_audio *a, float *e);

/**
 * @brief BS.1770 gated integrated loudness of a signal whose K-weighted
 * energy is @p e, scaled per frame by @p g (NULL: 1) and overall by the
 * linear @p gain. Because the K filter is linear and @p g moves slowly, this
 * matches measuring the scaled signal to a few hundredths of an LU.
 * @returns LUFS, or -HUGE_VAL when every block is gated out (silence).
 */
double cz_dsp_loudness(const float *e, const float *g, size_t frames, unsigned rate, double gain);

/**
 * @brief Look-ahead limiter gain: for frames with true peak @p tp scaled by
 * @p gain, a smooth per-frame gain @p g (<= 1) that holds every frame's
 * scaled peak at or under @p threshold (linear), attacking over
 * @p lookahead_s before the peak and releasing over @p release_s.
 * @returns the largest gain reduction, in dB (>= 0).
 */
double cz_dsp_limiter_gain(const float *tp, size_t frames, unsigned rate, double gain,
                           double threshold, double lookahead_s, double release_s, float *g);

#endif
