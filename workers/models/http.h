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

/**
 * @brief Reads a model server's WAV answer at @p path and writes it at @p dst
 * as a raw mix: 48 kHz stereo float, exactly @p duration_s long (a mono
 * answer fills both channels; within 50 ms it is cut or padded). http@1 and
 * http@2 answer the same audio. @returns 0, or -1 with @p err when the
 * answer is not WAV, not 48 kHz, not one or two channels, or off in length.
 */
int cz_http_model_audio(const char *path, const char *dst, double duration_s, cz_err *err);

#endif
