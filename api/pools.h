/* The /v1/pools endpoints: read the worker pools and change one (operators).
 * Handlers run after the router has authenticated the key and checked its
 * role (server.c). */
#ifndef CZ_POOLS_H
#define CZ_POOLS_H

#include "api/http.h"

/** @brief GET /v1/pools: every pool with its settings and what was last observed. */
enum MHD_Result cz_api_pools_list(cz_api *api, cz_http_req *r, const char *unused);

/** @brief PUT /v1/pools/{name}: change some of a pool's settings; 404 for no such
 * pool, 422 for a change that breaks a rule. The change is recorded with the
 * key that made it and the body's `reason`. */
enum MHD_Result cz_api_pools_update(cz_api *api, cz_http_req *r, const char *name);

#endif
