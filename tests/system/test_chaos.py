"""Chaos: kill and restart parts of the stack with a few hundred jobs in
flight, then check that nothing was lost, stuck, doubled or reordered.

Invariants checked after every scenario, for every job the API accepted:
- it reached exactly one terminal state, and nothing is stuck;
- the usage ledger has exactly one row for it;
- its history is a valid path through the state machine (checked here
  against an independent copy of the rules, not the C table);
- nothing a client can see was produced twice (one master per attempt).
"""
import concurrent.futures
import json
import os
import signal
import subprocess
import time
import urllib.error
import uuid

import pytest

from conftest import ROOT, Api, new_key

JOBS = 250
TERMINAL = {"succeeded", "failed", "canceled", "rejected"}
ORDER = ["queued", "dispatched", "generating", "generated", "postprocessing"]
# event -> (states it applies in, state it leads to); None: stays put
RULES = {
    "dispatched": ({"queued"}, "dispatched"),
    "started": (set(ORDER[:2]), "generating"),
    "generated": (set(ORDER[:3]), "generated"),
    "post_started": (set(ORDER[:4]), "postprocessing"),
    "post_done": (set(ORDER), "succeeded"),
    "needs_review": (set(ORDER), "in_review"),
    "failed": (set(ORDER), "failed"),
    "retry": (set(ORDER), "queued"),
    "approved": ({"in_review"}, "succeeded"),
    "rejected": ({"in_review"}, "rejected"),
    "cancel": (set(ORDER) | {"in_review"}, "canceled"),
    # Repeated requests: answered from the cache, or waiting for the
    # identical job in flight (handed on if it is canceled) and ending with it.
    "cache_hit": ({"queued"}, "succeeded"),
    "coalesced": ({"queued"}, "queued"),
    "promoted": ({"queued"}, "queued"),
    "leader_done": ({"queued"}, None),  # the state the job it waited for ended in
    "progress": (set(ORDER), None),  # reported where the job is; it does not move
}


def script(name, action):
    subprocess.run([str(ROOT / "deploy/local" / name), action], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stack_up():
    script("stack.sh", "up")


def kill9(env, name):
    pid = int(open(os.path.join(env["CADENZA_STATE_DIR"], "run", f"{name}.pid")).read())
    os.kill(pid, signal.SIGKILL)


def submit_all(api, n, during=None):
    """Submits n one-second jobs from 8 threads, retrying each with its
    idempotency key until the API accepts it; runs `during` once the first
    quarter is in. Returns the accepted job ids."""
    def one(i):
        key = {"Idempotency-Key": f"chaos-{uuid.uuid4()}"}
        body = {"prompt": f"chaos job {i}", "duration_s": 1, "seed": i}
        for _ in range(600):
            try:
                status, _, job = api.json("POST", "/v1/jobs", body, headers=key)
                if status == 202:
                    return job["id"]
                assert status == 503, job  # only "retry later" is acceptable
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"job {i} never accepted")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(one, i) for i in range(n)]
        if during:
            while sum(f.done() for f in futures) < n // 4:
                time.sleep(0.05)
            during()
        return [f.result() for f in futures]


def wait_all_terminal(psql, tenant, n, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            open_jobs = psql(f"SELECT count(*) FROM jobs WHERE tenant_id = '{tenant}'"
                             f" AND state NOT IN ('succeeded','failed','canceled','rejected')")
            if open_jobs == "0":
                return
        except subprocess.CalledProcessError:
            pass  # Postgres may be restarting
        time.sleep(1)
    states = psql(f"SELECT state || ' ' || count(*) FROM jobs WHERE tenant_id = '{tenant}'"
                  f" GROUP BY state")
    raise AssertionError(f"jobs stuck after {timeout} s: {states}")


def check_invariants(psql, tenant, accepted):
    rows = psql(f"SELECT json_agg(json_build_object('id', id, 'state', state, 'attempt', attempt))"
                f"  FROM jobs WHERE tenant_id = '{tenant}'")
    jobs = {j["id"]: j for j in json.loads(rows)}
    assert set(jobs) == set(accepted), "the jobs stored are not the jobs accepted"
    assert all(j["state"] in TERMINAL for j in jobs.values())

    ledger = psql(f"SELECT count(*), count(DISTINCT job_id) FROM usage_ledger u"
                  f"  JOIN jobs j ON j.id = u.job_id WHERE j.tenant_id = '{tenant}'")
    assert ledger == f"{len(jobs)}|{len(jobs)}", ledger

    masters = psql(f"SELECT count(*) FROM (SELECT a.job_id FROM artifacts a JOIN jobs j"
                   f"  ON j.id = a.job_id AND a.attempt = j.attempt"
                   f" WHERE j.tenant_id = '{tenant}' AND a.kind = 'master' AND a.format = 'flac'"
                   f" GROUP BY a.job_id HAVING count(*) > 1) d")
    assert masters == "0"

    events = json.loads(psql(
        f"SELECT json_agg(json_build_object('job', e.job_id, 'event', e.event,"
        f"       'state', e.state, 'attempt', e.attempt) ORDER BY e.id)"
        f"  FROM job_events e JOIN jobs j ON j.id = e.job_id WHERE j.tenant_id = '{tenant}'"))
    paths = {}
    for e in events:
        paths.setdefault(e["job"], []).append(e)
    for job_id, job in jobs.items():
        state, attempt = "queued", 1
        for e in paths.get(job_id, []):
            allowed, target = RULES[e["event"]]
            assert state in allowed, f"{job_id}: {e['event']} from {state}"
            assert e["attempt"] == attempt, f"{job_id}: {e['event']} for attempt {e['attempt']}"
            state = target or (e["state"] if e["event"] == "leader_done" else state)
            if e["event"] == "retry":
                attempt += 1
            assert e["state"] == state, f"{job_id}: recorded {e['state']}, expected {state}"
        assert state == job["state"] and attempt == job["attempt"], f"{job_id}: history ends elsewhere"
    return {s: sum(1 for j in jobs.values() if j["state"] == s) for s in TERMINAL}


@pytest.fixture
def chaos_api(env, cli):
    tenant, key = new_key(cli)
    api = Api(env["CADENZA_API_URL"], key)
    api.tenant = tenant
    yield api
    stack_up()  # whatever a scenario broke is running again for the next one


def run_scenario(api, psql, disrupt):
    accepted = submit_all(api, JOBS, during=disrupt)
    wait_all_terminal(psql, api.tenant, len(accepted))
    outcome = check_invariants(psql, api.tenant, accepted)
    assert outcome["succeeded"] == len(accepted), outcome


def test_kill9_inference_worker_mid_generation(chaos_api, psql, env):
    def disrupt():
        kill9(env, "worker-inference")
        time.sleep(2)
        stack_up()
    run_scenario(chaos_api, psql, disrupt)


def test_kill9_post_worker(chaos_api, psql, env):
    def disrupt():
        kill9(env, "worker-post")
        time.sleep(2)
        stack_up()
    run_scenario(chaos_api, psql, disrupt)


def test_kill9_scheduler_with_unpublished_rows(chaos_api, psql, env):
    def disrupt():
        kill9(env, "scheduler")
        time.sleep(3)  # submissions keep landing in the outbox meanwhile
        assert psql("SELECT count(*) > 0 FROM outbox WHERE published_at IS NULL") == "t"
        stack_up()
    run_scenario(chaos_api, psql, disrupt)


def test_restart_kafka_with_jobs_in_flight(chaos_api, psql):
    def disrupt():
        script("kafka.sh", "stop")
        time.sleep(3)
        script("kafka.sh", "start")
    run_scenario(chaos_api, psql, disrupt)


def test_restart_postgres_with_jobs_in_flight(chaos_api, psql):
    def disrupt():
        script("postgres.sh", "stop")
        time.sleep(3)
        script("postgres.sh", "start")
    run_scenario(chaos_api, psql, disrupt)


def test_the_api_heals_from_a_postgres_restart_without_failing_a_request(chaos_api, env, cli):
    """Each pooled connection (key lookups, submissions) was open when
    Postgres went away; once it is back, the first request on each must not
    be the one that finds out."""
    keys = [new_key(cli)[1] for _ in range(32)]  # never looked up: each needs the database
    script("postgres.sh", "stop")
    script("postgres.sh", "start")

    def one(i):
        api = Api(env["CADENZA_API_URL"], keys[i])
        status, _, job = api.json("POST", "/v1/jobs", {"prompt": f"after restart {i}",
                                                       "duration_s": 1, "seed": i})
        return status, job

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(one, range(32)))
    assert [s for s, _ in answers] == [202] * 32, [j for s, j in answers if s != 202]
    for i, (_, job) in enumerate(answers):
        assert Api(env["CADENZA_API_URL"], keys[i]).wait(job["id"])["state"] == "succeeded"


def test_redis_down_for_a_minute(chaos_api, psql):
    stopped = []

    def disrupt():
        script("redis.sh", "stop")
        stopped.append(time.monotonic())

    try:
        accepted = submit_all(chaos_api, JOBS, during=disrupt)
        # Jobs keep arriving (about ten a second) until Redis has been gone
        # for a full minute.
        while time.monotonic() - stopped[0] < 60:
            accepted += submit_all(chaos_api, 10)
            time.sleep(1)
        wait_all_terminal(psql, chaos_api.tenant, len(accepted))
        outcome = check_invariants(psql, chaos_api.tenant, accepted)
        assert outcome["succeeded"] == len(accepted), outcome
    finally:
        script("redis.sh", "start")
