"""Cancellation, idempotency keys, lease expiry and graceful hand-back, each
forced against the real stack."""
import concurrent.futures
import os
import signal
import subprocess
import time
import uuid

import pytest

from conftest import ROOT


def proc_pid(env, name):
    state = env["CADENZA_STATE_DIR"]
    return int(open(f"{state}/run/{name}.pid").read())


def stack_up():
    subprocess.run([str(ROOT / "deploy/local/stack.sh"), "up"], check=True,
                   stdout=subprocess.DEVNULL)


def kafka(action):
    subprocess.run([str(ROOT / "deploy/local/kafka.sh"), action], check=True,
                   stdout=subprocess.DEVNULL)


def history(psql, job_id):
    return psql(f"SELECT string_agg(event || ':' || state || ':' || attempt, ',' ORDER BY id)"
                f"  FROM job_events WHERE job_id = '{job_id}'").split(",")


def wait_state(api, job_id, states, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = api.json("GET", f"/v1/jobs/{job_id}")[2]
        if job["state"] in states:
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} never reached {states}; it is {job['state']}")


# ---- cancellation ---------------------------------------------------------

def test_cancel_a_queued_job(tenant_api, psql):
    kafka("stop")  # keeps the job in the outbox, queued
    try:
        job = tenant_api.submit(prompt="to be canceled while queued", duration_s=2)
        status, _, canceled = tenant_api.json("POST", f"/v1/jobs/{job['id']}/cancel")
        assert status == 200 and canceled["state"] == "canceled"
        status, _, problem = tenant_api.json("POST", f"/v1/jobs/{job['id']}/cancel")
        assert status == 409 and problem["type"].endswith("job-finished")
    finally:
        kafka("start")
    time.sleep(3)
    assert tenant_api.json("GET", f"/v1/jobs/{job['id']}")[2]["state"] == "canceled"
    assert history(psql, job["id"]) == ["cancel:canceled:1"]
    assert psql(f"SELECT count(*) FROM outbox WHERE key = '{job['id']}'") == "0"
    assert psql(f"SELECT outcome FROM usage_ledger WHERE job_id = '{job['id']}'") == "canceled"


def test_cancel_a_running_job_stops_it_and_discards_its_output(tenant_api, psql, env):
    job = tenant_api.submit(prompt="a long render to cancel", duration_s=600, seed=11)
    wait_state(tenant_api, job["id"], {"generating"})
    status, _, canceled = tenant_api.json("POST", f"/v1/jobs/{job['id']}/cancel")
    assert status == 200 and canceled["state"] == "canceled"
    time.sleep(4)  # long enough for the worker to notice, and for any late event
    done = tenant_api.json("GET", f"/v1/jobs/{job['id']}")[2]
    assert done["state"] == "canceled" and done["artifacts"] == []
    events = [e.split(":")[0] for e in history(psql, job["id"])]
    assert events[-1] == "cancel" and "generated" not in events
    folder = os.path.join(env["CADENZA_ARTIFACT_DIR"], job["id"])
    leftovers = [f for _, _, files in os.walk(folder) for f in files]
    assert leftovers == []
    assert psql(f"SELECT count(*) FROM usage_ledger WHERE job_id = '{job['id']}'") == "1"


def test_cancel_someone_elses_or_unknown_job(tenant_api):
    assert tenant_api.json("POST", f"/v1/jobs/{uuid.uuid4()}/cancel")[0] == 404
    assert tenant_api.json("GET", f"/v1/jobs/{uuid.uuid4()}/cancel")[0] == 405


# ---- idempotency keys -----------------------------------------------------

def test_same_key_same_body_returns_the_first_response(tenant_api, psql):
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    body = {"prompt": "idempotent request", "duration_s": 1, "seed": 3}
    s1, h1, first = tenant_api.json("POST", "/v1/jobs", body, headers=key)
    s2, h2, again = tenant_api.json("POST", "/v1/jobs", body, headers=key)
    assert s1 == s2 == 202
    assert again == first and h2.get("Idempotent-Replayed") == "true"
    assert psql(f"SELECT count(*) FROM jobs WHERE tenant_id = '{tenant_api.tenant}'") == "1"


def test_same_key_different_body_is_a_conflict(tenant_api):
    key = {"Idempotency-Key": f"order-{uuid.uuid4()}"}
    assert tenant_api.json("POST", "/v1/jobs", {"prompt": "one"}, headers=key)[0] == 202
    status, headers, problem = tenant_api.json("POST", "/v1/jobs", {"prompt": "two"}, headers=key)
    assert status == 409 and headers["Content-Type"] == "application/problem+json"
    assert problem["type"].endswith("idempotency-key-reused")


def test_concurrent_requests_with_one_key_make_one_job(tenant_api, psql):
    key = {"Idempotency-Key": f"burst-{uuid.uuid4()}"}
    body = {"prompt": "ten at once", "duration_s": 1, "seed": 5}
    with concurrent.futures.ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(lambda _: tenant_api.json("POST", "/v1/jobs", body, headers=key),
                                range(10)))
    assert {a[0] for a in answers} == {202}
    assert len({a[2]["id"] for a in answers}) == 1
    assert psql(f"SELECT count(*) FROM jobs WHERE tenant_id = '{tenant_api.tenant}'") == "1"


def test_keys_are_per_tenant_and_validated(env, cli, tenant_api):
    from conftest import Api, new_key
    key = {"Idempotency-Key": f"shared-{uuid.uuid4()}"}
    other = Api(env["CADENZA_API_URL"], new_key(cli)[1])
    a = tenant_api.json("POST", "/v1/jobs", {"prompt": "a"}, headers=key)[2]
    b = other.json("POST", "/v1/jobs", {"prompt": "a"}, headers=key)[2]
    assert a["id"] != b["id"]
    status, _, problem = tenant_api.json("POST", "/v1/jobs", {"prompt": "a"},
                                         headers={"Idempotency-Key": "x" * 256})
    assert status == 422 and problem["field"] == "Idempotency-Key"


# ---- leases and shutdown ----------------------------------------------------

def test_lease_expiry_retries_a_job_whose_worker_went_silent(tenant_api, psql, env):
    job = tenant_api.submit(prompt="the worker freezes mid-render", duration_s=300, seed=21)
    wait_state(tenant_api, job["id"], {"generating"})
    pid = proc_pid(env, "worker-inference")
    os.kill(pid, signal.SIGSTOP)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if psql(f"SELECT attempt FROM jobs WHERE id = '{job['id']}'") == "2":
                break
            time.sleep(0.5)
        else:
            pytest.fail("the lease never expired")
    finally:
        os.kill(pid, signal.SIGCONT)
    done = tenant_api.wait(job["id"], timeout=240)
    assert done["state"] == "succeeded" and done["attempt"] == 2
    retry = psql(f"SELECT detail->'failure'->>'class' FROM job_events"
                 f" WHERE job_id = '{job['id']}' AND event = 'retry'")
    assert retry == "worker_lost"
    # Whatever the frozen attempt said after it woke up changed nothing.
    assert history(psql, job["id"])[-1] == "post_done:succeeded:2"


def test_sigterm_hands_a_long_job_back(tenant_api, psql, env):
    job = tenant_api.submit(prompt="the worker is told to stop", duration_s=300, seed=22)
    wait_state(tenant_api, job["id"], {"generating"})
    pid = proc_pid(env, "worker-inference")
    started = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while time.monotonic() - started < 30:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the worker did not exit within 30 s of SIGTERM")
    stack_up()  # a new worker takes over
    done = tenant_api.wait(job["id"], timeout=240)
    assert done["state"] == "succeeded"
    log = open(os.path.join(env["CADENZA_STATE_DIR"], "logs/worker-inference.log")).read()
    assert "job handed back" in log
