-- Worker pools as data (docs/operations.md, "Pools").
--
-- One row per pool: the replica bounds, the number wanted now (desired),
-- the autoscaler's settings, and what the scheduler last observed (running
-- replicas, consumer-group lag, throughput). Operators change a pool through
-- PUT /v1/pools/{name} or `cadenzactl pools`; the autoscaler changes desired
-- within [min_replicas, max_replicas]. Every change is one row of
-- pool_decisions: who, what, when and why.

CREATE TABLE pools (
    name                   text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9-]{0,30}$'),
    min_replicas           integer NOT NULL CHECK (min_replicas >= 0),
    max_replicas           integer NOT NULL CHECK (max_replicas >= 1 AND max_replicas <= 64),
    desired                integer NOT NULL,
    target_lag_per_replica integer NOT NULL CHECK (target_lag_per_replica >= 1),
    cooldown_s             integer NOT NULL CHECK (cooldown_s >= 0),
    autoscale              boolean NOT NULL DEFAULT false,
    updated_at             timestamptz NOT NULL DEFAULT now(),
    updated_by             text NOT NULL DEFAULT 'migration',
    -- Written by the scheduler: what it saw last, and when.
    running                integer,
    lag                    bigint,
    throughput_per_s       double precision,
    observed_at            timestamptz,
    CHECK (min_replicas <= max_replicas),
    CHECK (desired >= min_replicas AND desired <= max_replicas)
);

INSERT INTO pools (name, min_replicas, max_replicas, desired, target_lag_per_replica, cooldown_s)
VALUES ('inference', 1, 8, 1, 4, 300),
       ('post', 1, 8, 1, 20, 300);

CREATE TABLE pool_decisions (
    id               bigserial PRIMARY KEY,
    pool             text NOT NULL REFERENCES pools (name),
    at               timestamptz NOT NULL DEFAULT now(),
    actor            text NOT NULL,  -- "key:<prefix>", "autoscaler", "supervisor"
    action           text NOT NULL,  -- settings | scale_up | scale_down | restart
    from_desired     integer,
    to_desired       integer,
    lag              bigint,
    throughput_per_s double precision,
    reason           text NOT NULL,
    settings         jsonb           -- the pool's settings after the change
);
CREATE INDEX pool_decisions_pool_at ON pool_decisions (pool, at DESC);
