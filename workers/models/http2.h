/* http@2: a remote GPU model server, asynchronous, behind the backend
 * interface (docs/http2.md has the whole contract, for server authors).
 *
 * The worker submits the jobs the pool gathered as predictions, several in
 * one POST /v1/predictions when the server declares it batches (split
 * into requests of at most its max_batch otherwise), follows each one's
 * server-sent events for progress, cancels with DELETE, and fetches the
 * audio when it is done; all of it on one thread over libcurl's multi
 * interface, so one worker follows many predictions at once.
 *
 * Restart safety without a database: each prediction is named by the
 * worker with an idempotency key derived from its job and what it asks
 * ("cadenza-<job id>-<16 hex of the input's sha256>", the same on every
 * attempt), and the server answers a key it has seen with the prediction it already
 * has, queued, running or succeeded. A worker killed mid-prediction gets
 * the job again (Kafka redelivers it, or the lease runs out and the
 * scheduler retries it) and follows the same prediction instead of
 * starting another one. A key whose prediction failed or was canceled
 * starts a new one, which is what a retry wants.
 *
 * Failure classes:
 *   oom                  the server ran out of memory; a batch of n > 1 is
 *                        split in halves and each half submitted again at
 *                        once, so only a job that fails alone fails oom
 *   timeout              no result within CADENZA_HTTP2_TIMEOUT_S (the
 *                        prediction is canceled), or a prediction error of
 *                        type timeout, or 408
 *   backend_unavailable  no server, no connection, 429/502/503/504, or a
 *                        prediction error of type unavailable
 *   invalid_input        a parameter the model does not declare, or out of
 *                        its declared range (never retried), or 422
 *   model_error          any other failure of the prediction or answer */
#ifndef CZ_HTTP2_MODEL_H
#define CZ_HTTP2_MODEL_H

#include "workers/models/backend.h"

/** @brief The http@2 backend. */
extern const cz_backend cz_http2_backend;

#endif
