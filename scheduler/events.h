/* The status-event consumer: the job state machine's driver. */
#ifndef CZ_EVENTS_H
#define CZ_EVENTS_H

#include <stdatomic.h>

#include "common/config.h"

/**
 * @brief Consumes cadenza.jobs.events and applies each event to Postgres
 * until @p *stop is set. An event's offset is stored only after its
 * transaction committed, so a crash replays events (harmless: guarded
 * transitions) and never drops one.
 */
void cz_events_run(const cz_config *cfg, atomic_bool *stop);

#endif
