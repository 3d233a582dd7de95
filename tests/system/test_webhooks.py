"""Webhooks against the real stack, with real HTTP receivers on loopback:
signatures checked by Python's hmac, retries with one webhook-id, 410,
a receiver slower than the 15 s timeout, Retry-After, the address guard at
submission and at connect time, rotation, redelivery, tenant isolation,
and a scheduler killed in the middle of a backlog.

The local stack retries on a short schedule (CADENZA_WEBHOOK_SCHEDULE:
0, 1 s, 2 s, 4 s, ...) and allow-lists loopback (CADENZA_WEBHOOK_ALLOW).
"""
import os
import signal
import subprocess
import time
import uuid

import pytest

from conftest import ROOT, Api, new_key
from webhook_helpers import Receiver, verify


@pytest.fixture
def receiver():
    made = []

    def make(respond=None):
        r = Receiver(respond) if respond else Receiver()
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def endpoint(api, url, **fields):
    status, _, ep = api.json("POST", "/v1/webhook-endpoints", dict(url=url, **fields))
    assert status == 201, ep
    assert ep["secret"].startswith("whsec_") and ep["enabled"] is True
    return ep


def canceled_job(api, **fields):
    """A job that ends at once (canceled while queued): an event without the
    workers' time."""
    job = api.submit(prompt="a job canceled at once", duration_s=600, **fields)
    status, _, body = api.json("POST", f"/v1/jobs/{job['id']}/cancel")
    assert status == 200, body
    return job


def deliveries(api, job_id):
    status, _, body = api.json("GET", f"/v1/jobs/{job_id}/deliveries")
    assert status == 200, body
    return body["data"]


def wait_deliveries(api, job_id, done, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        d = deliveries(api, job_id)
        if d and done(d):
            return d
        time.sleep(0.1)
    raise AssertionError(f"deliveries of {job_id} never got there: {deliveries(api, job_id)}")


# ---- signatures and payloads --------------------------------------------------

def test_a_finished_job_is_delivered_signed_with_the_job_as_the_api_shows_it(
        tenant_api, receiver):
    rx = receiver()
    ep = endpoint(tenant_api, rx.url, description="ours")
    job = tenant_api.submit(prompt="short piano piece", duration_s=1, seed=4)
    done = tenant_api.wait(job["id"])
    assert done["state"] == "succeeded"
    (req,) = rx.wait(lambda r: r.json["data"]["id"] == job["id"])
    assert req.headers["content-type"] == "application/json"
    assert verify(ep["secret"], req.headers, req.body)
    assert not verify("whsec_" + "A" * 43 + "=", req.headers, req.body)
    assert abs(int(req.headers["webhook-timestamp"]) - time.time()) < 60
    assert req.json["type"] == "job.succeeded" and req.json["sequence"] == 1
    # The payload is the job exactly as GET /v1/jobs/{id} returns it.
    assert req.json["data"] == tenant_api.json("GET", f"/v1/jobs/{job['id']}")[2]
    # The delivery log names the same webhook-id, with one successful attempt.
    (d,) = wait_deliveries(tenant_api, job["id"], lambda d: d[0]["state"] == "succeeded")
    assert d["id"] == req.id and d["endpoint_id"] == ep["id"] and d["event"] == "job.succeeded"
    assert [a["status"] for a in d["attempts"]] == [200]
    assert d["attempts"][0]["response"] == "thanks" and d["attempts"][0]["latency_ms"] >= 0
    # By default an endpoint is not told about starts and progress.
    assert {r.json["type"] for r in rx.got()} == {"job.succeeded"}


def test_a_jobs_own_url_is_signed_with_the_tenant_secret_and_filtered(tenant_api, receiver):
    rx = receiver()
    job = tenant_api.submit(prompt="short drum loop", duration_s=1,
                            webhook={"url": rx.url, "events": ["job.started", "job.succeeded"]})
    tenant_api.wait(job["id"])
    got = rx.wait(count=2)
    status, _, secret = tenant_api.json("GET", "/v1/webhook-secret")
    assert status == 200 and secret["secret"].startswith("whsec_")
    assert all(verify(secret["secret"], r.headers, r.body) for r in got)
    assert [r.json["type"] for r in got] == ["job.started", "job.succeeded"]
    assert [r.json["sequence"] for r in got] == [1, 2]
    assert got[0].json["data"]["state"] == "generating"
    assert got[1].json["data"]["state"] == "succeeded"
    assert len({r.id for r in got}) == 2
    # The secret stays the tenant's: asking again gives the same one.
    assert tenant_api.json("GET", "/v1/webhook-secret")[2]["secret"] == secret["secret"]


def test_a_canceled_job_is_announced(tenant_api, receiver):
    rx = receiver()
    ep = endpoint(tenant_api, rx.url)
    job = canceled_job(tenant_api)
    (req,) = rx.wait(lambda r: r.json["data"]["id"] == job["id"])
    assert req.json["type"] == "job.canceled" and req.json["data"]["state"] == "canceled"
    assert verify(ep["secret"], req.headers, req.body)


# ---- retries --------------------------------------------------------------------

def test_failing_twice_then_succeeding_takes_three_attempts_with_one_webhook_id(
        tenant_api, receiver):
    rx = receiver(lambda n, r: (500, {}, b"not yet", 0) if n <= 2 else (200, {}, b"ok", 0))
    ep = endpoint(tenant_api, rx.url)
    job = canceled_job(tenant_api)
    got = rx.wait(count=3)
    assert len({r.id for r in got}) == 1
    assert all(verify(ep["secret"], r.headers, r.body) for r in got)
    assert got[0].body == got[1].body == got[2].body
    # The schedule's first retries: about 1 s, then about 2 s (+-20%).
    assert 0.7 < got[1].at - got[0].at < 2.5
    assert 1.5 < got[2].at - got[1].at < 3.5
    (d,) = wait_deliveries(tenant_api, job["id"], lambda d: d[0]["state"] == "succeeded")
    assert d["id"] == got[0].id
    assert [(a["attempt"], a["status"]) for a in d["attempts"]] == [(1, 500), (2, 500), (3, 200)]
    assert d["attempts"][0]["error"] == "HTTP 500" and d["attempts"][0]["response"] == "not yet"
    assert d["attempts"][0]["next_attempt_at"] is not None
    time.sleep(1.5)
    assert len(rx.got()) == 3  # nothing after the success


def test_retry_after_is_honoured(tenant_api, receiver):
    rx = receiver(lambda n, r: (503, {"Retry-After": "3"}, b"busy", 0) if n == 1
                  else (204, {}, b"", 0))
    endpoint(tenant_api, rx.url)
    canceled_job(tenant_api)
    first, second = rx.wait(count=2, timeout=30)
    assert first.id == second.id
    assert second.at - first.at >= 2.9  # the schedule alone would say about 1 s


def test_a_receiver_slower_than_15_s_is_timed_out_and_retried(tenant_api, receiver):
    rx = receiver(lambda n, r: (200, {}, b"too late", 20) if n == 1 else (200, {}, b"ok", 0))
    endpoint(tenant_api, rx.url)
    job = canceled_job(tenant_api)
    first, second = rx.wait(count=2, timeout=40)
    assert first.id == second.id
    assert 15.5 < second.at - first.at < 19  # 15 s timeout, then about 1 s
    (d,) = wait_deliveries(tenant_api, job["id"], lambda d: d[0]["state"] == "succeeded")
    a1, a2 = d["attempts"]
    assert a1["status"] is None and "timed out" in a1["error"].lower()
    assert 14500 <= a1["latency_ms"] <= 16500
    assert a2["status"] == 200


def test_410_disables_the_endpoint(tenant_api, receiver, psql):
    rx = receiver(lambda n, r: (410, {}, b"gone", 0))
    ep = endpoint(tenant_api, rx.url)
    job = canceled_job(tenant_api)
    rx.wait()
    (d,) = wait_deliveries(tenant_api, job["id"], lambda d: d[0]["state"] == "failed")
    assert [a["status"] for a in d["attempts"]] == [410]
    status, _, now = tenant_api.json("GET", f"/v1/webhook-endpoints/{ep['id']}")
    assert status == 200 and now["enabled"] is False and "410" in now["disabled_reason"]
    # A disabled endpoint gets no more deliveries...
    later = canceled_job(tenant_api)
    time.sleep(1.5)
    assert deliveries(tenant_api, later["id"]) == [] and len(rx.got()) == 1
    # ...and cannot be redelivered to until it is enabled again.
    status, _, problem = tenant_api.json("POST", f"/v1/deliveries/{d['id']}/redeliver")
    assert status == 409 and problem["type"].endswith("endpoint-disabled")
    status, _, back = tenant_api.json("POST", f"/v1/webhook-endpoints/{ep['id']}/enable")
    assert status == 200 and back["enabled"] is True and back["disabled_reason"] is None
    rx.respond = lambda n, r: (200, {}, b"", 0)
    assert tenant_api.json("POST", f"/v1/deliveries/{d['id']}/redeliver")[0] == 202
    again = rx.wait(count=2)
    assert again[1].id == d["id"]


def test_redelivery_sends_the_same_message_again(tenant_api, receiver):
    rx = receiver()
    ep = endpoint(tenant_api, rx.url)
    job = canceled_job(tenant_api)
    (first,) = rx.wait()
    (d,) = wait_deliveries(tenant_api, job["id"], lambda d: d[0]["state"] == "succeeded")
    status, _, queued = tenant_api.json("POST", f"/v1/deliveries/{d['id']}/redeliver")
    assert status == 202 and queued["state"] == "pending" and queued["id"] == d["id"]
    second = rx.wait(count=2)[1]
    assert second.id == first.id and second.body == first.body
    assert verify(ep["secret"], second.headers, second.body)
    (d,) = wait_deliveries(tenant_api, job["id"],
                           lambda d: d[0]["state"] == "succeeded" and len(d[0]["attempts"]) == 2)
    assert [a["attempt"] for a in d["attempts"]] == [1, 2]


def test_rotation_signs_with_both_secrets_for_a_while(tenant_api, receiver):
    rx = receiver()
    ep = endpoint(tenant_api, rx.url)
    status, _, rotated = tenant_api.json("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate")
    assert status == 200 and rotated["secret"] != ep["secret"]
    assert rotated["previous_secret_expires_at"] is not None
    canceled_job(tenant_api)
    (req,) = rx.wait()
    sigs = req.headers["webhook-signature"].split()
    assert len(sigs) == 2
    assert verify(ep["secret"], req.headers, req.body)
    assert verify(rotated["secret"], req.headers, req.body)
    old_only = dict(req.headers, **{"webhook-signature": sigs[1]})
    new_only = dict(req.headers, **{"webhook-signature": sigs[0]})
    assert verify(ep["secret"], old_only, req.body) and verify(rotated["secret"], new_only,
                                                               req.body)


def test_the_tenant_secret_rotates_too(tenant_api, receiver):
    rx = receiver()
    old = tenant_api.json("GET", "/v1/webhook-secret")[2]["secret"]
    status, _, new = tenant_api.json("POST", "/v1/webhook-secret/rotate")
    assert status == 200 and new["secret"] != old and new["previous_secret_expires_at"]
    assert tenant_api.json("GET", "/v1/webhook-secret")[2]["secret"] == new["secret"]
    canceled_job(tenant_api, webhook={"url": rx.url})
    (req,) = rx.wait()
    assert len(req.headers["webhook-signature"].split()) == 2
    assert verify(old, req.headers, req.body) and verify(new["secret"], req.headers, req.body)


# ---- the address guard ------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://10.0.0.1/hook",
    "http://192.168.1.20:8080/hook",
    "http://169.254.169.254/latest/meta-data/",
    "http://[::ffff:169.254.169.254]/",
    "http://[fd00::1]/hook",
    "http://[fe80::1]/hook",
    "http://0.0.0.0:8080/hook",
    "http://user:secret@127.0.0.1/hook",
])
def test_private_addresses_are_refused_at_submission(tenant_api, url):
    status, _, problem = tenant_api.json("POST", "/v1/jobs",
                                         {"prompt": "x", "webhook": {"url": url}})
    assert status == 422, problem
    assert problem["field"] == "webhook.url"
    status, _, problem = tenant_api.json("POST", "/v1/webhook-endpoints", {"url": url})
    assert status == 422 and problem["field"] == "url", problem


def test_allow_listed_loopback_is_accepted(tenant_api, receiver):
    # The local stack allow-lists 127.0.0.0/8 and ::1 (production: nothing).
    rx = receiver()
    for host in ("127.0.0.1", "localhost", "[::ffff:127.0.0.1]"):
        canceled_job(tenant_api, webhook={"url": f"http://{host}:{rx.port}/hook"})
    assert len(rx.wait(count=3)) == 3
    canceled_job(tenant_api, webhook={"url": "http://[::1]:9/hook"})  # accepted, nobody there
    status, _, problem = tenant_api.json("POST", "/v1/jobs",
                                         {"prompt": "x", "webhook": {"url": "http://10.0.0.1/"}})
    assert "private" in problem["detail"]


def test_the_address_actually_connected_to_is_checked(tenant_api, receiver, psql):
    """A name that passed at registration and resolves elsewhere later (DNS
    rebinding): the dispatcher judges the address it connects to. Linux
    connects 0.0.0.0 to the host itself, so without the connect-time check
    this receiver would get the request."""
    rx = receiver()
    ep = endpoint(tenant_api, rx.url)
    psql(f"UPDATE webhook_endpoints SET url = 'http://0.0.0.0:{rx.port}/hook'"
         f" WHERE id = '{ep['id']}'")
    job = canceled_job(tenant_api)
    d = wait_deliveries(tenant_api, job["id"], lambda d: d[0]["attempts"])[0]
    assert d["attempts"][0]["status"] is None
    assert d["attempts"][0]["error"] == ("refused by the address guard: "
                                         "0.0.0.0 is an unspecified address")
    time.sleep(1.5)
    assert rx.got() == []


# ---- the API: validation, roles, tenants -------------------------------------------

def test_endpoint_requests_are_validated(tenant_api, receiver):
    rx = receiver()
    cases = [
        ({"url": rx.url, "colour": "red"}, 422, "unknown-field", "colour"),
        ({"events": ["job.succeeded"]}, 422, "missing-field", "url"),
        ({"url": rx.url, "events": ["job.exploded"]}, 422, "invalid-field", "events"),
        ({"url": rx.url, "events": []}, 422, "invalid-field", "events"),
        ({"url": "ftp://127.0.0.1/x"}, 422, "invalid-field", "url"),
        ({"url": rx.url, "description": 7}, 422, "invalid-field", "description"),
    ]
    for body, status, kind, field in cases:
        got, headers, problem = tenant_api.json("POST", "/v1/webhook-endpoints", body)
        assert (got, problem["field"]) == (status, field), problem
        assert problem["type"].endswith(kind)
        assert headers["Content-Type"] == "application/problem+json"
    assert tenant_api.request("POST", "/v1/webhook-endpoints", raw=b"{nope")[0] == 400
    assert tenant_api.request("POST", "/v1/webhook-endpoints", raw=b"{}",
                              headers={"Content-Type": "text/plain"})[0] == 415
    assert tenant_api.request("DELETE", "/v1/webhook-endpoints")[0] == 405
    ep = endpoint(tenant_api, rx.url, events=["job.progress", "job.succeeded", "job.succeeded"])
    assert ep["events"] == ["job.succeeded", "job.progress"]
    status, _, listed = tenant_api.json("GET", "/v1/webhook-endpoints")
    assert status == 200 and [e["id"] for e in listed["data"]] == [ep["id"]]
    assert "secret" not in listed["data"][0]
    status, _, off = tenant_api.json("POST", f"/v1/webhook-endpoints/{ep['id']}/disable")
    assert status == 200 and off["enabled"] is False


def test_a_tenant_has_at_most_16_enabled_endpoints(tenant_api, receiver):
    rx = receiver()
    made = [endpoint(tenant_api, rx.url)["id"] for _ in range(16)]
    status, _, problem = tenant_api.json("POST", "/v1/webhook-endpoints", {"url": rx.url})
    assert status == 409 and problem["type"].endswith("endpoint-limit")
    tenant_api.json("POST", f"/v1/webhook-endpoints/{made[0]}/disable")
    endpoint(tenant_api, rx.url)


def test_another_tenant_sees_nothing(env, cli, tenant_api, receiver):
    rx = receiver()
    ep = endpoint(tenant_api, rx.url)
    job = canceled_job(tenant_api)
    rx.wait()
    (d,) = wait_deliveries(tenant_api, job["id"], lambda d: d[0]["state"] == "succeeded")
    other = Api(env["CADENZA_API_URL"], new_key(cli)[1])
    assert other.json("GET", f"/v1/webhook-endpoints/{ep['id']}")[0] == 404
    assert other.json("POST", f"/v1/webhook-endpoints/{ep['id']}/rotate")[0] == 404
    assert other.json("POST", f"/v1/webhook-endpoints/{ep['id']}/disable")[0] == 404
    assert other.json("GET", f"/v1/jobs/{job['id']}/deliveries")[0] == 404
    assert other.json("POST", f"/v1/deliveries/{d['id']}/redeliver")[0] == 404
    assert other.json("GET", "/v1/webhook-endpoints")[2]["data"] == []
    assert other.json("GET", "/v1/webhook-secret")[2]["secret"] != \
        tenant_api.json("GET", "/v1/webhook-secret")[2]["secret"]
    assert tenant_api.json("GET", f"/v1/deliveries/{uuid.uuid4()}/redeliver")[0] == 405
    assert tenant_api.json("POST", f"/v1/deliveries/{uuid.uuid4()}/redeliver")[0] == 404
    curator = Api(env["CADENZA_API_URL"], new_key(cli, role="curator")[1])
    assert curator.json("POST", "/v1/webhook-endpoints", {"url": rx.url})[0] == 403
    assert curator.json("GET", "/v1/webhook-secret")[0] == 403
    assert Api(env["CADENZA_API_URL"]).json("GET", "/v1/webhook-endpoints")[0] == 401


# ---- crash safety -----------------------------------------------------------------------

def proc_pid(env, name):
    return int(open(f"{env['CADENZA_STATE_DIR']}/run/{name}.pid").read())


def test_a_scheduler_killed_mid_backlog_loses_no_delivery(env, tenant_api, receiver, psql):
    # A slow receiver keeps a backlog: 16 in flight at a time, 0.5 s each.
    rx = receiver(lambda n, r: (200, {}, b"ok", 0.5))
    ep = endpoint(tenant_api, rx.url)
    jobs = [canceled_job(tenant_api)["id"] for _ in range(60)]
    rx.wait(count=20, timeout=60)
    os.kill(proc_pid(env, "scheduler"), signal.SIGKILL)
    at_kill = rx.got()
    assert len({r.id for r in at_kill}) < 50  # mid-backlog, with 16 in flight
    # Events keep happening while no dispatcher runs.
    jobs += [canceled_job(tenant_api)["id"] for _ in range(10)]
    subprocess.run([str(ROOT / "deploy/local/stack.sh"), "up"], check=True,
                   stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        pending = psql(f"SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = '{ep['id']}'"
                       "   AND state <> 'succeeded'")
        if pending == "0":
            break
        time.sleep(0.2)
    assert pending == "0"
    delivered = {r.json["data"]["id"] for r in rx.got()}
    assert delivered == set(jobs)
    ids = psql(f"SELECT string_agg(id::text, ' ') FROM webhook_deliveries"
               f" WHERE endpoint_id = '{ep['id']}'").split()
    assert len(ids) == len(jobs) and {r.id for r in rx.got()} == set(ids)
    # What was cut off in flight came again, under the same webhook-id.
    assert len(rx.got()) > len(ids)
    assert all(r.json["type"] == "job.canceled" for r in rx.got())
