-- Every succeeded job becomes a track for playlists: its `tracks` row is
-- made from the features the post worker measured on the master (the QA
-- report's `analysis`, common/analysis.c), for the job's tenant only.
--
-- When the report is there. The scheduler applies `post_done` in one
-- transaction that first moves the job to succeeded (UPDATE jobs) and then
-- stores the QA report (INSERT ... ON CONFLICT into qa_reports), so when
-- the jobs trigger fires the report of this attempt is not stored yet. A
-- job that went through review (in_review, then a curator's approval) has
-- its report from the `needs_review` event long before. Hence two
-- triggers calling one function: on jobs when the state becomes succeeded,
-- and on qa_reports when a report is stored for a job that is already
-- succeeded. Whichever runs when both the state and the report are in
-- place inserts the row; the other finds one of them missing (or the row
-- already there: ON CONFLICT DO NOTHING). Only the report of the job's
-- current attempt counts.
--
-- Jobs answered from the prompt cache or by an identical job in flight
-- (cached_from set) are the same audio as their source: no row of their
-- own. They are inserted as succeeded or moved there with cached_from in
-- the same UPDATE, so the WHEN clause leaves them out.
--
-- A report whose analysis is missing (analysis failed: null) or unusable
-- adds no track and never fails the transition that carries it: the job's
-- state matters more than its playlist row, and Postgres logs a warning.

CREATE OR REPLACE FUNCTION cz_track_from_job(job uuid) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    j jobs;
    a jsonb;
BEGIN
    SELECT * INTO j FROM jobs WHERE id = job;
    IF NOT FOUND OR j.state <> 'succeeded' OR j.cached_from IS NOT NULL THEN
        RETURN;
    END IF;
    SELECT q.report -> 'analysis' INTO a
      FROM qa_reports q WHERE q.job_id = job AND q.attempt = j.attempt;
    IF a IS NULL OR jsonb_typeof(a) <> 'object' THEN
        RETURN;
    END IF;
    BEGIN
        INSERT INTO tracks (id, source, tenant_id, title, artist, duration_s, tempo_bpm, key,
                            mode, energy, loudness_lufs, moods, genres, popularity, embedding)
        VALUES (j.id::text, 'job', j.tenant_id,
                COALESCE(NULLIF(btrim(left(j.request ->> 'prompt', 80)), ''), 'Untitled'),
                'Cadenza',
                (a ->> 'duration_s')::real,
                (a ->> 'tempo_bpm')::real,
                (a ->> 'key_index')::smallint,
                CASE a ->> 'mode' WHEN 'major' THEN 1 WHEN 'minor' THEN 0 END,
                (a ->> 'energy')::real,
                (a ->> 'loudness_lufs')::real,
                ARRAY(SELECT jsonb_array_elements_text(COALESCE(a -> 'moods', '[]'))),
                ARRAY(SELECT jsonb_array_elements_text(COALESCE(a -> 'genres', '[]'))),
                0,
                decode(a ->> 'embedding', 'base64'))
        ON CONFLICT (id) DO NOTHING;
    EXCEPTION WHEN check_violation OR not_null_violation OR data_exception THEN
        RAISE WARNING 'job %: its QA analysis cannot be a track: %', job, SQLERRM;
    END;
END $$;

CREATE OR REPLACE FUNCTION cz_jobs_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM cz_track_from_job(NEW.id);
    RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION cz_qa_reports_track() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM cz_track_from_job(NEW.job_id);
    RETURN NULL;
END $$;

DROP TRIGGER IF EXISTS jobs_track ON jobs;
CREATE TRIGGER jobs_track AFTER UPDATE ON jobs FOR EACH ROW
    WHEN (NEW.state = 'succeeded' AND OLD.state IS DISTINCT FROM 'succeeded'
          AND NEW.cached_from IS NULL)
    EXECUTE FUNCTION cz_jobs_track();

DROP TRIGGER IF EXISTS qa_reports_track ON qa_reports;
CREATE TRIGGER qa_reports_track AFTER INSERT OR UPDATE ON qa_reports FOR EACH ROW
    WHEN (NEW.report ? 'analysis')
    EXECUTE FUNCTION cz_qa_reports_track();
