-- pgbench baseline for job submission: the same job and outbox rows the API
-- writes for POST /v1/jobs, in the same single statement, one job per
-- transaction.
\set seed random(1, 9007199254740991)
WITH j AS (
  INSERT INTO jobs (id, tenant_id, request, request_hash, model, seed, trace_id, max_attempts)
  VALUES (gen_random_uuid(), 'bench',
          '{"prompt":"benchmark: short ambient pad","duration_s":5,"model":"composer@1"}',
          md5(random()::text), 'composer@1', :seed, md5(random()::text), 4)
  RETURNING *
), o AS (
  INSERT INTO outbox (topic, key, payload, headers)
  SELECT 'cadenza.jobs.generate', j.id::text,
         jsonb_build_object('schema', 1, 'job_id', j.id, 'attempt', j.attempt,
                            'tenant', j.tenant_id, 'model', j.model, 'seed', j.seed,
                            'trace_id', j.trace_id, 'request', j.request),
         jsonb_build_object('job_id', j.id::text, 'attempt', j.attempt::text,
                            'tenant', j.tenant_id)
  FROM j
)
SELECT cz_job_json(ROW(j.*)::jobs) FROM j;
