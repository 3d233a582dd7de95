-- The API as a product: keys that can be listed and revoked, per-key rate
-- limits, per-tenant monthly quotas of generated audio, and the indexes the
-- quota check and the key lookup read.
--
-- Independent of 0006 (webhooks): `cadenza-api migrate` applies every file
-- not yet recorded in schema_migrations in name order, so this file applies
-- the same whether 0006 came before it or arrives after it.

-- Keys are found by their prefix ("cz_" + 8 hex, not secret) and then the
-- stored SHA-256 is compared in constant time in the API (common/db_keys.c).
CREATE INDEX IF NOT EXISTS api_keys_prefix ON api_keys (prefix);

-- A key's own rate limit (token bucket: a sustained rate and a burst);
-- NULL takes the API's defaults (CADENZA_RATE_LIMIT_PER_S / _BURST).
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS rate_per_s double precision
    CHECK (rate_per_s IS NULL OR rate_per_s > 0);
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS rate_burst int
    CHECK (rate_burst IS NULL OR rate_burst >= 1);

-- Minutes of audio a tenant may generate per calendar month (UTC); NULL is
-- unlimited. Checked at submission against the ledger plus the durations
-- asked for by the tenant's jobs that have not ended.
ALTER TABLE tenants ADD COLUMN IF NOT EXISTS monthly_audio_minutes double precision
    CHECK (monthly_audio_minutes IS NULL OR monthly_audio_minutes >= 0);

-- The quota check's two reads: this month's ledger rows of a tenant, and
-- its jobs that have not ended yet.
CREATE INDEX IF NOT EXISTS usage_ledger_tenant_month ON usage_ledger (tenant_id, created_at);
CREATE INDEX IF NOT EXISTS jobs_tenant_open ON jobs (tenant_id)
    WHERE state NOT IN ('succeeded', 'failed', 'canceled', 'rejected');

-- What a tenant has used this month and what its open jobs have reserved,
-- in seconds of audio. One definition for the quota check and GET /v1/usage.
CREATE OR REPLACE FUNCTION cz_tenant_usage(tenant text, OUT used_s double precision,
                                           OUT reserved_s double precision)
LANGUAGE sql STABLE AS $$
    SELECT (SELECT COALESCE(sum(u.audio_seconds), 0) FROM usage_ledger u
             WHERE u.tenant_id = tenant
               AND u.created_at >= date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
           (SELECT COALESCE(sum((j.request ->> 'duration_s')::double precision), 0) FROM jobs j
             WHERE j.tenant_id = tenant
               AND j.state NOT IN ('succeeded', 'failed', 'canceled', 'rejected'))
$$;
