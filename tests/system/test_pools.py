"""Worker pools: the pools API and CLI, the scheduler's supervision of the
worker processes (scale up and down, restarts) and the autoscaler.

Each test leaves the pools as the migration seeded them (one replica each,
autoscale off), whatever it changed."""
import os
import signal
import subprocess
import time

import pytest

from conftest import ROOT, TERMINAL, Api, new_key

SEED = {"inference": {"min": 1, "max": 8, "desired": 1, "target_lag_per_replica": 4,
                      "cooldown_s": 300, "autoscale": False},
        "post": {"min": 1, "max": 8, "desired": 1, "target_lag_per_replica": 20,
                 "cooldown_s": 300, "autoscale": False}}


@pytest.fixture
def ops(env, cli):
    """An Api with an operator key; the pools are reset to the seed afterwards."""
    _, key = new_key(cli, role="operator")
    api = Api(env["CADENZA_API_URL"], key)
    api.key_text = key
    yield api
    for name, settings in SEED.items():
        status, _, body = api.json("PUT", f"/v1/pools/{name}",
                                   dict(settings, reason="test clean-up"))
        assert status == 200, body
    wait_running(api, "inference", 1)


def ctl(env, key, *args, check=True):
    e = dict(os.environ, **env, CADENZA_API_KEY=key)
    return subprocess.run([str(ROOT / "bin/cadenzactl"), *args], env=e, check=check,
                          capture_output=True, text=True)


def pool(api, name):
    status, _, body = api.json("GET", "/v1/pools")
    assert status == 200, body
    return next(p for p in body["data"] if p["name"] == name)


def worker_pids(env, name):
    """The live worker processes of pool @p name, from the supervisor's pid files."""
    run = os.path.join(env["CADENZA_STATE_DIR"], "run")
    pids = []
    for f in sorted(os.listdir(run)):
        if f == f"worker-{name}.pid" or (f.startswith(f"worker-{name}-") and f.endswith(".pid")):
            try:
                pid = int(open(os.path.join(run, f)).read())
                cmd = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
                state = [l for l in open(f"/proc/{pid}/status") if l.startswith("State:")][0]
            except (OSError, ValueError):
                continue
            if b"--pool" in cmd and name.encode() in cmd and " Z " not in state:
                pids.append(pid)
    return pids


def group_members(name):
    out = subprocess.run([str(ROOT / "deploy/local/kafka.sh"), "groups", "--describe", "--group",
                          f"cadenza-{name}", "--members"], capture_output=True, text=True)
    return [l for l in out.stdout.splitlines() if l.startswith(f"cadenza-{name} ")]


def wait_running(api, name, n, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        p = pool(api, name)
        if p["running"] == n:
            return p
        time.sleep(0.5)
    raise AssertionError(f"{name}: {p['running']} running, not {n}, after {timeout} s")


def test_pools_api_validates_and_records_every_change(ops, env, cli, psql):
    p = pool(ops, "inference")
    assert p["object"] == "pool" and p["min"] <= p["desired"] <= p["max"]
    status, _, body = ops.json("PUT", "/v1/pools/inference", {"desired": 99})
    assert status == 422 and body["field"] == "desired"
    status, _, body = ops.json("PUT", "/v1/pools/inference", {"min": 3, "max": 2})
    assert status == 422 and body["field"] == "min"
    status, _, body = ops.json("PUT", "/v1/pools/inference", {"speed": 2})
    assert status == 422 and body["type"].endswith(":unknown-field")
    status, _, body = ops.json("PUT", "/v1/pools/nosuch", {"desired": 1})
    assert status == 404
    status, _, body = ops.request("PUT", "/v1/pools/inference", raw=b"{")
    assert status == 400
    _, submitter = new_key(cli)
    status, _, body = ops.json("PUT", "/v1/pools/inference", {"desired": 2}, key=submitter)
    assert status == 403
    status, _, body = ops.json("GET", "/v1/pools", key=submitter)
    assert status == 403
    # New bounds alone move desired into them.
    status, _, body = ops.json("PUT", "/v1/pools/post", {"min": 2, "reason": "launch"})
    assert status == 200 and body["desired"] == 2 and body["min"] == 2
    row = psql("SELECT actor || '|' || action || '|' || from_desired || '|' || to_desired"
               " || '|' || reason FROM pool_decisions WHERE pool = 'post' ORDER BY id DESC LIMIT 1")
    actor, action, frm, to, reason = row.split("|")
    assert actor.startswith("key:") and "operator" in actor
    assert (action, frm, to, reason) == ("scale_up", "1", "2", "launch")
    # The CLI: one line of error and a non-zero exit for a refused change.
    out = ctl(env, ops.key_text, "pools", "scale", "inference", "9", check=False)
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1
    assert "desired" in out.stderr
    out = ctl(env, ops.key_text, "pools", "autoscale", "inference", "sideways", check=False)
    assert out.returncode == 2
    out = ctl(env, ops.key_text, "pools", "list")
    assert out.stdout.splitlines()[0].split()[:4] == ["POOL", "MIN", "MAX", "DESIRED"]
    assert any(l.startswith("inference ") for l in out.stdout.splitlines())
    ctl(env, ops.key_text, "pools", "autoscale", "inference", "on", "--reason", "test")
    assert pool(ops, "inference")["autoscale"] is True
    assert psql("SELECT reason FROM pool_decisions WHERE pool = 'inference'"
                " ORDER BY id DESC LIMIT 1") == "test"


def test_scale_inference_to_three_gives_three_consumers(ops, env):
    ctl(env, ops.key_text, "pools", "scale", "inference", "3")
    wait_running(ops, "inference", 3)
    assert len(worker_pids(env, "inference")) == 3
    deadline = time.monotonic() + 90
    while len(members := group_members("inference")) != 3:
        assert time.monotonic() < deadline, f"consumer group members: {members}"
        time.sleep(2)
    # Back to one: the other two leave the group.
    ctl(env, ops.key_text, "pools", "scale", "inference", "1")
    wait_running(ops, "inference", 1)
    deadline = time.monotonic() + 60
    while len(worker_pids(env, "inference")) != 1:
        assert time.monotonic() < deadline, worker_pids(env, "inference")
        time.sleep(0.5)


def test_scale_down_under_load_finishes_every_job(ops, env, tenant_api, psql):
    ctl(env, ops.key_text, "pools", "scale", "inference", "3")
    wait_running(ops, "inference", 3)
    deadline = time.monotonic() + 90
    while len(group_members("inference")) != 3:
        assert time.monotonic() < deadline
        time.sleep(2)
    # Five-minute pieces: several seconds of rendering each, so that jobs
    # are in hand on every worker when the pool shrinks.
    jobs = [tenant_api.submit(prompt=f"scale-down load {i}", duration_s=300, seed=100 + i)["id"]
            for i in range(10)]
    # Wait until two workers are generating (so at least one of those that
    # will be stopped has a job in hand: a worker takes one at a time), then
    # scale to one.
    deadline = time.monotonic() + 120
    ids = ",".join(f"'{j}'" for j in jobs)
    while int(psql(f"SELECT count(*) FROM jobs WHERE id IN ({ids})"
                   " AND state = 'generating'")) < 2:
        assert time.monotonic() < deadline, "never two jobs generating at once"
        time.sleep(0.2)
    ctl(env, ops.key_text, "pools", "scale", "inference", "1", "--reason", "night")
    ends = [tenant_api.wait(j, timeout=400) for j in jobs]
    assert [j["state"] for j in ends] == ["succeeded"] * len(jobs), \
        [(j["id"], j["state"], j.get("error")) for j in ends]
    wait_running(ops, "inference", 1)
    log = open(os.path.join(env["CADENZA_STATE_DIR"], "logs/scheduler.log")).read()
    assert "scaling inference down: SIGTERM" in log


def test_partitions_paused_by_a_busy_worker_are_read_again_after_a_rebalance(ops, env,
                                                                             tenant_api):
    """A worker pauses its partitions while a long job is in hand. If a
    rebalance takes some of them away meanwhile and a later one gives them
    back, they must be read again: every job on every partition finishes."""
    busy = tenant_api.submit(prompt="long piece to keep one worker busy", duration_s=600,
                             seed=4242)
    tenant_api.wait(busy["id"], states={"generating"})
    time.sleep(1.5)  # past the worker's pause threshold (1 s): its partitions are paused
    ctl(env, ops.key_text, "pools", "scale", "inference", "2")  # takes half of them away
    deadline = time.monotonic() + 90
    while len(group_members("inference")) != 2:
        assert time.monotonic() < deadline
        time.sleep(1)
    assert tenant_api.wait(busy["id"], timeout=300)["state"] == "succeeded"
    ctl(env, ops.key_text, "pools", "scale", "inference", "1")  # and gives them back
    wait_running(ops, "inference", 1)
    deadline = time.monotonic() + 90
    while len(group_members("inference")) != 1:
        assert time.monotonic() < deadline
        time.sleep(1)
    # Jobs are keyed by id, so 24 of them land on every partition.
    jobs = [tenant_api.submit(prompt=f"after the rebalances {i}", duration_s=1, seed=900 + i)["id"]
            for i in range(24)]
    ends = [tenant_api.wait(j, timeout=120) for j in jobs]
    assert [j["state"] for j in ends] == ["succeeded"] * len(jobs)


def test_a_worker_killed_with_sigkill_is_restarted(ops, env, psql):
    before = worker_pids(env, "inference")
    assert len(before) == 1
    os.kill(before[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        now = worker_pids(env, "inference")
        if now and now[0] != before[0]:
            break
        assert time.monotonic() < deadline, "the killed worker was not restarted"
        time.sleep(0.2)
    reason = psql("SELECT reason FROM pool_decisions WHERE pool = 'inference'"
                  " AND action = 'restart' ORDER BY id DESC LIMIT 1")
    assert f"pid {before[0]}" in reason and "signal 9" in reason
    # The new worker joins the consumer group.
    deadline = time.monotonic() + 90
    while len(group_members("inference")) != 1:
        assert time.monotonic() < deadline
        time.sleep(2)


def test_autoscaler_follows_a_burst_and_drops_back_after_the_cooldown(ops, env, tenant_api, psql):
    start = psql("SELECT coalesce(max(id), 0) FROM pool_decisions")
    status, _, body = ops.json("PUT", "/v1/pools/inference", {
        "min": 1, "max": 3, "desired": 1, "target_lag_per_replica": 2, "cooldown_s": 8,
        "autoscale": True, "reason": "autoscaler test"})
    assert status == 200, body
    jobs = [tenant_api.submit(prompt=f"burst {i}", duration_s=6, seed=300 + i)["id"]
            for i in range(16)]
    # 16 messages of lag at 2 per replica: as many as max allows.
    wait_running(ops, "inference", 3, timeout=60)
    up = psql(f"SELECT from_desired || '>' || to_desired || '|' || lag FROM pool_decisions"
              f" WHERE id > {start} AND actor = 'autoscaler' AND action = 'scale_up'"
              f" ORDER BY id LIMIT 1")
    assert up, "no scale-up decision recorded"
    frm_to, lag = up.split("|")
    assert frm_to.startswith("1>") and int(lag) > 2
    ends = [tenant_api.wait(j, timeout=400) for j in jobs]
    assert all(j["state"] == "succeeded" for j in ends)
    # Idle: lag 0, so back to min once the cooldown has passed.
    p = wait_running(ops, "inference", 1, timeout=90)
    assert p["desired"] == 1 and p["lag"] == 0
    down = psql(f"SELECT reason FROM pool_decisions WHERE id > {start}"
                f" AND actor = 'autoscaler' AND action = 'scale_down' ORDER BY id DESC LIMIT 1")
    assert "cooldown passed" in down
    # Not before the cooldown: the scale-down came at least 8 s after the last change.
    gap = psql(f"SELECT extract(epoch FROM d.at - (SELECT max(at) FROM pool_decisions"
               f" WHERE id > {start} AND id < d.id AND to_desired IS DISTINCT FROM from_desired))"
               f" FROM pool_decisions d WHERE id > {start} AND actor = 'autoscaler'"
               f" AND action = 'scale_down' ORDER BY id DESC LIMIT 1")
    assert float(gap) >= 8, gap
