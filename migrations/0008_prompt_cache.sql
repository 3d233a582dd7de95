-- The prompt cache and request coalescing (docs/architecture.md, "Repeated
-- requests"), and progress in the job's history for live progress streams.
--
-- A cacheable request carries cache_key: the sha256 of its tenant and of
-- every request field that shapes the audio (see api/request.c). A job
-- answered from the cache, or completed by the job it was coalesced with,
-- names that job in cached_from and has no generation, files or attempt of
-- its own: its artifacts and QA are the source job's. A job waiting for an
-- identical one in flight names it in coalesced_into.

ALTER TABLE jobs
    ADD COLUMN cache_key      text,
    ADD COLUMN cached_from    uuid REFERENCES jobs (id),
    ADD COLUMN coalesced_into uuid REFERENCES jobs (id),
    ADD COLUMN model_version  text;

-- At most one generating job per cache key: the one identical requests
-- attach to while it is in flight.
CREATE UNIQUE INDEX jobs_in_flight_cache_key ON jobs (cache_key)
    WHERE cache_key IS NOT NULL AND coalesced_into IS NULL AND cached_from IS NULL
      AND state IN ('queued', 'dispatched', 'generating', 'generated', 'postprocessing',
                    'in_review');
CREATE INDEX jobs_coalesced ON jobs (coalesced_into) WHERE coalesced_into IS NOT NULL;

-- A cached or coalesced completion is billed nothing: no compute was spent.
ALTER TABLE usage_ledger ADD COLUMN cached boolean NOT NULL DEFAULT false;

-- What a job shows as its own: the source job's files and QA when it has one.
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
        'cached_from', j.cached_from,
        'coalesced_into', j.coalesced_into,
        'qa', (SELECT q.report FROM qa_reports q WHERE q.job_id = s.id),
        'artifacts', COALESCE((
            SELECT json_agg(json_build_object(
                       'kind', a.kind, 'name', a.name, 'format', a.format,
                       'sha256', a.sha256, 'bytes', a.bytes, 'duration_s', a.duration_s,
                       'url', '/v1/jobs/' || j.id || '/audio?variant=' || a.kind
                              || CASE WHEN a.kind = 'stem' THEN '&name=' || a.name ELSE '' END
                              || '&format=' || a.format) ORDER BY a.id)
            FROM artifacts a
            WHERE a.job_id = s.id AND a.attempt = s.attempt AND a.deleted_at IS NULL
              AND a.kind IN ('master', 'encoding', 'stem', 'raw', 'midi')
        ), '[]'::json),
        'created_at', cz_ts(j.created_at),
        'updated_at', cz_ts(j.updated_at),
        'started_at', cz_ts(j.started_at),
        'finished_at', cz_ts(j.finished_at))
    FROM (SELECT COALESCE(j.cached_from, j.id) AS id,
                 COALESCE((SELECT c.attempt FROM jobs c WHERE c.id = j.cached_from), j.attempt)
                     AS attempt) s
$$;
