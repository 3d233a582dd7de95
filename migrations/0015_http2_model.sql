-- http@2 (docs/http2.md) in the registry, and which versions take model
-- parameters.
--
-- http@2 is the second version of the remote model backend: the same model
-- servers, reached through the asynchronous contract that batches, resumes
-- and cancels. It is active but carries no weight, so a bare "http" still
-- runs http@1 and http@2 is asked for by name@version (or given weight by an
-- operator). It returns the mix alone, like http@1.
--
-- takes_parameters: whether a request may carry "parameters" for the
-- version. Only http@2's servers declare parameters (temperature, top-p,
-- guidance...); the worker checks each against the server's declaration.
-- Every other version refuses them at submission.

ALTER TABLE models ADD COLUMN takes_parameters boolean NOT NULL DEFAULT false;

INSERT INTO models (name, version, backend, tier, status, weight, pool, max_duration_s, stems,
                    takes_parameters, description)
VALUES ('http', '2', 'http', 'final', 'active', 0, 'inference', 600, false, true,
        'a remote model server through the asynchronous contract: batches, resumes by id, '
        'cancels; returns the mix alone (docs/http2.md)');
