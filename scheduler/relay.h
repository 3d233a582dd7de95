/* The outbox relay: publishes committed outbox rows to Kafka. */
#ifndef CZ_RELAY_H
#define CZ_RELAY_H

#include <stdatomic.h>

#include "common/config.h"

/**
 * @brief Runs the relay until @p *stop is set; returns after flushing what is
 * in flight. Survives Postgres and Kafka outages (waits and retries).
 */
void cz_relay_run(const cz_config *cfg, atomic_bool *stop);

#endif
