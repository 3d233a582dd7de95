"""neural@1 end to end, black-box against the running stack.

The learned model writes the melody and harmony, composer@1's arranger
orchestrates them and FluidSynth renders the mix and the stems; the job's
provenance names both stages and the weights' sha256 (the committed
`.sha256` file). Jobs sent together are decoded together (the inference
worker's `cadenza_worker_batch_size` histogram sees a batch of more than
one), each finishes on its own: one canceled in the middle of a batch ends
canceled while the others succeed on their first attempt, their leases
kept alive while the batch renders one job after another. A model that
does not exist is refused at submission naming the ones that do. A worker
whose weights or training melodies (the guard against copying needs them)
are missing or corrupt stops before it joins its consumer group, saying
which file and what to do.
"""
import json
import os
import pathlib
import shutil
import subprocess
import time
import urllib.request

import pytest

from conftest import ROOT
from prometheus_client.parser import text_string_to_metric_families

WEIGHTS_SHA = (ROOT / "workers/models/neural/weights/neural-1.cztf.sha256").read_text().split()[0]


def batch_sizes(env):
    """The inference worker's batch-size histogram: {upper bound: count}."""
    base = int(env["CADENZA_WORKER_METRICS_PORT_BASE"])
    text = urllib.request.urlopen(f"http://127.0.0.1:{base}/metrics", timeout=10).read().decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        if fam.name == "cadenza_worker_batch_size":
            for s in fam.samples:
                if s.name.endswith("_bucket"):
                    out[float(s.labels["le"])] = s.value
    return out


def generated(psql, job_id):
    """What the inference worker chose for a finished job, from its manifest.

    Not from the "generated" job event: the post worker's events may reach
    the scheduler first, and then that event is never recorded as a
    transition (common/db/jobs.c, record_late_generated); the manifest
    always carries the provenance."""
    uri = psql(f"SELECT uri FROM artifacts WHERE job_id = '{job_id}' AND kind = 'manifest' "
               f"ORDER BY attempt DESC LIMIT 1")
    return json.loads(pathlib.Path(uri.removeprefix("file://")).read_text())


def test_a_neural_job_with_stems_names_both_stages_and_the_weights(tenant_api, psql):
    job = tenant_api.submit(prompt="gentle folk tune with acoustic guitar and flute, G major",
                            model="neural@1", duration_s=20, seed=31, stems=True)
    done = tenant_api.wait(job["id"])
    assert done["state"] == "succeeded", done
    kinds = {a["kind"] for a in done["artifacts"]}
    assert {"master", "stem"} <= kinds, kinds
    stems = {a["name"] for a in done["artifacts"] if a["kind"] == "stem"}
    assert "melody" in stems, stems
    detail = generated(psql, job["id"])
    assert detail["model"] == {"name": "neural", "version": "1"} and detail["seed"] == 31, detail
    neural = detail["chosen"]["neural"]
    assert neural["weights_sha256"] == WEIGHTS_SHA
    assert neural["arranger"] == "composer@1"
    assert [s["section"] for s in neural["sections"]] == ["A", "B"]
    assert all(s["tokens"] > 7 for s in neural["sections"])
    assert detail["chosen"]["material"]["source"] == "given"
    assert detail["chosen"]["key"] == "G major"


def test_jobs_sent_together_are_decoded_in_one_batch(env, tenant_api):
    before = batch_sizes(env)
    jobs = [tenant_api.submit(prompt=f"bright pop melody number {i}", model="neural@1",
                              duration_s=4, seed=700 + i) for i in range(6)]
    ends = [tenant_api.wait(j["id"]) for j in jobs]
    assert [e["state"] for e in ends] == ["succeeded"] * 6, [e.get("failure") for e in ends]
    after = batch_sizes(env)
    # Some run took more than one job: fewer runs of size 1 than jobs.
    alone = after.get(1.0, 0) - before.get(1.0, 0)
    total = after.get(float("inf"), 0) - before.get(float("inf"), 0)
    assert total < 6 and alone < 6, (before, after)


def test_a_job_canceled_mid_batch_leaves_the_others_going(env, tenant_api):
    # Ten-minute pieces: rendering each takes seconds, so the last ones wait
    # well past the local stack's 15 s lease unless the batch keeps them alive.
    jobs = [tenant_api.submit(prompt=f"slow ambient piece {i}", model="neural@1",
                              duration_s=600, seed=800 + i) for i in range(5)]
    victim = jobs[1]
    tenant_api.wait(victim["id"], states={"generating"}, timeout=60)
    status, _, body = tenant_api.json("POST", f"/v1/jobs/{victim['id']}/cancel")
    assert status in (200, 202), body
    t0 = time.monotonic()
    ends = {j["id"]: tenant_api.wait(j["id"], timeout=300) for j in jobs}
    assert time.monotonic() - t0 > 15, "the batch ended within one lease: nothing was kept alive"
    assert ends[victim["id"]]["state"] == "canceled"
    for j in jobs:
        if j is victim:
            continue
        e = ends[j["id"]]
        assert e["state"] == "succeeded", e
        assert e["attempt"] == 1, f"job {j['id']} was retried: its lease ran out in the batch"


def test_an_unknown_model_is_refused_naming_the_models(tenant_api):
    status, _, body = tenant_api.json("POST", "/v1/jobs",
                                      {"prompt": "anything", "model": "neural@9"})
    assert status == 422, body
    assert "neural@1" in body["detail"] and "composer@1" in body["detail"], body


MODEL_FILES = ["neural-1.cztf", "neural-1.cztf.sha256", "neural-1.melodies", "neural-1.melodies.sha256"]


@pytest.mark.parametrize("damage, says", [
    ("remove neural-1.melodies", "melodies file {dir}/neural-1.melodies: No such file"),
    ("flip neural-1.melodies", "melodies file {dir}/neural-1.melodies: sha256 mismatch, the file is corrupt"),
    ("flip neural-1.cztf", "weights file {dir}/neural-1.cztf: sha256 mismatch, the file is corrupt"),
    ("remove neural-1.cztf.sha256", "checksum file {dir}/neural-1.cztf.sha256 is missing"),
])
def test_a_worker_with_missing_or_corrupt_model_files_stops_saying_which(env, tmp_path, damage, says):
    for name in MODEL_FILES:
        shutil.copy(ROOT / "workers/models/neural/weights" / name, tmp_path / name)
    verb, name = damage.split()
    if verb == "remove":
        (tmp_path / name).unlink()
    else:
        with open(tmp_path / name, "r+b") as f:
            f.seek(100)
            byte = f.read(1)
            f.seek(100)
            f.write(bytes([byte[0] ^ 1]))
    run_env = dict(os.environ, **env, CADENZA_NEURAL_WEIGHTS=str(tmp_path / "neural-1.cztf"))
    proc = subprocess.run([str(ROOT / "bin/cadenza-worker"), "--pool", "inference"], env=run_env,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    logged = proc.stdout + proc.stderr
    assert says.format(dir=tmp_path) in logged, logged
    assert "restore it from git or run make model" in logged, logged
    assert " consuming " not in logged, logged  # it never reached its consumer group
