-- Webhooks: tenants' endpoints and signing secrets, deliveries as due rows,
-- and the log of every attempt. SQL for these tables lives in
-- common/db_webhooks.c; the dispatcher is scheduler/webhooks.c.
--
-- A delivery is one event for one receiver: a tenant endpoint, or the URL
-- a job named in its request (endpoint_id NULL). It is written in the same
-- transaction as the job's change of state, with the body it will carry
-- for good, so a crash can neither lose it nor change what it says. It
-- stays 'pending' until an attempt succeeds or the schedule is used up;
-- the dispatcher takes due rows (next_attempt_at <= now()).

-- Endpoints a tenant registers: every job of the tenant, filtered by event.
CREATE TABLE webhook_endpoints (
    id                     uuid PRIMARY KEY,
    tenant_id              text NOT NULL REFERENCES tenants (id),
    url                    text NOT NULL,
    description            text NOT NULL DEFAULT '',
    events                 text[] NOT NULL,
    secret                 text NOT NULL,     -- whsec_...; the HMAC needs it in clear
    previous_secret        text,              -- still signs until previous_secret_until
    previous_secret_until  timestamptz,
    disabled_at            timestamptz,
    disabled_reason        text,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id, created_at);

-- The tenant's default secret: signs deliveries to a job's own webhook.url.
CREATE TABLE webhook_secrets (
    tenant_id              text PRIMARY KEY REFERENCES tenants (id),
    secret                 text NOT NULL,
    previous_secret        text,
    previous_secret_until  timestamptz,
    created_at             timestamptz NOT NULL DEFAULT now(),
    updated_at             timestamptz NOT NULL DEFAULT now()
);

-- Each event of a job that is delivered anywhere gets the next number.
ALTER TABLE jobs ADD COLUMN webhook_seq int NOT NULL DEFAULT 0;

CREATE TABLE webhook_deliveries (
    id               uuid PRIMARY KEY,       -- the webhook-id header, on every attempt
    tenant_id        text NOT NULL REFERENCES tenants (id),
    job_id           uuid NOT NULL REFERENCES jobs (id),
    endpoint_id      uuid REFERENCES webhook_endpoints (id),  -- NULL: the job's webhook.url
    url              text NOT NULL,
    -- scheme://host:port: the receiver whose concurrency is bounded
    origin           text NOT NULL GENERATED ALWAYS AS
                         (lower(substring(url FROM '^[A-Za-z][A-Za-z0-9+.-]*://[^/?#]+'))) STORED,
    event            text NOT NULL,
    sequence         int NOT NULL,
    payload          text NOT NULL,          -- the exact bytes every attempt sends
    state            text NOT NULL DEFAULT 'pending'
                         CHECK (state IN ('pending', 'succeeded', 'failed')),
    attempts         int NOT NULL DEFAULT 0, -- made so far, over every round
    round_start      int NOT NULL DEFAULT 0, -- attempts made before the last redelivery
    next_attempt_at  timestamptz,            -- due time while pending
    last_status      int,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    delivered_at     timestamptz
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_job ON webhook_deliveries (job_id, sequence);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id)
    WHERE state = 'pending';

-- Every attempt, as the delivery log shows it.
CREATE TABLE webhook_attempts (
    id                bigserial PRIMARY KEY,
    delivery_id       uuid NOT NULL REFERENCES webhook_deliveries (id),
    attempt           int NOT NULL,
    started_at        timestamptz NOT NULL,
    status            int,            -- HTTP status; NULL when nothing came back
    latency_ms        int NOT NULL,
    error             text,
    response_excerpt  text,
    next_attempt_at   timestamptz     -- when the next one was scheduled, if any
);
-- One row per attempt number: a record written twice (its commit's answer
-- lost with the connection) stays one row.
CREATE UNIQUE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_id, attempt);

-- Enqueues event `ev` of job `job` for every receiver that wants it: the
-- tenant's enabled endpoints whose filter names it, and the job's own
-- webhook.url (its events, or `default_events`) unless that answered 410
-- before. Each delivery carries the job as cz_job_json() shows it now, the
-- event type and the job's next sequence number. Called in the transaction
-- that changes the job, for every change of state, so it is a function:
-- its statements are planned once per session, and a job without
-- receivers costs two index lookups. Creates the tenant's default secret
-- (`candidate_secret`) on first need. Returns the deliveries created.
CREATE FUNCTION cz_webhook_enqueue(job uuid, ev text, candidate_secret text,
                                   default_events text[]) RETURNS int
LANGUAGE plpgsql AS $$
DECLARE
    j jobs;
    own text;
    seq int;
    body text;
    n int;
BEGIN
    SELECT * INTO j FROM jobs WHERE id = job;
    IF NOT FOUND THEN
        RETURN 0;
    END IF;
    own := j.request #>> '{webhook,url}';
    IF own IS NOT NULL AND NOT (CASE WHEN j.request -> 'webhook' ? 'events'
                                     THEN (j.request #> '{webhook,events}') ? ev
                                     ELSE ev = ANY (default_events) END) THEN
        own := NULL;
    END IF;
    IF own IS NOT NULL AND EXISTS (SELECT 1 FROM webhook_deliveries g
                                    WHERE g.job_id = job AND g.endpoint_id IS NULL
                                      AND g.last_status = 410) THEN
        own := NULL;
    END IF;
    IF own IS NULL AND NOT EXISTS (SELECT 1 FROM webhook_endpoints e
                                    WHERE e.tenant_id = j.tenant_id AND e.disabled_at IS NULL
                                      AND ev = ANY (e.events)) THEN
        RETURN 0;
    END IF;
    UPDATE jobs SET webhook_seq = webhook_seq + 1 WHERE id = job RETURNING webhook_seq INTO seq;
    IF own IS NOT NULL THEN
        INSERT INTO webhook_secrets (tenant_id, secret) VALUES (j.tenant_id, candidate_secret)
            ON CONFLICT (tenant_id) DO NOTHING;
    END IF;
    body := json_build_object('type', ev, 'timestamp', cz_ts(now()), 'sequence', seq,
                              'data', cz_job_json(j))::text;
    INSERT INTO webhook_deliveries (id, tenant_id, job_id, endpoint_id, url, event, sequence,
                                    payload, next_attempt_at)
    SELECT gen_random_uuid(), j.tenant_id, job, t.endpoint_id, t.url, ev, seq, body, now()
      FROM (SELECT e.id AS endpoint_id, e.url FROM webhook_endpoints e
             WHERE e.tenant_id = j.tenant_id AND e.disabled_at IS NULL AND ev = ANY (e.events)
            UNION ALL
            SELECT NULL::uuid, own WHERE own IS NOT NULL) t;
    GET DIAGNOSTICS n = ROW_COUNT;
    RETURN n;
END $$;

-- Wake the dispatcher when deliveries commit (NOTIFY is sent at commit).
-- Statement triggers fire for statements that insert nothing too; the
-- transition table lets those stay quiet.
CREATE FUNCTION webhook_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM new_rows) THEN
        PERFORM pg_notify('cadenza_webhooks', '');
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER webhook_notify AFTER INSERT ON webhook_deliveries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION webhook_notify();

-- An endpoint as the API shows it (never its secret).
CREATE FUNCTION cz_webhook_endpoint_json(e webhook_endpoints) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', e.id,
        'object', 'webhook_endpoint',
        'url', e.url,
        'description', e.description,
        'events', e.events,
        'enabled', e.disabled_at IS NULL,
        'disabled_at', cz_ts(e.disabled_at),
        'disabled_reason', e.disabled_reason,
        'previous_secret_expires_at',
            CASE WHEN e.previous_secret_until > now() THEN cz_ts(e.previous_secret_until) END,
        'created_at', cz_ts(e.created_at),
        'updated_at', cz_ts(e.updated_at))
$$;

-- A delivery with its attempts, oldest first.
CREATE FUNCTION cz_webhook_delivery_json(d webhook_deliveries) RETURNS json
LANGUAGE sql STABLE AS $$
    SELECT json_build_object(
        'id', d.id,
        'object', 'webhook_delivery',
        'job_id', d.job_id,
        'endpoint_id', d.endpoint_id,
        'url', d.url,
        'event', d.event,
        'sequence', d.sequence,
        'state', d.state,
        'next_attempt_at', cz_ts(d.next_attempt_at),
        'last_status', d.last_status,
        'last_error', d.last_error,
        'created_at', cz_ts(d.created_at),
        'delivered_at', cz_ts(d.delivered_at),
        'attempts', COALESCE((
            SELECT json_agg(json_build_object(
                       'attempt', a.attempt, 'at', cz_ts(a.started_at), 'status', a.status,
                       'latency_ms', a.latency_ms, 'error', a.error,
                       'response', a.response_excerpt,
                       'next_attempt_at', cz_ts(a.next_attempt_at)) ORDER BY a.attempt)
            FROM webhook_attempts a WHERE a.delivery_id = d.id), '[]'::json))
$$;
