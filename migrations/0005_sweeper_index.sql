-- The sweeper removes canceled jobs' files once a second. Files only need
-- that shortly after the cancel (a canceled job's late results are removed
-- as they arrive), so it looks at recently canceled jobs, through this
-- index, instead of scanning every job.
CREATE INDEX jobs_canceled_at ON jobs (finished_at) WHERE state = 'canceled';
