/* The playlist endpoints: listeners' signals, playlists made or served
 * from the cache, and playlists read back (common/playlist/service.h does the
 * work). Handlers run after the router has checked the key and role. */
#ifndef CZ_API_PLAYLISTS_H
#define CZ_API_PLAYLISTS_H

#include "api/http.h"

/** @brief POST /v1/users/{id}/signals: record what a listener did (202). */
enum MHD_Result cz_api_signals_create(cz_api *api, cz_http_req *r, const char *user);

/** @brief POST /v1/playlists: a playlist for the request, from the cache when fresh (200). */
enum MHD_Result cz_api_playlists_create(cz_api *api, cz_http_req *r, const char *unused);

/** @brief GET /v1/playlists/{id}: a playlist answered before, or 404. */
enum MHD_Result cz_api_playlists_get(cz_api *api, cz_http_req *r, const char *id);

#endif
