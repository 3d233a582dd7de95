/* The metrics collector: the scheduler's /metrics, read from the database
 * that records every job's life (docs/operations.md, "Metrics"). */
#ifndef CZ_COLLECTOR_H
#define CZ_COLLECTOR_H

#include <stdatomic.h>

#include "common/config.h"

/**
 * @brief Every CADENZA_METRICS_INTERVAL_MS until @p *stop: counts the job
 * events applied since the last look (jobs by state, retries and failures
 * by class, time spent in each stage and end to end, audio and compute
 * seconds, cost per audio minute) and sets the gauges (jobs per state now,
 * pools' replicas and lag, outbox backlog, review queue age).
 */
void cz_collector_run(const cz_config *cfg, atomic_bool *stop);

#endif
