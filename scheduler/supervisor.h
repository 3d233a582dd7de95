/* The supervisor: in local mode (make up, single machines) the scheduler
 * runs each pool's worker processes itself, as many as the pool's desired. */
#ifndef CZ_SUPERVISOR_H
#define CZ_SUPERVISOR_H

#include <stdatomic.h>

#include "common/config.h"

/**
 * @brief Until @p *stop: keeps `cadenza-worker --pool NAME` processes
 * running for each pool named in CADENZA_SUPERVISE (comma-separated), as
 * many as the pool's desired (pools table); restarts one that exits
 * unasked with exponential backoff; scales down by SIGTERM, so the worker
 * finishes or hands back the job in hand. On @p *stop, SIGTERMs every
 * worker and waits for them (SIGKILL after CADENZA_SUPERVISE_STOP_S).
 * Returns at once when CADENZA_SUPERVISE is empty.
 */
void cz_supervisor_run(const cz_config *cfg, atomic_bool *stop);

#endif
