"""Per-key rate limits (token buckets in Redis), per-tenant monthly quotas
of generated audio, and what the limiter does when Redis is down: both
settings of CADENZA_RATE_LIMIT_REDIS_DOWN, with Redis really stopped."""
import json
import os
import subprocess
import time
import urllib.parse

import pytest

from conftest import ROOT, Api, new_key


def key_with(cli, role="submitter", **limits):
    tenant = f"t-{os.urandom(6).hex()}"
    args = ["keys", "create", "--tenant", tenant, "--role", role]
    for name, value in limits.items():
        args += [f"--{name.replace('_', '-')}", str(value)]
    return tenant, cli(*args).stdout.strip()


def problem(data):
    return json.loads(data)


def test_token_bucket_headers_and_429(env, cli):
    _, key = key_with(cli, rate_per_s=1, burst=3)
    api = Api(env["CADENZA_API_URL"], key)
    seen = []
    for _ in range(3):
        s, h, _ = api.request("GET", "/v1/jobs")
        assert s == 200
        assert h["RateLimit-Limit"] == "3"
        seen.append(int(h["RateLimit-Remaining"]))
        assert int(h["RateLimit-Reset"]) >= 0
    assert seen == sorted(seen, reverse=True) and seen[-1] <= 1
    # Drain what refilled meanwhile, then the bucket is empty.
    for _ in range(5):
        s, h, data = api.request("GET", "/v1/jobs")
        if s == 429:
            break
    assert s == 429, data
    body = problem(data)
    assert h["Content-Type"] == "application/problem+json"
    assert body["type"] == "urn:cadenza:problem:rate-limited" and body["status"] == 429
    assert body["title"] and "per second" in body["detail"]
    assert int(h["Retry-After"]) >= 1
    assert h["RateLimit-Remaining"] == "0" and h["RateLimit-Limit"] == "3"
    # A refused POST stores nothing either.
    s, _, _ = api.request("POST", "/v1/jobs", {"prompt": "x", "duration_s": 1})
    assert s == 429
    time.sleep(int(h["Retry-After"]) + 0.1)
    assert api.request("GET", "/v1/jobs")[0] == 200


def test_buckets_are_per_key(env, cli):
    _, a = key_with(cli, rate_per_s=0.5, burst=1)
    _, b = key_with(cli, rate_per_s=0.5, burst=1)
    api_a, api_b = Api(env["CADENZA_API_URL"], a), Api(env["CADENZA_API_URL"], b)
    assert api_a.request("GET", "/v1/jobs")[0] == 200
    assert api_a.request("GET", "/v1/jobs")[0] == 429
    assert api_b.request("GET", "/v1/jobs")[0] == 200


def test_monthly_quota_of_audio_minutes(env, cli, psql):
    tenant, key = key_with(cli)
    api = Api(env["CADENZA_API_URL"], key)
    s, _, usage = api.json("GET", "/v1/usage")
    assert s == 200 and usage["quota_minutes"] is None
    assert cli("quota", "set", "--tenant", tenant, "--minutes", "1").returncode == 0
    time.sleep(1.2)  # the key cache holds the quota for up to 1 s
    # review=always: the job waits for a curator, so it is still open when canceled.
    first = api.submit(prompt="quota: the first 45 s", duration_s=45, review="always")
    s, _, usage = api.json("GET", "/v1/usage")
    assert usage["quota_minutes"] == 1 and usage["audio_minutes_reserved"] == pytest.approx(0.75)
    assert usage["month"] == time.strftime("%Y-%m", time.gmtime())

    jobs = psql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1'", tenant)
    s, h, data = api.request("POST", "/v1/jobs", {"prompt": "one more", "duration_s": 30})
    assert s == 429, data
    body = problem(data)
    assert body["type"] == "urn:cadenza:problem:quota-exceeded"
    assert body["field"] == "duration_s" and "quota" in body["detail"]
    assert int(h["Retry-After"]) > 0
    assert psql("SELECT count(*) FROM jobs WHERE tenant_id = :'p1'", tenant) == jobs
    # Under an idempotency key the refusal keeps nothing under the key.
    s, _, _ = api.request("POST", "/v1/jobs", {"prompt": "one more", "duration_s": 30},
                          headers={"Idempotency-Key": "quota-1"})
    assert s == 429
    assert psql("SELECT count(*) FROM idempotency_keys WHERE tenant_id = :'p1'", tenant) == "0"
    # What fits still fits; a canceled job gives its reservation back.
    api.submit(prompt="fits", duration_s=15)
    assert api.request("POST", f"/v1/jobs/{first['id']}/cancel")[0] == 200
    s, _, job = api.json("POST", "/v1/jobs", {"prompt": "one more", "duration_s": 30},
                         headers={"Idempotency-Key": "quota-1"})
    assert s == 202, job
    assert cli("quota", "set", "--tenant", tenant, "--minutes", "none").returncode == 0
    for j in api.json("GET", "/v1/jobs")[2]["data"]:
        api.request("POST", f"/v1/jobs/{j['id']}/cancel")


def test_quota_of_zero_refuses_everything(env, cli):
    tenant, key = key_with(cli)
    cli("quota", "set", "--tenant", tenant, "--minutes", "0")
    api = Api(env["CADENZA_API_URL"], key)
    s, _, data = api.request("POST", "/v1/jobs", {"prompt": "x", "duration_s": 1})
    assert s == 429 and problem(data)["type"] == "urn:cadenza:problem:quota-exceeded"
    assert cli("quota", "set", "--tenant", "no-such-tenant-here", "--minutes", "5",
               check=False).returncode == 1


def redis(action):
    subprocess.run([str(ROOT / "deploy/local/redis.sh"), action], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def closed_api(env):
    """A second API process on this stack that fails closed when Redis is down."""
    port = urllib.parse.urlparse(env["CADENZA_API_URL"]).port + 2
    e = dict(os.environ, **env, CADENZA_API_LISTEN=f"127.0.0.1:{port}",
             CADENZA_RATE_LIMIT_REDIS_DOWN="closed", CADENZA_API_THREADS="2")
    log = open(os.path.join(env["CADENZA_STATE_DIR"], "logs", "api-fail-closed.log"), "ab")
    proc = subprocess.Popen([str(ROOT / "bin/cadenza-api")], env=e, cwd=ROOT, stdout=log,
                            stderr=log)
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            if Api(base).request("GET", "/healthz", key=None)[0] == 200:
                break
        except OSError:
            pass
        time.sleep(0.1)
    yield base
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


def test_redis_down_fail_open_and_fail_closed(env, cli, closed_api):
    _, key = key_with(cli)
    open_api = Api(env["CADENZA_API_URL"], key)
    closed = Api(closed_api, key)
    s, h, _ = closed.request("GET", "/v1/jobs")
    assert s == 200 and "RateLimit-Limit" in h
    redis("stop")
    try:
        # The stack's API fails open (the default): served, without figures.
        s, h, _ = open_api.request("GET", "/v1/jobs")
        assert s == 200 and "RateLimit-Limit" not in h
        job = open_api.submit(prompt="submitted while Redis is down", duration_s=1)
        # The fail-closed API refuses what it cannot count, and stores nothing.
        s, h, data = closed.request("POST", "/v1/jobs", {"prompt": "x", "duration_s": 1})
        assert s == 503, data
        body = problem(data)
        assert body["type"] == "urn:cadenza:problem:rate-limiter-unavailable"
        assert h["Content-Type"] == "application/problem+json" and int(h["Retry-After"]) >= 1
        assert closed.request("GET", "/v1/jobs")[0] == 503
    finally:
        redis("start")
    deadline = time.monotonic() + 10
    while closed.request("GET", "/v1/jobs")[0] != 200:
        assert time.monotonic() < deadline, "the fail-closed API did not recover"
        time.sleep(0.2)
    s, h, page = closed.json("GET", "/v1/jobs")
    assert [j["id"] for j in page["data"]] == [job["id"]] and "RateLimit-Limit" in h
    open_api.request("POST", f"/v1/jobs/{job['id']}/cancel")
