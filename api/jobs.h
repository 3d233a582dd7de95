/* The /v1/jobs endpoints: submit, read, list, cancel, download audio; and
 * the tenant's usage. Handlers run after the router has authenticated the
 * key, applied its rate limit and checked its role (server.c). */
#ifndef CZ_JOBS_H
#define CZ_JOBS_H

#include "api/http.h"

/** @brief POST /v1/jobs: validate, store job + outbox row (group commit, committer.h), 202.
 * With an Idempotency-Key, a repeat gets the first response; a different
 * request under the same key gets 409. */
enum MHD_Result cz_api_jobs_create(cz_api *api, cz_http_req *r, const char *unused);

/** @brief GET /v1/jobs/{id}: the job, or 404 (also for another tenant's job). */
enum MHD_Result cz_api_jobs_get(cz_api *api, cz_http_req *r, const char *id);

/** @brief POST /v1/jobs/{id}/cancel: cancel a job that has not ended (200), 409 if it has. */
enum MHD_Result cz_api_jobs_cancel(cz_api *api, cz_http_req *r, const char *id);

/** @brief GET /v1/jobs?limit=&cursor=&state=: keyset-paginated list, newest first. */
enum MHD_Result cz_api_jobs_list(cz_api *api, cz_http_req *r, const char *unused);

/** @brief GET /v1/jobs/{id}/audio?variant=&format=: the file, Range supported. */
enum MHD_Result cz_api_jobs_audio_get(cz_api *api, cz_http_req *r, const char *id);

/** @brief GET /v1/cache: the prompt cache's counters (operator and admin keys). */
enum MHD_Result cz_api_cache_get(cz_api *api, cz_http_req *r, const char *unused);
/**
 * @brief Tells live followers of job @p id (GET /v1/jobs/{id}/events) to read
 * its history again: PUBLISH on cz:job:<id>. Best effort: without Redis the
 * streams find the change by polling.
 */
void cz_jobs_announce(cz_api *api, const char *id);

/** @brief GET /v1/usage: this month's generated audio, what open jobs reserve, the quota. */
enum MHD_Result cz_api_usage_get(cz_api *api, cz_http_req *r, const char *unused);

#endif
