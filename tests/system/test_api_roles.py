"""Roles on every endpoint, and the key commands of cadenzactl.

The matrix below is the contract of api/server.c's route table: each role
against each endpoint, allowed (any status but 401/403) or 403."""
import json
import uuid

import pytest

from conftest import Api, new_key

ROLES = ["submitter", "curator", "operator", "admin"]
# (method, path, roles that may call it); {job} is a job of the key's tenant,
# {other} a job id no tenant has (so a decision allowed changes nothing).
ENDPOINTS = [
    ("POST", "/v1/jobs", {"submitter", "admin"}),
    ("GET", "/v1/jobs", {"submitter", "curator", "admin"}),
    ("GET", "/v1/jobs/{job}", {"submitter", "curator", "admin"}),
    ("GET", "/v1/jobs/{job}/audio", {"submitter", "curator", "admin"}),
    ("POST", "/v1/jobs/{job}/cancel", {"submitter", "admin"}),
    ("GET", "/v1/usage", {"submitter", "admin"}),
    ("GET", "/v1/review/queue", {"curator", "admin"}),
    ("POST", "/v1/review/claim", {"curator", "admin"}),
    ("POST", "/v1/review/{other}/approve", {"curator", "admin"}),
    ("POST", "/v1/review/{other}/reject", {"curator", "admin"}),
    ("POST", "/v1/review/{other}/regenerate", {"curator", "admin"}),
    ("POST", "/v1/review/{other}/release", {"curator", "admin"}),
    ("GET", "/v1/catalog/1/audio", {"curator", "admin"}),
    ("POST", "/v1/playlists", {"submitter", "admin"}),
    ("GET", "/v1/playlists/{other}", {"submitter", "curator", "admin"}),
    ("POST", "/v1/users/listener-1/signals", {"submitter", "admin"}),
    ("GET", "/v1/models", {"submitter", "curator", "operator", "admin"}),
    ("GET", "/v1/models/neural", {"submitter", "curator", "operator", "admin"}),
    # A model no tenant has: an allowed change finds nothing to change.
    ("PUT", "/v1/models/nosuch", {"operator", "admin"}),
    ("POST", "/v1/models/nosuch/promote", {"operator", "admin"}),
    ("POST", "/v1/models/nosuch/rollback", {"operator", "admin"}),
]


@pytest.fixture(scope="module")
def tenant_keys(env, cli):
    """One tenant with a key of every role, and a queued job of its own."""
    tenant = f"t-roles-{uuid.uuid4().hex[:8]}"
    keys = {r: cli("keys", "create", "--tenant", tenant, "--role", r).stdout.strip()
            for r in ROLES}
    submitter = Api(env["CADENZA_API_URL"], keys["submitter"])
    job = submitter.submit(prompt="roles", duration_s=1, review="always")
    yield keys, job["id"]
    submitter.request("POST", f"/v1/jobs/{job['id']}/cancel")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("method,path,allowed", ENDPOINTS, ids=[f"{m} {p}" for m, p, _ in ENDPOINTS])
def test_role_matrix(env, tenant_keys, role, method, path, allowed):
    keys, job = tenant_keys
    api = Api(env["CADENZA_API_URL"], keys[role])
    body = {"prompt": "roles", "duration_s": 1} if method == "POST" and path == "/v1/jobs" else None
    path = path.replace("{job}", job).replace("{other}", str(uuid.uuid4()))
    s, h, data = api.request(method, path, body)
    if role in allowed:
        assert s not in (401, 403), data
    else:
        assert s == 403, data
        problem = json.loads(data)
        assert problem["type"] == "urn:cadenza:problem:forbidden"
        assert role in problem["detail"]
    if s == 202:  # a job made by the matrix: take it back
        api.request("POST", f"/v1/jobs/{json.loads(data)['id']}/cancel")


def test_public_endpoints_need_no_key(anon_api):
    for path in ("/healthz", "/readyz", "/openapi.json", "/review/", "/review/review.js"):
        assert anon_api.request("GET", path, key=None)[0] == 200


def test_keys_create_list_revoke(cli, env):
    tenant = f"t-cli-{uuid.uuid4().hex[:8]}"
    created = cli("keys", "create", "--tenant", tenant, "--role", "curator",
                  "--rate-per-s", "5", "--burst", "10")
    key = created.stdout.strip()
    assert key.startswith("cz_") and len(key) == 43
    assert "shown once" in created.stderr
    other = cli("keys", "create", "--tenant", tenant, "--role", "admin").stdout.strip()
    listed = [json.loads(line) for line in cli("keys", "list", "--tenant", tenant).stdout.split()]
    assert [k["role"] for k in listed] == ["curator", "admin"]
    assert listed[0]["prefix"] == key[:11] and listed[0]["tenant"] == tenant
    assert listed[0]["rate_per_s"] == 5 and listed[0]["rate_burst"] == 10
    assert listed[1]["rate_per_s"] is None and listed[1]["revoked_at"] is None
    assert key not in cli("keys", "list", "--tenant", tenant).stdout  # never the secret
    # Revoke by id; the other key keeps working.
    assert cli("keys", "revoke", str(listed[0]["id"])).returncode == 0
    again = cli("keys", "revoke", str(listed[0]["id"]), check=False)
    assert again.returncode == 1 and again.stderr.count("\n") == 1
    listed = [json.loads(line) for line in cli("keys", "list", "--tenant", tenant).stdout.split()]
    assert listed[0]["revoked_at"] and listed[1]["revoked_at"] is None
    assert Api(env["CADENZA_API_URL"], other).request("GET", "/v1/jobs")[0] == 200


@pytest.mark.parametrize("args", [
    ["keys", "create", "--tenant", "x", "--role", "superuser"],
    ["keys", "create", "--tenant", "x", "--role", "submitter", "--rate-per-s", "-1"],
    ["keys", "create", "--tenant", "x", "--role", "submitter", "--burst", "many"],
    ["keys", "revoke", "cz_nosuchkey"],
    ["keys", "revoke"],
    ["quota", "set", "--tenant", "x", "--minutes", "-3"],
])
def test_cli_errors_are_one_line(cli, args):
    r = cli(*args, check=False)
    assert r.returncode != 0
    assert r.stdout == ""
    assert r.stderr.startswith("cadenzactl: ") or r.stderr.startswith("usage:")
