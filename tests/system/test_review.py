"""The curators' review queue against the real stack: why jobs wait for
review, claims and their leases, the three decisions and what each does to
the job, its history, the ledger, the audit and live streams; who may do
what; and `cadenzactl review`."""
import concurrent.futures
import json
import os
import subprocess
import threading
import time
import uuid

import pytest

from conftest import ROOT, TERMINAL, Api, new_key

WAITING = TERMINAL | {"in_review"}


class Tenant:
    """A fresh tenant with a submitter, two curators, an admin and an operator."""

    def __init__(self, env, cli):
        self.name = f"t-review-{uuid.uuid4().hex[:8]}"
        url = env["CADENZA_API_URL"]
        self.keys = {}
        for role in ("submitter", "curator", "curator2", "admin", "operator"):
            self.keys[role] = cli("keys", "create", "--tenant", self.name, "--role",
                                  role.rstrip("2")).stdout.strip()
        self.submitter = Api(url, self.keys["submitter"])
        self.curator = Api(url, self.keys["curator"])
        self.curator2 = Api(url, self.keys["curator2"])
        self.admin = Api(url, self.keys["admin"])
        self.operator = Api(url, self.keys["operator"])

    def flagged(self, **fields):
        """A job that waits for review (review: always), in in_review."""
        fields = {"prompt": "review test: calm piano", "duration_s": 2, "review": "always",
                  **fields}
        job = self.submitter.wait(self.submitter.submit(**fields)["id"], states=WAITING)
        assert job["state"] == "in_review", job
        return job


@pytest.fixture
def tenant(env, cli):
    return Tenant(env, cli)


def claim(api, **body):
    return api.json("POST", "/v1/review/claim", body or None)


def problem_type(data):
    return json.loads(data)["type"].rsplit(":", 1)[1]


# ---- why a job waits for review -------------------------------------------------


def test_review_always_waits_with_its_reason(tenant, psql):
    job = tenant.flagged()
    assert job["review"]["decision"] is None
    assert [r["rule"] for r in job["review"]["reasons"]] == ["requested"]
    assert job["qa"]["verdict"] == "pass"  # nothing failed: the request asked for it
    events = psql("SELECT string_agg(event, ',' ORDER BY id) FROM job_events WHERE job_id = :'p1'",
                  job["id"])
    assert events.endswith("needs_review")
    s, _, q = tenant.curator.json("GET", "/v1/review/queue")
    assert s == 200 and q["counts"]["open"] == 1 and q["counts"]["waiting"] == 1
    assert q["data"][0]["job_id"] == job["id"] and q["data"][0]["prompt"].startswith("review test")
    assert q["oldest_age_s"] >= 0


def test_tenant_policy_sends_every_job_to_review(tenant, cli):
    assert cli("review", "policy", "--tenant", tenant.name, "always").returncode == 0
    time.sleep(1.2)  # keys (and the tenant's policy with them) are cached for up to 1 s
    job = tenant.flagged(review="auto", seed=4242)
    assert [r["rule"] for r in job["review"]["reasons"]] == ["tenant_policy"]
    # Not answered from the prompt cache either: a repeat is generated and reviewed.
    again = tenant.flagged(review="auto", seed=4242)
    assert again["cached_from"] is None and again["coalesced_into"] is None
    assert cli("review", "policy", "--tenant", tenant.name, "auto").returncode == 0
    job = tenant.submitter.wait(tenant.submitter.submit(prompt="policy off", duration_s=1)["id"])
    assert job["state"] == "succeeded" and job["review"] is None
    bad = cli("review", "policy", "--tenant", tenant.name, "sometimes", check=False)
    assert bad.returncode == 2 and bad.stdout == ""


def test_catalogue_match_is_flagged_and_its_track_playable(tenant, cli, tmp_path):
    """A master imported into the catalogue, then made again: flagged with
    the catalog rule, and the claim links the catalogue track's audio."""
    song = dict(prompt="review test: catalogue match, music box", duration_s=6, seed=9420)
    first = tenant.submitter.wait(tenant.submitter.submit(**song)["id"], states=WAITING)
    status, _, flac = tenant.submitter.request(
        "GET", f"/v1/jobs/{first['id']}/audio?variant=master&format=flac")
    assert status == 200
    folder = tmp_path / "catalog"
    folder.mkdir()
    (folder / "review-music-box.flac").write_bytes(flac)
    [track] = [json.loads(line) for line in
               cli("catalog", "import", str(folder)).stdout.splitlines()]
    if first["state"] == "in_review":  # its twin from an earlier run is in the catalogue
        tenant.curator.json("POST", f"/v1/review/{first['id']}/reject", {"reason": "twin"})

    job = tenant.submitter.wait(tenant.submitter.submit(**song, cache=False)["id"],
                                states=WAITING)
    assert job["state"] == "in_review"
    rules = [r["rule"] for r in job["review"]["reasons"]]
    assert "catalog" in rules
    s, _, task = claim(tenant.curator)
    assert s == 200 and task["job_id"] == job["id"]
    best = task["job"]["qa"]["catalog"]["best"]
    assert task["catalog_track"]["id"] == best["track_id"]
    url = task["catalog_track"]["audio_url"]
    assert url == f"/v1/catalog/{best['track_id']}/audio"
    if best["track_id"] == track["id"]:  # the bytes just imported
        s, h, data = tenant.curator.request("GET", url)
        assert s == 200 and data == flac and h["Content-Type"] == "audio/flac"
        s, h, part = tenant.curator.request("GET", url, headers={"Range": "bytes=0-99"})
        assert s == 206 and part == flac[:100]
    assert tenant.submitter.request("GET", url)[0] == 403
    assert tenant.curator.request("GET", "/v1/catalog/999999999/audio")[0] == 404
    assert tenant.curator.json("POST", f"/v1/review/{job['id']}/reject",
                               {"reason": "matches the catalogue"})[0] == 200


# ---- claims -------------------------------------------------------------------------


def test_claim_carries_everything_the_page_shows(tenant):
    job = tenant.flagged(stems=True, duration_s=3)
    s, _, task = claim(tenant.curator)
    assert s == 200
    assert task["object"] == "review_task" and task["job_id"] == job["id"]
    assert task["claimed_by"] == tenant.keys["curator"][:11] and task["claim_expires_at"]
    assert task["reasons"] == job["review"]["reasons"]
    qa = task["job"]["qa"]
    curve, wave = qa["loudness_curve"], qa["waveform"]
    assert curve["window_s"] == 0.4 and curve["hop_s"] == 0.4
    assert len(curve["lufs"]) == int(qa["duration_s"] / 0.4)
    assert any(v is not None and -40 < v < 0 for v in curve["lufs"])
    assert wave["points"] == 300 == len(wave["min"]) == len(wave["max"])
    assert all(-1 <= lo <= hi <= 1 for lo, hi in zip(wave["min"], wave["max"]))
    assert max(wave["max"]) > 0.1
    kinds = {a["kind"] for a in task["job"]["artifacts"]}
    assert {"master", "stem"} <= kinds
    prov = task["provenance"]
    assert prov["job_id"] == job["id"] and prov["seed"] == job["seed"]
    assert prov["prompt"] == job["request"]["prompt"] and prov["model"]["name"] == "composer"
    # Claiming again returns the same task (the lease renewed), not a second one.
    s, _, again = claim(tenant.curator)
    assert s == 200 and again["job_id"] == job["id"] and again["claims"] == task["claims"]
    assert again["claim_expires_at"] >= task["claim_expires_at"]
    # Another curator finds nothing to claim; the lease keeps it.
    assert claim(tenant.curator2)[0] == 204


def test_two_curators_claiming_one_task_get_one_task_and_one_204(tenant):
    job = tenant.flagged()
    for round_ in range(8):
        start = threading.Barrier(2)

        def grab(api):
            start.wait()
            return claim(api)

        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = list(pool.map(grab, [tenant.curator, tenant.curator2]))
        statuses = sorted(s for s, _, _ in results)
        assert statuses == [200, 204], (round_, statuses)
        winner = tenant.curator if results[0][0] == 200 else tenant.curator2
        assert [t for s, _, t in results if s == 200][0]["job_id"] == job["id"]
        # The holder gives it back for the next round.
        assert winner.request("POST", f"/v1/review/{job['id']}/release")[0] == 204


def test_expired_claim_returns_to_the_queue(tenant, psql):
    job = tenant.flagged()
    s, _, task = claim(tenant.curator, lease_s=1)
    assert s == 200 and task["job_id"] == job["id"]
    assert claim(tenant.curator2)[0] == 204
    s, _, q = tenant.curator.json("GET", "/v1/review/queue")
    assert q["counts"]["claimed"] == 1 and q["counts"]["waiting"] == 0
    time.sleep(1.5)
    s, _, q = tenant.curator.json("GET", "/v1/review/queue")
    assert q["counts"]["claimed"] == 0 and q["counts"]["waiting"] == 1
    s, _, taken = claim(tenant.curator2)
    assert s == 200 and taken["job_id"] == job["id"] and taken["claims"] == 2
    # The first curator's claim has lapsed and is someone else's now.
    s, _, data = tenant.curator.request("POST", f"/v1/review/{job['id']}/approve")
    assert s == 409 and problem_type(data) == "claimed-by-another"
    s, _, data = tenant.curator.request("POST", f"/v1/review/{job['id']}/release")
    assert s == 409 and problem_type(data) == "not-claimed"
    assert tenant.curator2.json("POST", f"/v1/review/{job['id']}/approve")[0] == 200
    audit = psql("SELECT string_agg(action || ':' || key_prefix, ',' ORDER BY id)"
                 "  FROM review_audit WHERE job_id = :'p1'", job["id"])
    c1, c2 = tenant.keys["curator"][:11], tenant.keys["curator2"][:11]
    assert audit == f"claim:{c1},claim:{c2},approve:{c2}"


@pytest.mark.parametrize("body,status,kind", [
    ({"lease_s": 0}, 422, "invalid-field"),
    ({"lease_s": 3601}, 422, "invalid-field"),
    ({"lease_s": 1.5}, 422, "invalid-field"),
    ({"lease": 5}, 422, "unknown-field"),
    ([1], 422, "invalid-body"),
])
def test_claim_refuses_bad_bodies(tenant, body, status, kind):
    s, _, data = tenant.curator.request("POST", "/v1/review/claim", body)
    assert s == status and problem_type(data) == kind


# ---- decisions ------------------------------------------------------------------------


def test_claim_and_approve_succeeds_the_job(tenant, psql, env):
    job = tenant.flagged(duration_s=3)
    s, _, task = claim(tenant.curator)
    assert s == 200
    # Live streams hear of the decision through Redis pub/sub.
    sub = subprocess.Popen(["redis-cli", "-u", env["CADENZA_REDIS_URL"], "SUBSCRIBE",
                            f"cz:job:{job['id']}"], stdout=subprocess.PIPE, text=True)
    try:
        assert sub.stdout.readline().strip() == "subscribe"
        for _ in range(2):
            sub.stdout.readline()
        s, _, d = tenant.curator.json("POST", f"/v1/review/{job['id']}/approve",
                                      {"reason": "clean"})
        assert s == 200
        published = [sub.stdout.readline().strip() for _ in range(3)]
        assert published[:2] == ["message", f"cz:job:{job['id']}"]
    finally:
        sub.kill()
        sub.wait()
    assert d["object"] == "review_decision" and d["decision"] == "approve"
    assert d["reason"] == "clean" and d["decided_by"] == tenant.keys["curator"][:11]
    assert d["regenerated_job"] is None
    assert d["job"]["state"] == "succeeded" and d["job"]["review"]["decision"] == "approve"
    done = tenant.submitter.json("GET", f"/v1/jobs/{job['id']}")[2]
    assert done["state"] == "succeeded" and done["progress"]["percent"] == 100
    assert done["review"]["notes"] == "clean"
    # One history row for the decision, with who decided; one ledger row, charged.
    row = psql("SELECT state || '|' || (detail -> 'review' ->> 'by') || '|' || (detail ->> 'worker')"
               "  FROM job_events WHERE job_id = :'p1' AND event = 'approved'", job["id"])
    prefix = tenant.keys["curator"][:11]
    assert row == f"succeeded|{prefix}|curator:{prefix}"
    ledger = psql("SELECT outcome || '|' || (audio_seconds > 2.9)::text FROM usage_ledger"
                  " WHERE job_id = :'p1'", job["id"])
    assert ledger == "succeeded|true"
    # The event stream replays it and ends there.
    s, _, body = tenant.submitter.request("GET", f"/v1/jobs/{job['id']}/events")
    assert s == 200 and b'"event":"approved","state":"succeeded"' in body
    # A second decision is refused; the queue is empty.
    s, _, data = tenant.curator2.request("POST", f"/v1/review/{job['id']}/reject",
                                         {"reason": "too late"})
    assert s == 409 and problem_type(data) == "review-decided"
    assert claim(tenant.curator)[0] == 204
    _, _, q = tenant.curator.json("GET", "/v1/review/queue")
    assert q["counts"]["open"] == 0 and q["counts"]["decided_24h"] == 1


def test_reject_needs_a_reason_and_rejects(tenant, psql):
    job = tenant.flagged()
    s, _, data = tenant.curator.request("POST", f"/v1/review/{job['id']}/reject")
    assert s == 422 and problem_type(data) == "missing-field"
    for bad in ({"reason": ""}, {"reason": 7}, {"reason": "bad\u0007bell"},
                {"reason": "x" * 5000}):
        s, _, data = tenant.curator.request("POST", f"/v1/review/{job['id']}/reject", bad)
        assert s == 422 and json.loads(data)["field"] == "reason", bad
    s, _, d = tenant.admin.json("POST", f"/v1/review/{job['id']}/reject",
                                {"reason": "a melody lifted from a known song"})
    assert s == 200 and d["job"]["state"] == "rejected"
    assert d["job"]["review"]["notes"] == "a melody lifted from a known song"
    assert d["job"]["finished_at"] and d["decided_by"] == tenant.keys["admin"][:11]
    assert psql("SELECT outcome || '|' || audio_seconds FROM usage_ledger WHERE job_id = :'p1'",
                job["id"]) == "rejected|0"
    assert psql("SELECT action || '|' || reason FROM review_audit"
                " WHERE job_id = :'p1' AND action = 'reject'", job["id"]) == \
        "reject|a melody lifted from a known song"


def test_regenerate_makes_a_new_job_linked_both_ways(tenant, psql):
    job = tenant.flagged(prompt="review test: regenerate me, banjo", metadata={"order": "r1"})
    s, _, d = tenant.curator.json("POST", f"/v1/review/{job['id']}/regenerate",
                                  {"reason": "the banjo is out of tune"})
    assert s == 200 and d["decision"] == "regenerate"
    new = d["regenerated_job"]
    assert d["job"]["state"] == "rejected"
    assert d["job"]["review"]["regenerated_job"] == new["id"]
    assert new["regenerated_from"] == job["id"] and new["state"] == "queued"
    assert new["seed"] != job["seed"] and new["request"]["seed"] == new["seed"]
    assert new["request"]["prompt"] == job["request"]["prompt"]
    assert new["metadata"] == {"order": "r1"}
    assert psql("SELECT regenerated_job FROM review_tasks WHERE job_id = :'p1'", job["id"]) == \
        new["id"]
    # The new job is made like any other; it asked for review, so it waits again.
    again = tenant.submitter.wait(new["id"], states=WAITING)
    assert again["state"] == "in_review" and again["regenerated_from"] == job["id"]
    s, _, task = claim(tenant.curator)
    assert s == 200 and task["job_id"] == new["id"]
    assert tenant.curator.json("POST", f"/v1/review/{new['id']}/approve")[0] == 200


def test_a_canceled_job_leaves_the_queue(tenant):
    job = tenant.flagged()
    assert tenant.submitter.request("POST", f"/v1/jobs/{job['id']}/cancel")[0] == 200
    _, _, q = tenant.curator.json("GET", "/v1/review/queue")
    assert q["counts"]["open"] == 0
    assert claim(tenant.curator)[0] == 204
    s, _, data = tenant.curator.request("POST", f"/v1/review/{job['id']}/approve")
    assert s == 409 and problem_type(data) == "job-not-in-review"


def test_decisions_on_unknown_or_foreign_jobs_are_404(tenant, env, cli):
    job = tenant.flagged()
    other = Api(env["CADENZA_API_URL"], new_key(cli, "curator")[1])
    for what in ("approve", "regenerate", "release"):
        assert other.request("POST", f"/v1/review/{job['id']}/{what}")[0] == 404
        assert tenant.curator.request("POST", f"/v1/review/{uuid.uuid4()}/{what}")[0] == 404
        assert tenant.curator.request("POST", f"/v1/review/not-a-job/{what}")[0] == 404
    assert claim(other)[0] == 204  # another tenant's queue is not theirs


# ---- roles -----------------------------------------------------------------------------


def test_a_curator_cannot_submit_cancel_or_operate(tenant):
    job = tenant.flagged()
    s, _, data = tenant.curator.request("POST", "/v1/jobs", {"prompt": "not mine to make"})
    assert s == 403 and problem_type(data) == "forbidden"
    assert tenant.curator.request("POST", f"/v1/jobs/{job['id']}/cancel")[0] == 403
    assert tenant.curator.request("GET", "/v1/cache")[0] == 403  # the operators' endpoint
    # Scaling pools is the operators'.
    assert tenant.curator.request("PUT", "/v1/pools/inference", {"desired": 3})[0] == 403
    assert tenant.curator.request("GET", "/v1/pools")[0] == 403


def test_a_submitter_or_operator_cannot_review(tenant):
    job = tenant.flagged()
    for api in (tenant.submitter, tenant.operator):
        for method, path in (("GET", "/v1/review/queue"), ("POST", "/v1/review/claim"),
                             ("POST", f"/v1/review/{job['id']}/approve"),
                             ("POST", f"/v1/review/{job['id']}/reject"),
                             ("POST", f"/v1/review/{job['id']}/regenerate"),
                             ("POST", f"/v1/review/{job['id']}/release"),
                             ("GET", "/v1/catalog/1/audio")):
            s, _, data = api.request(method, path, {"reason": "x"} if method == "POST" else None)
            assert s == 403 and problem_type(data) == "forbidden", (method, path)
    assert tenant.submitter.json("GET", f"/v1/jobs/{job['id']}")[2]["state"] == "in_review"


# ---- cadenzactl review ------------------------------------------------------------------


def test_cli_review_commands(tenant, env):
    def run(key, *args):
        e = dict(os.environ, **env, CADENZA_API_KEY=key)
        return subprocess.run([str(ROOT / "bin/cadenzactl"), *args], env=e, capture_output=True,
                              text=True)

    first = tenant.flagged()
    second = tenant.flagged()
    c = tenant.keys["curator"]
    out = run(c, "review", "list")
    assert out.returncode == 0
    queue = json.loads(out.stdout)
    assert [t["job_id"] for t in queue["data"]] == [first["id"], second["id"]]
    out = run(c, "review", "claim", "--lease", "60")
    assert out.returncode == 0 and json.loads(out.stdout)["job_id"] == first["id"]
    out = run(c, "review", "reject", first["id"])
    assert out.returncode == 2 and out.stderr.count("\n") == 1 and out.stdout == ""
    out = run(c, "review", "approve", first["id"], "--reason", "fine")
    assert out.returncode == 0 and json.loads(out.stdout)["job"]["state"] == "succeeded"
    out = run(c, "review", "approve", first["id"])
    assert out.returncode == 1 and out.stderr.startswith("cadenzactl: HTTP 409")
    assert out.stderr.count("\n") == 1
    out = run(c, "review", "regenerate", second["id"], "--reason", "again")
    assert out.returncode == 0
    new = json.loads(out.stdout)["regenerated_job"]["id"]
    tenant.submitter.wait(new, states=WAITING)
    out = run(c, "review", "claim")
    assert out.returncode == 0 and json.loads(out.stdout)["job_id"] == new
    out = run(c, "review", "release", new)
    assert out.returncode == 0
    out = run(c, "review", "reject", new, "--reason", "enough")
    assert out.returncode == 0 and json.loads(out.stdout)["job"]["state"] == "rejected"
    out = run(c, "review", "claim")
    assert out.returncode == 3 and out.stdout == "" and "nothing" in out.stderr
    out = run(tenant.keys["submitter"], "review", "list")
    assert out.returncode == 1 and "HTTP 403" in out.stderr and out.stderr.count("\n") == 1
    out = run(c, "review", "approve", "not-a-job")
    assert out.returncode == 2 and out.stderr.count("\n") == 1

