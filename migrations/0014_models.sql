-- The model registry (docs/models/registry.md).
--
-- One row per model version: what a client may ask for (`name@version`, or
-- the bare name, routed among the name's active versions by weight), what
-- runs it (backend, pool), its tier and price, and its limits (the longest
-- duration, whether it makes stems). The API validates submissions against
-- an in-process snapshot of this table; operators change it through
-- PUT /v1/models/{name}, promote and rollback, or `cadenzactl models`. Every
-- change is one row of model_decisions: who, what, when, why, and the
-- name's split before and after, so a rollback can restore the split.
--
-- Rules the code keeps under the rows' lock (common/db/models.c), because a
-- CHECK cannot see other rows: the weights of a name's active versions sum
-- to 100 whenever it has an active version.

CREATE TABLE models (
    name                text NOT NULL CHECK (name ~ '^[a-z][a-z0-9-]{0,30}$'),
    version             text NOT NULL CHECK (version ~ '^[0-9a-z][0-9a-z.-]{0,15}$'),
    backend             text NOT NULL CHECK (backend IN ('composer', 'neural', 'http')),
    tier                text NOT NULL CHECK (tier IN ('draft', 'final')),
    status              text NOT NULL CHECK (status IN ('active', 'shadow', 'retired')),
    weight              integer NOT NULL DEFAULT 0 CHECK (weight BETWEEN 0 AND 100),
    pool                text NOT NULL REFERENCES pools (name),
    price_per_compute_s numeric NOT NULL DEFAULT 0 CHECK (price_per_compute_s >= 0),
    max_duration_s      double precision NOT NULL CHECK (max_duration_s > 0),
    stems               boolean NOT NULL,
    description         text,
    updated_at          timestamptz NOT NULL DEFAULT now(),
    updated_by          text NOT NULL DEFAULT 'migration',
    PRIMARY KEY (name, version),
    -- Only an active version takes traffic.
    CHECK (status = 'active' OR weight = 0)
);

-- What the workers serve today (workers/models/backend.c), at the API's
-- duration limit (1-600 s, api/request.c).
INSERT INTO models (name, version, backend, tier, status, weight, pool, max_duration_s, stems,
                    description)
VALUES ('composer', '1', 'composer', 'final', 'active', 100, 'inference', 600, true,
        'rules -> MIDI -> FluidSynth; deterministic per seed (docs/composer.md)'),
       ('neural', '1', 'neural', 'final', 'active', 100, 'inference', 600, true,
        'our transformer writes melody and harmony, composer@1 arranges (docs/models/neural-1.md)'),
       ('http', '1', 'http', 'final', 'active', 100, 'inference', 600, false,
        'a remote model server; returns the mix alone (docs/composer.md)');

CREATE TABLE model_decisions (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,  -- "key:<id> (<tenant>, <role>)"
    action       text NOT NULL CHECK (action IN ('settings', 'split', 'promote', 'rollback')),
    split_before jsonb NOT NULL, -- {"neural@1": 90, "neural@2": 10}: active versions with weight
    split_after  jsonb NOT NULL,
    changes      jsonb,          -- the per-version settings the change named, as sent
    reason       text NOT NULL
);
CREATE INDEX model_decisions_name ON model_decisions (name, id DESC);

-- The job as the API returns it: 0011_job_json_plans.sql's body, plus
-- `model_requested`, what the client asked for when it was not the version
-- that runs (a bare name routed to a version); null otherwise.
CREATE OR REPLACE FUNCTION cz_job_json(j jobs) RETURNS json LANGUAGE plpgsql STABLE AS $$
BEGIN
    RETURN (
    SELECT json_build_object(
            'id', j.id,
            'object', 'job',
            'state', j.state,
            'attempt', j.attempt,
            'max_attempts', j.max_attempts,
            'model', j.model,
            'model_requested', CASE WHEN j.request ->> 'model' IS DISTINCT FROM j.model
                                    THEN j.request ->> 'model' END,
            'seed', j.seed,
            'request', j.request,
            'metadata', COALESCE(j.request -> 'metadata', '{}'::jsonb),
            'progress', json_build_object('stage', j.stage, 'percent', round(j.progress::numeric, 1)),
            'failure', CASE WHEN j.failure_class IS NULL THEN NULL ELSE
                           json_build_object('class', j.failure_class, 'detail', j.failure_detail) END,
            'next_attempt_at', cz_ts(j.next_attempt_at),
            'cached_from', j.cached_from,
            'coalesced_into', j.coalesced_into,
            'regenerated_from', j.regenerated_from,
            'review', (SELECT json_build_object(
                           'reasons', r.reasons, 'decision', r.decision,
                           'decided_by', (SELECT k.prefix FROM api_keys k WHERE k.id = r.decided_by),
                           'decided_at', cz_ts(r.decided_at), 'notes', r.notes,
                           'regenerated_job', r.regenerated_job)
                         FROM review_tasks r WHERE r.job_id = j.id),
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
    );
END
$$;

-- The generate message: 0002_reliability.sql's, with the request naming
-- the version that runs. The job's stored request keeps the model as the
-- client asked (its hash and idempotency key see the same request on a
-- retry); the worker runs what its message's request says, which is the
-- job's model. For a pinned request the two are the same.
CREATE OR REPLACE FUNCTION cz_generate_message(j jobs) RETURNS jsonb LANGUAGE sql STABLE AS $$
    SELECT jsonb_build_object('schema', 1, 'job_id', j.id, 'attempt', j.attempt,
                              'tenant', j.tenant_id, 'model', j.model, 'seed', j.seed,
                              'trace_id', j.trace_id,
                              'request', jsonb_set(j.request, '{model}', to_jsonb(j.model)))
$$;
