/* The sweeper: the scheduler's clock-driven duties. */
#ifndef CZ_SWEEPER_H
#define CZ_SWEEPER_H

#include <stdatomic.h>

#include "common/config.h"

/**
 * @brief Once a second until @p *stop: fails jobs whose lease expired as
 * worker_lost (retried like any failure), removes the files of canceled
 * jobs, and once a minute forgets idempotency keys older than 24 hours.
 */
void cz_sweeper_run(const cz_config *cfg, atomic_bool *stop);

#endif
