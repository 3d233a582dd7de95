"""http@2 end to end, black-box against the running stack and the reference
model server (tests/reference_model.py, started here with --oom-above 3 on
the port the stack's workers call; its GET /v1/stats says what it did).

Jobs that wait together are submitted together: three become one batch on
the server; four run out of the server's memory and succeed as two batches
of two, each job on its first attempt. A canceled job's prediction is
deleted on the server. An inference worker killed with SIGKILL in the
middle of a prediction is restarted by the scheduler, gets the job again
and follows the same prediction: the job succeeds and the server started
exactly one prediction for it. Parameters the model declares change the
music; one it does not declare fails the job as invalid_input, once, without
a retry and without reaching the server; the server's other failures map
to their classes (oom alone, model_error).
"""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from conftest import ROOT

OOM_ABOVE = 3


@pytest.fixture(scope="module")
def server(env):
    port = env["CADENZA_HTTP_MODEL_PORT"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests/reference_model.py"), "--port", port,
                             "--oom-above", str(OOM_ABOVE)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().startswith("listening on"), "reference model did not start"
    base = f"http://127.0.0.1:{port}"
    yield base
    proc.terminate()
    proc.wait(timeout=10)


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        return json.loads(r.read())


def by_job(counts, job):
    """The server's count for the job's keys: cadenza-<job id>-<input hash>."""
    return sum(n for k, n in counts.items() if k.startswith(f"cadenza-{job['id']}-"))


def generated(psql, job_id):
    """What the inference worker chose for a finished job, from its manifest.

    Not from the "generated" job event: the post worker's events may reach
    the scheduler first, and then that event is never recorded as a
    transition (common/db/jobs.c, record_late_generated); the manifest
    always carries the provenance."""
    uri = psql(f"SELECT uri FROM artifacts WHERE job_id = '{job_id}' AND kind = 'manifest' "
               f"ORDER BY attempt DESC LIMIT 1")
    return json.loads(pathlib.Path(uri.removeprefix("file://")).read_text())


def failures(psql, job_id, timeout=90):
    """The classes of the job's failed events, once there is one."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        out = psql(f"SELECT string_agg(detail->'failure'->>'class', ',' ORDER BY id) "
                   f"FROM job_events WHERE job_id = '{job_id}' AND event = 'failed'")
        if out:
            return out.split(",")
        time.sleep(0.3)
    raise AssertionError(f"job {job_id} never failed")


def wait_started(base, job, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if by_job(get(base, "/v1/stats")["started_by_key"], job):
            return
        time.sleep(0.2)
    raise AssertionError(f"the server never started a prediction for {job['id']}")


def while_the_worker_is_busy(api, submit):
    """Keeps the inference worker on a long composer render while @p submit
    runs and until its jobs wait in Kafka, then cancels the render: the
    worker reads them together."""
    blocker = api.submit(prompt="busy ambient pads", duration_s=600, seed=1)
    api.wait(blocker["id"], states={"generating"}, timeout=60)
    jobs = submit()
    for j in jobs:
        api.wait(j["id"], states={"dispatched"}, timeout=30)
    status, _, body = api.json("POST", f"/v1/jobs/{blocker['id']}/cancel")
    assert status == 200 and body["state"] == "canceled", body
    return jobs


def new_batches(base, before):
    """The server's batches since the first @p before, as (size, outcome)."""
    return [(b["size"], b["outcome"]) for b in get(base, "/v1/stats")["batches"][before:]]


def test_jobs_waiting_together_are_one_batch(tenant_api, psql, server):
    before = len(get(server, "/v1/stats")["batches"])
    jobs = while_the_worker_is_busy(tenant_api, lambda: [
        tenant_api.submit(prompt=f"dreamy synthwave {i}, 100 bpm", model="http@2", duration_s=4,
                          seed=40 + i) for i in range(3)])
    ends = [tenant_api.wait(j["id"]) for j in jobs]
    assert [e["state"] for e in ends] == ["succeeded"] * 3, [e.get("failure") for e in ends]
    assert [e["attempt"] for e in ends] == [1, 1, 1]
    assert new_batches(server, before) == [(3, "succeeded")]
    for e in ends:
        chosen = generated(psql, e["id"])["chosen"]
        assert chosen["batch_size"] == 3 and chosen["resumed"] is False, chosen
        assert chosen["model_version"] == "reference-1" and chosen["prediction_id"]
        master = next(a for a in e["artifacts"] if a["kind"] == "master")
        assert abs(master["duration_s"] - 4) <= 0.05


def test_oom_in_a_batch_of_four_is_retried_as_two_batches_of_two(tenant_api, psql, server):
    before = len(get(server, "/v1/stats")["batches"])
    jobs = while_the_worker_is_busy(tenant_api, lambda: [
        tenant_api.submit(prompt=f"calm piano {i}", model="http@2", duration_s=3, seed=50 + i)
        for i in range(4)])
    ends = [tenant_api.wait(j["id"]) for j in jobs]
    assert [e["state"] for e in ends] == ["succeeded"] * 4, [e.get("failure") for e in ends]
    assert [e["attempt"] for e in ends] == [1] * 4  # retried by the worker, not the scheduler
    assert new_batches(server, before) == [(4, "oom"), (2, "succeeded"), (2, "succeeded")]
    for e in ends:
        assert generated(psql, e["id"])["chosen"]["batch_size"] == 2


def test_oom_alone_is_a_job_failure_of_class_oom(tenant_api, psql, server):
    job = tenant_api.submit(prompt="anything reference:oom", model="http@2", duration_s=2, seed=1)
    assert failures(psql, job["id"])[0] == "oom"
    tenant_api.json("POST", f"/v1/jobs/{job['id']}/cancel")  # no need to use up its retries


def test_cancel_deletes_the_prediction(tenant_api, psql, server):
    job = tenant_api.submit(prompt="long ambient reference:slow", model="http@2", duration_s=3,
                            seed=2)
    wait_started(server, job)
    status, _, body = tenant_api.json("POST", f"/v1/jobs/{job['id']}/cancel")
    assert status == 200 and body["state"] == "canceled", body
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        canceled = get(server, "/v1/stats")["canceled"]
        if any(get(server, f"/v1/predictions/{p}")["key"].startswith(f"cadenza-{job['id']}-")
               for p in canceled):
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the server never saw the prediction canceled")
    assert psql(f"SELECT count(*) FROM job_events WHERE job_id = '{job['id']}' "
                f"AND event = 'generated'") == "0"


def test_a_worker_killed_mid_prediction_resumes_it_by_key(tenant_api, psql, env, server):
    job = tenant_api.submit(prompt="slow folk tune reference:slow", model="http@2", duration_s=3,
                            seed=3)
    wait_started(server, job)
    time.sleep(1)
    pid = int(open(os.path.join(env["CADENZA_STATE_DIR"], "run", "worker-inference.pid")).read())
    os.kill(pid, signal.SIGKILL)
    done = tenant_api.wait(job["id"], timeout=180)  # the scheduler restarts the worker
    assert done["state"] == "succeeded", done
    stats = get(server, "/v1/stats")
    assert by_job(stats["created_by_key"], job) == 1, stats["created_by_key"]
    assert by_job(stats["started_by_key"], job) == 1  # no GPU time spent twice
    chosen = generated(psql, job["id"])["chosen"]
    assert chosen["resumed"] is True, chosen
    log = open(os.path.join(env["CADENZA_STATE_DIR"], "logs", "worker-inference.log")).read()
    assert f"prediction {chosen['prediction_id']} resumed" in log


def test_declared_parameters_change_the_music(tenant_api, psql, server):
    models = get(server, "/v1/models")["models"]
    assert {"temperature", "top_p", "guidance"} <= models[0]["parameters"].keys()
    plain = tenant_api.submit(prompt="pop song", model="http@2", duration_s=3, seed=77)
    tuned = tenant_api.submit(prompt="pop song", model="http@2", duration_s=3, seed=77,
                              parameters={"temperature": 1.6, "top_p": 0.5})
    a, b = tenant_api.wait(plain["id"]), tenant_api.wait(tuned["id"])
    assert a["state"] == b["state"] == "succeeded", (a.get("failure"), b.get("failure"))
    assert b["request"]["parameters"] == {"temperature": 1.6, "top_p": 0.5}
    raw = [next(x for x in j["artifacts"] if x["kind"] == "raw")["sha256"] for j in (a, b)]
    assert raw[0] != raw[1]
    assert generated(psql, b["id"])["chosen"]["parameters"] == {"temperature": 1.6, "top_p": 0.5}


def test_an_undeclared_parameter_fails_once_as_invalid_input(tenant_api, psql, server):
    job = tenant_api.submit(prompt="pop song", model="http@2", duration_s=3, seed=78,
                            parameters={"cfg_scale": 7})
    done = tenant_api.wait(job["id"], timeout=90)
    assert done["state"] == "failed" and done["attempt"] == 1, done
    assert failures(psql, job["id"]) == ["invalid_input"]
    assert "cfg_scale" in done["failure"]["detail"] and "temperature" in done["failure"]["detail"]
    assert by_job(get(server, "/v1/stats")["created_by_key"], job) == 0


def test_a_model_error_is_classified(tenant_api, psql, server):
    job = tenant_api.submit(prompt="anything reference:error", model="http@2", duration_s=2,
                            seed=4)
    assert failures(psql, job["id"])[0] == "model_error"
    tenant_api.json("POST", f"/v1/jobs/{job['id']}/cancel")
