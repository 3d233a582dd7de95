/* The API's HTTP server: a libmicrohttpd daemon with a thread pool, the
 * router from method and path to handler, and the health endpoints. */
#ifndef CZ_SERVER_H
#define CZ_SERVER_H

#include "api/http.h"

/**
 * @brief Starts serving on api->cfg->api_listen with api->cfg->api_threads
 * threads. @returns the daemon (stop with MHD_stop_daemon), or NULL with @p err.
 */
struct MHD_Daemon *cz_server_start(cz_api *api, cz_err *err);

#endif
