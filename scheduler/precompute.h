/* Playlist precomputation: keeps the most requested playlists fresh in
 * Redis, so their listeners are answered from the cache. */
#ifndef CZ_PRECOMPUTE_H
#define CZ_PRECOMPUTE_H

#include <stdatomic.h>

#include "common/config.h"

/**
 * @brief Every CADENZA_PLAYLIST_REFRESH_S until @p *stop: remakes the
 * CADENZA_PLAYLIST_PRECOMPUTE most requested playlists whose cached answer
 * is missing or would expire before the next round but one, with a fresh
 * taste (common/playlist/service.h), and lets the demand decay.
 */
void cz_precompute_run(const cz_config *cfg, atomic_bool *stop);

#endif
