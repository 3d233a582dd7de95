-- The composer's artifacts in the job: the raw mix, the MIDI score and one
-- stem per instrument group now appear in a job's "artifacts" beside the
-- master and encodings, each with its name, and a stem's URL names it
-- (GET /v1/jobs/{id}/audio?variant=stem&name=drums&format=wav).
-- Only cz_job_json changes (from 0002_reliability.sql's definition); the
-- function is replaced in place.

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
                              || CASE WHEN a.kind = 'stem' THEN '&name=' || a.name ELSE '' END
                              || '&format=' || a.format) ORDER BY a.id)
            FROM artifacts a
            WHERE a.job_id = j.id AND a.attempt = j.attempt AND a.deleted_at IS NULL
              AND a.kind IN ('master', 'encoding', 'stem', 'raw', 'midi')
        ), '[]'::json),
        'created_at', cz_ts(j.created_at),
        'updated_at', cz_ts(j.updated_at),
        'started_at', cz_ts(j.started_at),
        'finished_at', cz_ts(j.finished_at))
$$;
