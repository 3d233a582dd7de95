-- The catalogue the post pool checks every master against: one row per
-- imported audio file, with its chromaprint fingerprint (raw items, 32-bit
-- little-endian each). Written by `cadenzactl catalog import`; read by the
-- post workers, which load new rows (id greater than the last they saw)
-- into their in-memory inverted index before each job.

CREATE TABLE catalog_tracks (
    id             bigserial PRIMARY KEY,
    title          text NOT NULL,
    artist         text,
    duration_s     double precision NOT NULL,
    source_name    text NOT NULL,          -- file name it was imported from
    source_sha256  text NOT NULL UNIQUE,   -- the file's bytes: importing it again is a no-op
    fingerprint    bytea NOT NULL,         -- chromaprint raw items, uint32 LE
    fp_items       int NOT NULL CHECK (fp_items >= 0),
    fp_algorithm   int NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
