-- The curators' review queue (docs/review.md).
--
-- A job the post pool flags (a QA rule failed, a catalogue match, a request
-- with "review": "always", a tenant whose policy reviews everything) moves
-- to in_review and, in the same transaction, gets one review task naming
-- the reasons. Curators claim tasks (a lease, FOR UPDATE SKIP LOCKED) and
-- decide: approve (the job succeeds), reject (it is rejected) or regenerate
-- (it is rejected and a new job with a new seed takes its place; the two
-- name each other). Every claim, release and decision is audited.
--
-- Independent of 0006 (webhooks): it adds tables and columns of its own and
-- replaces cz_job_json, which 0006 does not touch.

-- A tenant may have every track reviewed, whatever its QA says.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS review_policy text NOT NULL DEFAULT 'auto'
    CHECK (review_policy IN ('auto', 'always'));

-- A regenerated job names the job a curator sent back.
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS regenerated_from uuid REFERENCES jobs (id);

-- Where the imported file is, so a curator can listen to a matched track
-- (NULL for tracks imported before this column existed).
ALTER TABLE catalog_tracks ADD COLUMN IF NOT EXISTS source_uri text;

-- One task per job: a job enters in_review at most once (in_review is
-- never retried). A task is open while decision is NULL and its job is
-- still in_review (a job canceled while waiting leaves the queue).
CREATE TABLE IF NOT EXISTS review_tasks (
    job_id           uuid PRIMARY KEY REFERENCES jobs (id),
    tenant_id        text NOT NULL REFERENCES tenants (id),
    attempt          int NOT NULL,
    reasons          jsonb NOT NULL,     -- [{"rule": ..., "detail": ...}]
    created_at       timestamptz NOT NULL DEFAULT now(),
    claimed_by       bigint REFERENCES api_keys (id),
    claimed_at       timestamptz,
    claim_expires_at timestamptz,
    claims           int NOT NULL DEFAULT 0,
    decision         text CHECK (decision IN ('approve', 'reject', 'regenerate')),
    decided_by       bigint REFERENCES api_keys (id),
    decided_at       timestamptz,
    notes            text,
    regenerated_job  uuid REFERENCES jobs (id)
);
-- The queue: a tenant's open tasks, oldest first.
CREATE INDEX IF NOT EXISTS review_tasks_open ON review_tasks (tenant_id, created_at, job_id)
    WHERE decision IS NULL;

-- Jobs already waiting in in_review when this runs get their task, with
-- the reasons their QA report and request give.
INSERT INTO review_tasks (job_id, tenant_id, attempt, reasons, created_at)
SELECT j.id, j.tenant_id, j.attempt,
       COALESCE((SELECT jsonb_agg(jsonb_build_object('rule', v.key,
                                                     'detail', 'the QA rule ' || v.key || ' failed'))
                   FROM qa_reports q, jsonb_each_text(q.report -> 'verdicts') v
                  WHERE q.job_id = j.id AND v.value = 'fail'), '[]'::jsonb)
       || CASE WHEN j.request ->> 'review' = 'always'
               THEN '[{"rule": "requested", "detail": "the request asked for review"}]'::jsonb
               ELSE '[]'::jsonb END,
       j.updated_at
  FROM jobs j
 WHERE j.state = 'in_review'
ON CONFLICT (job_id) DO NOTHING;

-- Who did what to which task, and when: append-only.
CREATE TABLE IF NOT EXISTS review_audit (
    id          bigserial PRIMARY KEY,
    job_id      uuid NOT NULL REFERENCES jobs (id),
    tenant_id   text NOT NULL REFERENCES tenants (id),
    action      text NOT NULL CHECK (action IN ('claim', 'release', 'approve', 'reject',
                                                'regenerate')),
    key_id      bigint NOT NULL REFERENCES api_keys (id),
    key_prefix  text NOT NULL,
    reason      text,
    detail      jsonb,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS review_audit_job ON review_audit (job_id, id);

-- A review task as the API shows it; the job itself is added by the caller
-- where it is wanted (a claim), not in the queue's listing.
CREATE OR REPLACE FUNCTION cz_review_task_json(r review_tasks) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'object', 'review_task',
        'job_id', r.job_id,
        'reasons', r.reasons,
        'created_at', cz_ts(r.created_at),
        'age_s', round(extract(epoch FROM now() - r.created_at)::numeric, 1),
        'claimed_by', (SELECT k.prefix FROM api_keys k WHERE k.id = r.claimed_by),
        'claimed_at', cz_ts(r.claimed_at),
        'claim_expires_at', cz_ts(r.claim_expires_at),
        'claims', r.claims,
        'decision', r.decision,
        'decided_by', (SELECT k.prefix FROM api_keys k WHERE k.id = r.decided_by),
        'decided_at', cz_ts(r.decided_at),
        'notes', r.notes,
        'regenerated_job', r.regenerated_job)
$$;

-- The job as the API returns it: as in 0008, with its review (reasons and
-- decision) and the job it regenerates.
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
$$;
