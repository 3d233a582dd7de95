/* Routing a submission to a model version, and the version's limits.
 *
 * A request names a pinned version ("neural@2") or a bare name ("neural").
 * A pinned version must exist and be active. A bare name is routed among
 * its active versions with weight > 0: the request's bucket is the first 8
 * bytes of sha256(tenant NUL user NUL name), big-endian, mod 100; the
 * versions, in byte order of their version strings, own consecutive ranges
 * of buckets as wide as their weights (90/10: buckets 0-89, 90-99), and the
 * bucket's owner runs the job. So a tenant's user keeps their version from
 * job to job, and a change of weights moves only the users whose bucket
 * changes owner. Shadow and retired versions are never asked for.
 *
 * Pure: it reads the registry's rows (common/db/models.h) it is given and
 * nothing else, so the rules are unit-tested without a server. */
#ifndef CZ_ROUTING_H
#define CZ_ROUTING_H

#include <cjson/cJSON.h>

#include "api/request.h"
#include "common/db/models.h"

/** @brief The bucket (0..99) of @p user of @p tenant for model name @p name. */
int cz_routing_bucket(const char *tenant, const char *user, const char *name);

/**
 * @brief The version of @p rows (@p n of them) that runs a request from
 * @p tenant's @p user ("" for none) asking for @p model (name or name@version).
 * @returns the row, or NULL with a 422 on "model" in @p e naming what may be
 * asked for.
 */
const cz_model *cz_routing_resolve(const cz_model *rows, int n, const char *tenant,
                                   const char *user, const char *model, cz_request_error *e);

/**
 * @brief Checks the canonical request @p req against version @p m's limits:
 * duration_s at most its max_duration_s, stems only from a model that
 * makes them, parameters only for a model that takes them. @returns 0, or -1 with a 422 naming the
 * field in @p e.
 */
int cz_routing_check_limits(const cz_model *m, const cJSON *req, cz_request_error *e);

#endif
