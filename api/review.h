/* The curators' endpoints and their web page (docs/review.md):
 *
 *   GET  /v1/review/queue               counts, the oldest task's age, open tasks
 *   POST /v1/review/claim               the next task, with a lease (204: none)
 *   POST /v1/review/{job}/approve       the job succeeds
 *   POST /v1/review/{job}/reject        the job is rejected (a reason is required)
 *   POST /v1/review/{job}/regenerate    rejected, and a new job with a new seed replaces it
 *   POST /v1/review/{job}/release       give a claimed task back to the queue
 *   GET  /v1/catalog/{id}/audio         a catalogue track's file, to compare with a match
 *   GET  /review/, /review/{file}       the page (api/review/, embedded at build time)
 *
 * Curators see their own tenant's queue only. After a decision commits,
 * every job it changed is announced on Redis (cz:job:<id>), so live event
 * streams show it at once. */
#ifndef CZ_API_REVIEW_H
#define CZ_API_REVIEW_H

#include "api/http.h"

/** @brief GET /v1/review/queue?limit=: the tenant's open tasks, oldest first. */
enum MHD_Result cz_api_review_queue_get(cz_api *api, cz_http_req *r, const char *id);

/**
 * @brief POST /v1/review/claim, body {"lease_s": n} optional: the key's own
 * live claim (renewed), else the oldest unclaimed task, with its job, QA,
 * catalogue match and provenance manifest; 204 when there is none.
 */
enum MHD_Result cz_api_review_claim(cz_api *api, cz_http_req *r, const char *id);

/** @brief POST /v1/review/{job}/approve, body {"reason": ...} optional. */
enum MHD_Result cz_api_review_approve(cz_api *api, cz_http_req *r, const char *id);

/** @brief POST /v1/review/{job}/reject, body {"reason": ...} required. */
enum MHD_Result cz_api_review_reject(cz_api *api, cz_http_req *r, const char *id);

/** @brief POST /v1/review/{job}/regenerate, body {"reason": ...} optional. */
enum MHD_Result cz_api_review_regenerate(cz_api *api, cz_http_req *r, const char *id);

/** @brief POST /v1/review/{job}/release: the key's claim ends now (204). */
enum MHD_Result cz_api_review_release(cz_api *api, cz_http_req *r, const char *id);

/** @brief GET /v1/catalog/{id}/audio: the imported file, Range supported. */
enum MHD_Result cz_api_catalog_audio_get(cz_api *api, cz_http_req *r, const char *id);

/** @brief GET /review: redirects to /review/. */
enum MHD_Result cz_api_review_page_redirect(cz_api *api, cz_http_req *r, const char *id);

/** @brief GET /review/ and /review/{file}: the embedded page's files. */
enum MHD_Result cz_api_review_page_get(cz_api *api, cz_http_req *r, const char *id);

#endif
