/* The autoscaler: sets each pool's desired replicas from its Kafka lag. */
#ifndef CZ_AUTOSCALER_H
#define CZ_AUTOSCALER_H

#include <stdatomic.h>

#include "common/config.h"

/**
 * @brief Every CADENZA_AUTOSCALE_INTERVAL_MS until @p *stop: measures each
 * pool's consumer-group lag and per-replica throughput, records them in the
 * pools table, and for pools with autoscale on sets desired to
 * clamp(ceil(lag / target_lag_per_replica), min, max): at once when that is
 * more, and only after cooldown_s since the last change when it is less.
 * Every change is a row of pool_decisions with the figures behind it.
 */
/**
 * @brief The replicas for @p lag: clamp(ceil(lag / target_lag), min, max).
 */
int cz_autoscale_target(long long lag, int target_lag, int min, int max);

void cz_autoscaler_run(const cz_config *cfg, atomic_bool *stop);

#endif
