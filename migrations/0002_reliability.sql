-- Reliability: delayed (retry) messages in the outbox, idempotency keys,
-- and artifact clean-up for canceled jobs.

-- A retry is re-published through the outbox, not before its backoff ends.
ALTER TABLE outbox ADD COLUMN available_at timestamptz NOT NULL DEFAULT now();

-- Stripe semantics: a key names one request of one tenant for 24 hours.
CREATE TABLE idempotency_keys (
    tenant_id        text NOT NULL REFERENCES tenants (id),
    key              text NOT NULL,
    request_hash     text NOT NULL,
    job_id           uuid,
    response_status  int,
    response_body    text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);

-- Files of canceled jobs are removed by the scheduler; the rows stay as history.
ALTER TABLE artifacts ADD COLUMN deleted_at timestamptz;

-- The generate message for a job's current attempt: one definition for the
-- first submission and for every retry.
CREATE FUNCTION cz_generate_message(j jobs) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('schema', 1, 'job_id', j.id, 'attempt', j.attempt,
                              'tenant', j.tenant_id, 'model', j.model, 'seed', j.seed,
                              'trace_id', j.trace_id, 'request', j.request)
$$;

CREATE FUNCTION cz_message_headers(j jobs, traceparent text) RETURNS jsonb
LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('traceparent', traceparent, 'job_id', j.id::text,
                              'attempt', j.attempt::text, 'tenant', j.tenant_id)
$$;

-- The job as the API returns it: as in 0001, without deleted files.
CREATE OR REPLACE FUNCTION cz_job_json(j jobs) RETURNS json LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', j.id,
        'object', 'job',
        'state', j.state,
        'attempt', j.attempt,
        'max_attempts', j.max_attempts,
        'model', j.model,
        'seed', j.seed,
        'request', j.request,
        'metadata', COALESCE(j.request -> 'metadata', '{}'::jsonb),
        'progress', json_build_object('stage', j.stage, 'percent', round(j.progress::numeric, 1)),
        'failure', CASE WHEN j.failure_class IS NULL THEN NULL ELSE
                       json_build_object('class', j.failure_class, 'detail', j.failure_detail) END,
        'next_attempt_at', cz_ts(j.next_attempt_at),
        'qa', (SELECT q.report FROM qa_reports q WHERE q.job_id = j.id),
        'artifacts', COALESCE((
            SELECT json_agg(json_build_object(
                       'kind', a.kind, 'name', a.name, 'format', a.format,
                       'sha256', a.sha256, 'bytes', a.bytes, 'duration_s', a.duration_s,
                       'url', '/v1/jobs/' || j.id || '/audio?variant=' || a.kind
                              || '&format=' || a.format) ORDER BY a.id)
            FROM artifacts a
            WHERE a.job_id = j.id AND a.attempt = j.attempt AND a.deleted_at IS NULL
              AND a.kind IN ('master', 'encoding', 'stem')
        ), '[]'::json),
        'created_at', cz_ts(j.created_at),
        'updated_at', cz_ts(j.updated_at),
        'started_at', cz_ts(j.started_at),
        'finished_at', cz_ts(j.finished_at))
$$;
