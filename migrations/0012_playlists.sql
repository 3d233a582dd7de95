-- Playlists: track features, listeners' signals and the playlists answered.

-- One row per playable track: every catalogue track (imported audio, or a
-- synthetic one from `cadenzactl catalog seed`) and every succeeded job
-- (its master, analysed by the post worker). Readers keep an in-memory
-- index and pick up new rows by following seq.
CREATE TABLE IF NOT EXISTS tracks (
    seq           bigserial UNIQUE,
    id            text PRIMARY KEY,      -- 'c<catalog_tracks.id>', 's<n>' (synthetic) or a job id
    source        text NOT NULL CHECK (source IN ('catalog', 'synthetic', 'job')),
    tenant_id     text REFERENCES tenants (id), -- a job's tenant (only it sees the track); NULL: everyone
    title         text NOT NULL,
    artist        text NOT NULL,
    duration_s    real NOT NULL CHECK (duration_s > 0),
    tempo_bpm     real NOT NULL CHECK (tempo_bpm > 0),
    key           smallint NOT NULL CHECK (key BETWEEN 0 AND 11), -- tonic pitch class, 0 = C
    mode          smallint NOT NULL CHECK (mode IN (0, 1)),       -- 1 major, 0 minor
    energy        real NOT NULL CHECK (energy BETWEEN 0 AND 1),
    loudness_lufs real NOT NULL,
    moods         text[] NOT NULL DEFAULT '{}',
    genres        text[] NOT NULL DEFAULT '{}',
    popularity    real NOT NULL DEFAULT 0 CHECK (popularity BETWEEN 0 AND 1),
    embedding     bytea NOT NULL CHECK (length(embedding) = 128), -- 32 float32 LE, unit length
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- What listeners did with tracks. Users are the tenant's own (any id it
-- chooses); the taste profile is computed from the latest signals.
CREATE TABLE IF NOT EXISTS user_signals (
    id         bigserial PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants (id),
    user_id    text NOT NULL,
    track_id   text NOT NULL REFERENCES tracks (id),
    kind       text NOT NULL CHECK (kind IN ('play', 'complete', 'skip', 'like', 'dislike')),
    position_s real CHECK (position_s >= 0), -- where a skip happened
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS user_signals_latest ON user_signals (tenant_id, user_id, id DESC);

-- Every playlist answered, so GET /v1/playlists/{id} can return it later.
CREATE TABLE IF NOT EXISTS playlists (
    id         uuid PRIMARY KEY,
    tenant_id  text NOT NULL REFERENCES tenants (id),
    user_id    text,
    request    jsonb NOT NULL,  -- the canonical request
    body       jsonb NOT NULL,  -- the answer, as POST /v1/playlists gave it
    created_at timestamptz NOT NULL DEFAULT now()
);
