"""The model registry (docs/models/registry.md), black-box against the
running stack: GET /v1/models lists the seeded models with their limits; a
bare name is routed to a version and the job records both; the limits are
the version's; PUT refuses what breaks a rule, naming the field; promote
and rollback round trip, each change recorded in model_decisions;
cadenzactl models.

A second version of a name exists only inside one test (a composer@2 row
inserted in the test database, removed afterwards). The workers do not
serve it, so no job that would run it is ever stored: every submission
that could be routed to it comes from a tenant whose monthly quota is 0
minutes. Routing happens before the quota is asked, so such a request is
answered 422 when routing refuses it, 429 (quota-exceeded, nothing stored)
when routing accepts it, and, since composer@2's max_duration_s is 5 s, a
10 s request routed to composer@2 is a 422 that names composer@2: which
version a request went to is visible without a job."""
import hashlib
import os
import subprocess
import time
import uuid

import pytest

from conftest import ROOT, Api, new_key

SEEDED = {"composer": (True, 600), "neural": (True, 600), "http": (False, 600)}
CACHE_S = 1.5  # past the API's registry snapshot period (CADENZA_API_MODELS_CACHE_MS, 1 s)


@pytest.fixture
def ops(env, cli):
    _, key = new_key(cli, role="operator")
    api = Api(env["CADENZA_API_URL"], key)
    api.key_text = key
    return api


@pytest.fixture
def no_quota(env, cli):
    """A submitter whose tenant may generate nothing: a request that routing
    accepts is answered 429 and stores nothing."""
    tenant, key = new_key(cli)
    cli("quota", "set", "--tenant", tenant, "--minutes", "0")
    api = Api(env["CADENZA_API_URL"], key)
    api.tenant = tenant
    return api


def ctl(env, key, *args):
    e = dict(os.environ, **env, CADENZA_API_KEY=key)
    return subprocess.run([str(ROOT / "bin/cadenzactl"), *args], env=e, capture_output=True,
                          text=True)


def model(api, name, all=False):
    status, _, body = api.json("GET", f"/v1/models/{name}" + ("?all=true" if all else ""))
    assert status == 200, body
    return body


def outcome(api, **fields):
    """(status, problem field, detail) of a submission."""
    status, _, body = api.json("POST", "/v1/jobs", {"prompt": "registry test", **fields})
    return status, (body or {}).get("field"), (body or {}).get("detail", "")


def bucket(tenant, user, name):
    d = hashlib.sha256(f"{tenant}\0{user}\0{name}".encode()).digest()
    return int.from_bytes(d[:8], "big") % 100


def test_get_lists_the_seeded_models_with_their_limits(tenant_api, ops):
    status, _, body = tenant_api.json("GET", "/v1/models")
    assert status == 200 and body["object"] == "list", body
    got = {m["name"]: m for m in body["data"]}
    assert set(SEEDED) <= set(got)
    for name, (stems, max_s) in SEEDED.items():
        m = got[name]
        assert m["split"] == {f"{name}@1": 100}
        v1 = next(v for v in m["versions"] if v["version"] == "1")
        assert v1["id"] == f"{name}@1" and v1["status"] == "active" and v1["weight"] == 100
        assert v1["tier"] == "final" and v1["backend"] == name and v1["pool"] == "inference"
        assert v1["limits"] == {"max_duration_s": max_s, "stems": stems, "parameters": False}
        assert "price_per_compute_s" in v1 and "updated_by" not in v1
    # http@2: the same servers through the asynchronous contract, asked for
    # by name@version (no weight), the one version that takes parameters.
    v2 = next(v for v in got["http"]["versions"] if v["version"] == "2")
    assert v2["status"] == "active" and v2["weight"] == 0, v2
    assert v2["limits"] == {"max_duration_s": 600, "stems": False, "parameters": True}, v2
    assert model(tenant_api, "neural")["name"] == "neural"
    assert tenant_api.json("GET", "/v1/models/nosuch")[0] == 404
    assert tenant_api.json("GET", "/v1/models/Not_A_Name")[0] == 404
    status, _, body = tenant_api.json("GET", "/v1/models?all=true")
    assert status == 403 and body["type"].endswith(":forbidden"), body
    status, _, body = ops.json("GET", "/v1/models?all=yes")
    assert status == 422 and body["field"] == "all", body
    status, _, body = ops.json("GET", "/v1/models?all=true")
    assert status == 200 and all("updated_by" in v for m in body["data"] for v in m["versions"])


def test_a_bare_name_is_routed_and_the_job_records_both(tenant_api, psql):
    job = tenant_api.submit(prompt="routed registry piece", model="composer", user="ana",
                            duration_s=2, seed=17)
    assert job["model"] == "composer@1" and job["model_requested"] == "composer", job
    assert job["request"]["model"] == "composer" and job["request"]["user"] == "ana"
    pinned = tenant_api.submit(prompt="pinned registry piece", model="composer@1", duration_s=2,
                               seed=18)
    assert pinned["model"] == "composer@1" and pinned["model_requested"] is None
    done = tenant_api.wait(job["id"])
    assert done["state"] == "succeeded", done
    assert done["model"] == "composer@1" and done["model_requested"] == "composer"
    # The worker ran the resolved version, and its provenance names it.
    detail = psql(f"SELECT detail ->> 'model' FROM job_events WHERE job_id = '{job['id']}'"
                  " AND event = 'generated'")
    assert detail == "composer@1"
    # The same request again is the same track: the cache key is the version's.
    again = tenant_api.submit(prompt="routed registry piece", model="composer", user="bo",
                              duration_s=2, seed=17)
    assert again["cached_from"] == job["id"], again
    tenant_api.wait(pinned["id"])


def test_the_limits_are_the_versions(ops, no_quota):
    assert outcome(no_quota, model="http@1", stems=True)[:2] == (422, "stems")
    assert outcome(no_quota, model="http", duration_s=30)[0] == 429  # accepted, then over quota
    try:
        status, _, body = ops.json("PUT", "/v1/models/composer", {
            "versions": {"1": {"max_duration_s": 20}}, "reason": "limit test"})
        assert status == 200, body
        v1 = body["versions"][0]
        assert v1["limits"]["max_duration_s"] == 20 and v1["updated_by"].startswith("key:")
        status, field, detail = outcome(no_quota, model="composer", duration_s=21)
        assert (status, field) == (422, "duration_s") and "20" in detail and "composer@1" in detail
        assert outcome(no_quota, model="composer@1", duration_s=20)[0] == 429
        assert outcome(no_quota, prompt="a fifty second piece", duration_s=50)[:2] == \
            (422, "duration_s")  # the default model, composer@1, too
    finally:
        ops.json("PUT", "/v1/models/composer", {"versions": {"1": {"max_duration_s": 600}},
                                                "reason": "limit test done"})
    assert outcome(no_quota, model="composer", duration_s=21)[0] == 429


@pytest.mark.parametrize("body,ptype,field", [
    ({}, "invalid-field", None),
    ({"split": {"composer@1": 90}}, "invalid-field", "split"),
    ({"split": {"composer@1": 101}}, "invalid-field", "split.composer@1"),
    ({"split": {"composer@1": 99.5, "composer@2": 0.5}}, "invalid-field", "split.composer@1"),
    ({"split": {"neural@1": 100}}, "invalid-field", "split.neural@1"),
    ({"split": {"composer@9": 100}}, "invalid-field", "split.composer@9"),
    ({"split": []}, "invalid-field", "split"),
    ({"versions": {"1": {"status": "retired"}}}, "invalid-field", "versions.1.status"),
    ({"versions": {"1": {"status": "shadow"}}}, "invalid-field", "versions.1.status"),
    ({"versions": {"1": {"status": "asleep"}}}, "invalid-field", "versions.1.status"),
    ({"versions": {"1": {"pool": "post"}}}, "invalid-field", "versions.1.pool"),
    ({"versions": {"1": {"price_per_compute_s": 2}}}, "invalid-field",
     "versions.1.price_per_compute_s"),
    ({"versions": {"1": {"stems": False}}}, "invalid-field", "versions.1.stems"),
    ({"versions": {"1": {"weight": 50}}}, "invalid-field", "versions.1.weight"),
    ({"versions": {"1": {"max_duration_s": 601}}}, "invalid-field", "versions.1.max_duration_s"),
    ({"versions": {"1": {"max_duration_s": 0}}}, "invalid-field", "versions.1.max_duration_s"),
    ({"versions": {"1": {"description": 7}}}, "invalid-field", "versions.1.description"),
    ({"versions": {"1": {}}}, "invalid-field", "versions.1"),
    ({"versions": {"9": {"status": "active"}}}, "invalid-field", "versions.9"),
    ({"versions": {"V2": {"status": "active"}}}, "invalid-field", "versions.V2"),
    ({"versions": {"1": {"colour": "red"}}}, "unknown-field", "versions.1.colour"),
    ({"tier": "draft"}, "unknown-field", "tier"),
    ({"split": {"composer@1": 100}, "reason": 5}, "invalid-field", "reason"),
    ({"split": {"composer@1": 100}, "reason": "x" * 501}, "invalid-field", "reason"),
])
def test_put_refuses_what_breaks_a_rule_naming_the_field(ops, psql, body, ptype, field):
    before = psql("SELECT count(*) FROM model_decisions")
    status, _, problem = ops.json("PUT", "/v1/models/composer", body)
    assert status == 422 and problem["type"] == f"urn:cadenza:problem:{ptype}", problem
    assert problem.get("field") == field and problem["detail"], problem
    assert psql("SELECT count(*) FROM model_decisions") == before
    assert model(ops, "composer")["split"] == {"composer@1": 100}


def test_put_promote_and_rollback_need_an_operator_and_a_model(ops, tenant_api):
    for method, path, body in [("PUT", "/v1/models/composer", {"split": {"composer@1": 100}}),
                               ("POST", "/v1/models/composer/promote", {"version": "1"}),
                               ("POST", "/v1/models/composer/rollback", None)]:
        status, _, problem = tenant_api.json(method, path, body)
        assert status == 403, problem
    assert ops.json("PUT", "/v1/models/nosuch", {"split": {"nosuch@1": 100}})[0] == 404
    assert ops.json("POST", "/v1/models/nosuch/promote", {"version": "1"})[0] == 404
    assert ops.json("POST", "/v1/models/nosuch/rollback")[0] == 404
    status, _, problem = ops.json("POST", "/v1/models/composer/promote", {"version": "9"})
    assert status == 422 and problem["field"] == "version", problem
    status, _, problem = ops.json("POST", "/v1/models/composer/promote", {})
    assert status == 422 and problem["field"] == "version", problem
    status, _, problem = ops.json("POST", "/v1/models/composer/promote",
                                  {"version": "1", "when": "now"})
    assert status == 422 and problem["type"].endswith(":unknown-field"), problem


@pytest.fixture
def composer_two(psql):
    """composer@2, retired, 5 s at most: a version no worker serves."""
    start = psql("SELECT coalesce(max(id), 0) FROM model_decisions")
    psql("INSERT INTO models (name, version, backend, tier, status, weight, pool, max_duration_s,"
         " stems, description) VALUES ('composer', '2', 'composer', 'final', 'retired', 0,"
         " 'inference', 5, true, 'test_models.py only: no worker serves it')")
    time.sleep(CACHE_S)
    yield start
    psql("DELETE FROM models WHERE name = 'composer' AND version = '2'")
    psql("UPDATE models SET status = 'active', weight = 100, max_duration_s = 600"
         " WHERE name = 'composer' AND version = '1'")
    psql(f"DELETE FROM model_decisions WHERE name = 'composer' AND id > {start}")
    time.sleep(CACHE_S)  # no API process still routes to composer@2


def split(ops):
    return model(ops, "composer")["split"]


def test_a_second_version_retired_active_split_promoted_and_rolled_back(
        ops, no_quota, psql, composer_two):
    start = composer_two
    # Retired: it cannot be asked for, and it is not listed but to operators.
    status, field, detail = outcome(no_quota, model="composer@2", duration_s=3)
    assert (status, field) == (422, "model") and "retired" in detail and "composer@1" in detail
    assert [v["version"] for v in model(no_quota, "composer")["versions"]] == ["1"]
    assert [v["version"] for v in model(ops, "composer", all=True)["versions"]] == ["1", "2"]
    status, _, problem = ops.json("POST", "/v1/models/composer/promote", {"version": "2"})
    assert status == 422 and problem["field"] == "version" and "retired" in problem["detail"]

    # Active again: it may be pinned, and takes no traffic until a split gives it some.
    status, _, body = ops.json("PUT", "/v1/models/composer", {
        "versions": {"2": {"status": "active"}}, "reason": "bring back"})
    assert status == 200 and body["split"] == {"composer@1": 100}, body
    assert outcome(no_quota, model="composer@2", duration_s=3)[0] == 429  # accepted
    assert outcome(no_quota, model="composer@2", duration_s=10)[:2] == (422, "duration_s")
    assert outcome(no_quota, model="composer", duration_s=10)[0] == 429  # composer@1

    # 50/50: each user goes where the bucket of (tenant, user, name) says, every time.
    status, _, body = ops.json("PUT", "/v1/models/composer", {
        "split": {"composer@1": 50, "composer@2": 50}, "reason": "canary"})
    assert status == 200 and body["split"] == {"composer@1": 50, "composer@2": 50}, body
    seen = set()
    for i in range(24):
        user = f"listener-{i}"
        want = "composer@1" if bucket(no_quota.tenant, user, "composer") < 50 else "composer@2"
        for _ in range(2):
            status, field, detail = outcome(no_quota, model="composer", user=user, duration_s=10)
            got = "composer@2" if status == 422 and "composer@2" in detail else \
                "composer@1" if status == 429 else f"{status} {field} {detail}"
            assert got == want, (user, got)
        seen.add(want)
    assert seen == {"composer@1", "composer@2"}

    # Retiring a version that carries traffic is refused.
    status, _, problem = ops.json("PUT", "/v1/models/composer",
                                  {"versions": {"2": {"status": "retired"}}})
    assert status == 422 and problem["field"] == "versions.2.status", problem

    # Promote: all to composer@2 (10 s is now over the limit for everyone).
    status, _, body = ops.json("POST", "/v1/models/composer/promote",
                               {"version": "2", "reason": "ship it"})
    assert status == 200 and body["split"] == {"composer@2": 100}, body
    status, field, detail = outcome(no_quota, model="composer", user="ana", duration_s=10)
    assert (status, field) == (422, "duration_s") and "composer@2" in detail

    # Rollback: the split before the promote; twice is the same as once.
    for _ in range(2):
        status, _, body = ops.json("POST", "/v1/models/composer/rollback")
        assert status == 200 and body["split"] == {"composer@1": 50, "composer@2": 50}, body

    # Back to composer@1 alone and composer@2 retired, in one change.
    status, _, body = ops.json("PUT", "/v1/models/composer", {
        "split": {"composer@1": 100}, "versions": {"2": {"status": "retired"}},
        "reason": "canary over"})
    assert status == 200 and body["split"] == {"composer@1": 100}, body
    assert outcome(no_quota, model="composer@2", duration_s=3)[:2] == (422, "model")

    rows = psql(f"SELECT action || '|' || split_before::text || '|' || split_after::text"
                f" || '|' || reason || '|' || actor FROM model_decisions"
                f" WHERE name = 'composer' AND id > {start} ORDER BY id").splitlines()
    got = [r.split("|")[:4] for r in rows]
    assert got == [
        ["settings", '{"composer@1": 100}', '{"composer@1": 100}', "bring back"],
        ["split", '{"composer@1": 100}', '{"composer@1": 50, "composer@2": 50}', "canary"],
        ["promote", '{"composer@1": 50, "composer@2": 50}', '{"composer@2": 100}', "ship it"],
        ["rollback", '{"composer@2": 100}', '{"composer@1": 50, "composer@2": 50}',
         "rolled back through the API"],
        ["rollback", '{"composer@1": 50, "composer@2": 50}',
         '{"composer@1": 50, "composer@2": 50}', "rolled back through the API"],
        ["split", '{"composer@1": 50, "composer@2": 50}', '{"composer@1": 100}', "canary over"],
    ], rows
    assert all(r.split("|")[4].startswith("key:") and "operator" in r for r in rows)


def test_cadenzactl_models(env, ops, psql):
    out = ctl(env, ops.key_text, "models", "list")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:4] == ["MODEL", "VERSION", "STATUS", "WEIGHT"]
    assert any(l.split()[:4] == ["neural", "1", "active", "100"] for l in lines), lines
    out = ctl(env, ops.key_text, "models", "show", "http")
    assert out.returncode == 0 and '"name":"http"' in out.stdout.replace(" ", ""), out
    # A refused change: one line and exit 1; a malformed one: exit 2.
    out = ctl(env, ops.key_text, "models", "set", "composer", "--split", "composer@1=90")
    assert out.returncode == 1 and len(out.stderr.strip().splitlines()) == 1, out
    assert "split" in out.stderr and "100" in out.stderr
    out = ctl(env, ops.key_text, "models", "set", "composer", "--max-duration", "1=long")
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1, out
    out = ctl(env, ops.key_text, "models", "rollback", "nosuch")
    assert out.returncode == 1 and "no such model" in out.stderr, out
    # A change that changes nothing but is recorded, with its reason.
    out = ctl(env, ops.key_text, "models", "promote", "neural", "1", "--reason", "ctl test")
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[1].split()[:4] == ["neural", "1", "active", "100"]
    assert psql("SELECT action || '|' || reason FROM model_decisions WHERE name = 'neural'"
                " ORDER BY id DESC LIMIT 1") == "promote|ctl test"
    out = ctl(env, ops.key_text, "models", "set", "neural", "--max-duration", "1=600",
              "--reason", "ctl test")
    assert out.returncode == 0, out.stderr
