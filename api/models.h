/* The /v1/models endpoints: the model registry as clients see it, and the
 * operators' changes to it (docs/models/registry.md). Handlers run after
 * the router has authenticated the key and checked its role (server.c). */
#ifndef CZ_MODELS_H
#define CZ_MODELS_H

#include "api/http.h"

/** @brief GET /v1/models[?all=true]: every name with its active versions (all
 * versions, for operator and admin keys that ask with all=true). */
enum MHD_Result cz_api_models_list(cz_api *api, cz_http_req *r, const char *unused);

/** @brief GET /v1/models/{name}[?all=true]: one name, or 404. */
enum MHD_Result cz_api_models_get(cz_api *api, cz_http_req *r, const char *name);

/** @brief PUT /v1/models/{name}: a new split, version settings, or both, recorded
 * with the key and the body's `reason`; 404 for no such name, 422 for a
 * change that breaks a rule (the field named). */
enum MHD_Result cz_api_models_update(cz_api *api, cz_http_req *r, const char *name);

/** @brief POST /v1/models/{name}/promote {"version"}: all traffic to that version. */
enum MHD_Result cz_api_models_promote(cz_api *api, cz_http_req *r, const char *name);

/** @brief POST /v1/models/{name}/rollback: the split before the last split or
 * promote; 409 when there is none to go back to. */
enum MHD_Result cz_api_models_rollback(cz_api *api, cz_http_req *r, const char *name);

#endif
