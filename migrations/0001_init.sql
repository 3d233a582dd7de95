-- Cadenza's first schema: tenants and keys, jobs with their history,
-- artifacts and QA reports, the transactional outbox, and the usage ledger.
-- Applied once by `cadenza-api migrate`, inside one transaction.

CREATE TABLE tenants (
    id          text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Keys are stored as SHA-256 of the secret; the secret is shown once.
CREATE TABLE api_keys (
    id          bigserial PRIMARY KEY,
    tenant_id   text NOT NULL REFERENCES tenants (id),
    key_hash    text NOT NULL UNIQUE,
    prefix      text NOT NULL,
    role        text NOT NULL CHECK (role IN ('submitter', 'curator', 'operator', 'admin')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);

CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    tenant_id        text NOT NULL REFERENCES tenants (id),
    state            text NOT NULL DEFAULT 'queued' CHECK (state IN (
                         'queued', 'dispatched', 'generating', 'generated', 'postprocessing',
                         'in_review', 'succeeded', 'failed', 'canceled', 'rejected')),
    request          jsonb NOT NULL,   -- canonical request, defaults filled in
    request_hash     text NOT NULL,    -- sha256 of the canonical request
    model            text NOT NULL,
    seed             bigint NOT NULL,
    trace_id         text NOT NULL,
    attempt          int NOT NULL DEFAULT 1,
    max_attempts     int NOT NULL DEFAULT 4,
    next_attempt_at  timestamptz,
    lease_expires_at timestamptz,
    stage            text,
    progress         real NOT NULL DEFAULT 0,
    compute_ms       bigint NOT NULL DEFAULT 0,
    failure_class    text,
    failure_detail   text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    started_at       timestamptz,
    finished_at      timestamptz
);
-- Keyset pagination of a tenant's jobs, newest first (ids are UUIDv7).
CREATE INDEX jobs_tenant_id ON jobs (tenant_id, id DESC);
-- The lease sweeper looks only at running jobs.
CREATE INDEX jobs_lease ON jobs (lease_expires_at) WHERE state IN ('generating', 'postprocessing');

-- Append-only history of every applied event.
CREATE TABLE job_events (
    id          bigserial PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs (id),
    attempt     int NOT NULL,
    event       text NOT NULL,
    state       text NOT NULL,
    detail      jsonb,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_events_job ON job_events (job_id, id);

CREATE TABLE artifacts (
    id          bigserial PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs (id),
    attempt     int NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('raw', 'stem', 'master', 'encoding', 'midi', 'manifest')),
    name        text NOT NULL,   -- stem or encoding name, e.g. 'mix', 'drums', 'flac'
    format      text NOT NULL,   -- wav, flac, mp3, opus, mid, json
    uri         text NOT NULL,
    sha256      text NOT NULL,
    bytes       bigint NOT NULL,
    duration_s  double precision,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (job_id, attempt, kind, name, format)
);

CREATE TABLE qa_reports (
    job_id      uuid PRIMARY KEY REFERENCES jobs (id),
    attempt     int NOT NULL,
    report      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- Transactional outbox: rows written with the job, published by the relay.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    topic         text NOT NULL,
    key           text NOT NULL,
    payload       jsonb NOT NULL,
    headers       jsonb NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- Wake the relay when a row commits (NOTIFY is delivered at commit time).
CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('cadenza_outbox', '');
    RETURN NULL;
END $$;
CREATE TRIGGER outbox_notify AFTER INSERT ON outbox
    FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify();

-- One row per job, written in the terminal transition: a job is billed once.
CREATE TABLE usage_ledger (
    job_id         uuid PRIMARY KEY REFERENCES jobs (id),
    tenant_id      text NOT NULL REFERENCES tenants (id),
    outcome        text NOT NULL,
    audio_seconds  double precision NOT NULL,
    compute_ms     bigint NOT NULL,
    cost_micros    bigint NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);

CREATE FUNCTION cz_ts(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS $$
    SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- The job as the API returns it. One definition, used by every endpoint
-- (and by webhook payloads), so a job looks the same wherever it appears.
CREATE FUNCTION cz_job_json(j jobs) RETURNS json LANGUAGE sql STABLE AS $$
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
        'qa', (SELECT q.report FROM qa_reports q WHERE q.job_id = j.id),
        'artifacts', COALESCE((
            SELECT json_agg(json_build_object(
                       'kind', a.kind, 'name', a.name, 'format', a.format,
                       'sha256', a.sha256, 'bytes', a.bytes, 'duration_s', a.duration_s,
                       'url', '/v1/jobs/' || j.id || '/audio?variant=' || a.kind
                              || '&format=' || a.format) ORDER BY a.id)
            FROM artifacts a
            WHERE a.job_id = j.id AND a.attempt = j.attempt AND a.kind IN ('master', 'encoding', 'stem')
        ), '[]'::json),
        'created_at', cz_ts(j.created_at),
        'updated_at', cz_ts(j.updated_at),
        'started_at', cz_ts(j.started_at),
        'finished_at', cz_ts(j.finished_at))
$$;
