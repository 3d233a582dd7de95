/* http@1: a remote model server behind the backend interface, over libcurl.
 *
 * Contract (docs/composer.md has the whole of it): the worker POSTs the
 * job as JSON to CADENZA_HTTP_MODEL_URL + "/v1/generate" and expects
 * 200 with an audio/wav body: 48 kHz, one or two channels, within 50 ms of
 * the requested duration (it is then cut or padded to the exact length).
 * Failures are classified for the scheduler:
 *
 *   backend_unavailable  no connection, or 429, 502, 503, 504
 *   timeout              no full answer within CADENZA_HTTP_MODEL_TIMEOUT_S
 *                        (the connection was made), or 408
 *   model_error          any other status, or a body that is not the audio
 *                        asked for (not WAV, wrong rate, wrong length, too big)
 *
 * Progress is reported while the answer is awaited and downloaded, and a
 * canceled job aborts the transfer. */
#ifndef CZ_HTTP_MODEL_H
#define CZ_HTTP_MODEL_H

#include "workers/models/backend.h"

/** @brief The http@1 backend. */
extern const cz_backend cz_http_backend;

#endif
