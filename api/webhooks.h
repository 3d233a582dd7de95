/* The webhook endpoints of the API: a tenant's endpoints and default
 * secret, a job's delivery log, and redelivery. */
#ifndef CZ_API_WEBHOOKS_H
#define CZ_API_WEBHOOKS_H

#include "http.h"

/**
 * @brief Everything under /v1/webhook-endpoints: POST (create, 201 with the
 * secret) and GET (list) on the collection; GET on /{id}; POST on
 * /{id}/rotate (200 with the new secret), /{id}/disable and /{id}/enable.
 * @p rest is the path after "/v1/webhook-endpoints" ("" or "/{id}...").
 * Roles: submitter, admin. Another tenant's endpoint is 404.
 */
enum MHD_Result cz_webhooks_endpoints(cz_api *api, cz_http_req *r, const char *rest);

/**
 * @brief GET /v1/webhook-secret (the tenant's default secret, made on first
 * need) and POST /v1/webhook-secret/rotate. @p rest is "" or "/rotate".
 * Roles: submitter, admin.
 */
enum MHD_Result cz_webhooks_secret(cz_api *api, cz_http_req *r, const char *rest);

/** @brief GET /v1/jobs/{id}/deliveries: every delivery of the job with every attempt. */
enum MHD_Result cz_webhooks_deliveries(cz_api *api, cz_http_req *r, const char *job_id);

/**
 * @brief POST /v1/deliveries/{id}/redeliver: the delivery is due again now,
 * with the same webhook-id and body and a fresh schedule (202). 409 while
 * its endpoint is disabled. Roles: submitter, admin.
 */
enum MHD_Result cz_webhooks_redeliver(cz_api *api, cz_http_req *r, const char *id);

#endif
