/* The webhook endpoints of the API: a tenant's endpoints and default
 * secret, a job's delivery log, and redelivery. */
#ifndef CZ_API_WEBHOOKS_H
#define CZ_API_WEBHOOKS_H

#include "api/http.h"

/* Handlers for the route table in api/server.c, which has already
 * admitted the key and its role (submitter, admin). Another tenant's
 * endpoint, job or delivery is 404. */

/** @brief POST /v1/webhook-endpoints: 201 with the endpoint and its secret. */
enum MHD_Result cz_api_webhooks_endpoint_create(cz_api *api, cz_http_req *r, const char *unused);

/** @brief GET /v1/webhook-endpoints: the tenant's endpoints. */
enum MHD_Result cz_api_webhooks_endpoint_list(cz_api *api, cz_http_req *r, const char *unused);

/** @brief GET /v1/webhook-endpoints/{id}. */
enum MHD_Result cz_api_webhooks_endpoint_get(cz_api *api, cz_http_req *r, const char *id);

/** @brief POST /v1/webhook-endpoints/{id}/rotate: 200 with the new secret. */
enum MHD_Result cz_api_webhooks_endpoint_rotate(cz_api *api, cz_http_req *r, const char *id);

/** @brief POST /v1/webhook-endpoints/{id}/disable and /enable. */
enum MHD_Result cz_api_webhooks_endpoint_disable(cz_api *api, cz_http_req *r, const char *id);
enum MHD_Result cz_api_webhooks_endpoint_enable(cz_api *api, cz_http_req *r, const char *id);

/** @brief GET /v1/webhook-secret: the tenant's default secret, made on first need. */
enum MHD_Result cz_api_webhooks_secret_get(cz_api *api, cz_http_req *r, const char *unused);

/** @brief POST /v1/webhook-secret/rotate. */
enum MHD_Result cz_api_webhooks_secret_rotate(cz_api *api, cz_http_req *r, const char *unused);

/** @brief GET /v1/jobs/{id}/deliveries: every delivery of the job with every attempt. */
enum MHD_Result cz_api_webhooks_deliveries_list(cz_api *api, cz_http_req *r, const char *job_id);

/**
 * @brief POST /v1/deliveries/{id}/redeliver: the delivery is due again now,
 * with the same webhook-id and body and a fresh schedule (202). 409 while
 * its endpoint is disabled.
 */
enum MHD_Result cz_api_webhooks_redeliver(cz_api *api, cz_http_req *r, const char *id);

#endif
