/* The API's HTTP server: a libmicrohttpd daemon that runs a thread per
 * connection (handlers block on Postgres), the router from method and path
 * to handler, and the health endpoints. */
#ifndef CZ_SERVER_H
#define CZ_SERVER_H

#include "api/http.h"

/**
 * @brief Starts serving on api->cfg->api_listen, a thread per connection, at
 * most api->cfg->api_max_connections at once.
 * @returns the daemon (stop with MHD_stop_daemon), or NULL with @p err.
 */
struct MHD_Daemon *cz_server_start(cz_api *api, cz_err *err);

#endif
