"""A table of bad requests: each gets its documented 4xx as RFC 9457
problem+json, and nothing reaches the database.

Every row runs against the live API with its own fresh tenant, and counts
that tenant's rows (jobs, outbox, idempotency keys) and every tenant and key
before and after: a refused request writes nothing anywhere.
"""
import json
import uuid

import pytest

from conftest import Api, new_key

GOOD = {"prompt": "calm piano", "duration_s": 2}
PROBLEM_FIELDS = {"type", "title", "status", "detail"}


def db_counts(psql, tenant):
    return psql(
        "SELECT (SELECT count(*) FROM jobs WHERE tenant_id = :'p1') || ','"
        " || (SELECT count(*) FROM outbox WHERE headers ->> 'tenant' = :'p1') || ','"
        " || (SELECT count(*) FROM idempotency_keys WHERE tenant_id = :'p1') || ','"
        " || (SELECT count(*) FROM jobs) || ',' || (SELECT count(*) FROM tenants) || ','"
        " || (SELECT count(*) FROM api_keys)", tenant)


def check_problem(status, headers, raw, want_status, want_type, want_field):
    assert status == want_status, raw[:300]
    assert headers["Content-Type"] == "application/problem+json"
    body = json.loads(raw.decode("utf-8"))  # always valid UTF-8 JSON, whatever came in
    assert PROBLEM_FIELDS <= body.keys(), body
    assert body["status"] == want_status
    assert body["type"] == f"urn:cadenza:problem:{want_type}", body
    assert body["title"] and body["detail"]
    if want_field is None:
        assert "field" not in body, body
    else:
        assert body.get("field") == want_field, body
    return body


def body(**over):
    b = dict(GOOD)
    b.update(over)
    return json.dumps(b).encode()


# (name, raw body, extra headers, status, problem type, field)
BODIES = [
    ("malformed JSON", b'{"prompt": "unterminated', {}, 400, "malformed-json", None),
    ("not JSON", b"prompt=calm", {}, 400, "malformed-json", None),
    ("trailing garbage", b'{"prompt": "x"} {}', {}, 400, "malformed-json", None),
    ("empty body", b"", {}, 400, "malformed-json", None),
    ("array body", b'[{"prompt": "x"}]', {}, 422, "invalid-body", None),
    ("missing prompt", b"{}", {}, 422, "missing-field", "prompt"),
    ("prompt wrong type", body(prompt=42), {}, 422, "invalid-field", "prompt"),
    ("duration wrong type", body(duration_s="30"), {}, 422, "invalid-field", "duration_s"),
    ("stems wrong type", body(stems="yes"), {}, 422, "invalid-field", "stems"),
    ("outputs wrong type", body(outputs="flac"), {}, 422, "invalid-field", "outputs"),
    ("metadata wrong type", body(metadata=[1]), {}, 422, "invalid-field", "metadata"),
    ("huge duration", b'{"prompt": "x", "duration_s": 1e308}', {}, 422, "invalid-field",
     "duration_s"),
    ("overflowing duration", b'{"prompt": "x", "duration_s": 1e999}', {}, 422,
     "invalid-field", "duration_s"),
    ("huge seed", b'{"prompt": "x", "seed": 184467440737095516160}', {}, 422,
     "invalid-field", "seed"),
    ("fractional seed", body(seed=1.5), {}, 422, "invalid-field", "seed"),
    ("zero duration", body(duration_s=0), {}, 422, "invalid-field", "duration_s"),
    ("negative duration", body(duration_s=-30), {}, 422, "invalid-field", "duration_s"),
    ("duration over 600", body(duration_s=601), {}, 422, "invalid-field", "duration_s"),
    ("loudness out of range", body(loudness={"target_lufs": 0}), {}, 422, "invalid-field",
     "loudness.target_lufs"),
    ("1 MB prompt", body(prompt="a" * (1 << 20)), {}, 413, "body-too-large", None),
    ("prompt over 2000 characters", body(prompt="a" * 2001), {}, 422, "invalid-field",
     "prompt"),
    ("too many instruments", body(instruments=["piano"] * 17), {}, 422, "invalid-field",
     "instruments"),
    ("metadata over 8 KiB", body(metadata={"x": "a" * 9000}), {}, 422, "invalid-field",
     "metadata"),
    ("metadata too deep", body(metadata={"a": [[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}), {}, 422,
     "invalid-field", "metadata"),
    ("invalid UTF-8 in prompt", b'{"prompt": "caf\xc3"}', {}, 422, "invalid-field", "prompt"),
    ("invalid UTF-8 in metadata", b'{"prompt": "x", "metadata": {"k": ["\xff"]}}', {}, 422,
     "invalid-field", "metadata.k[0]"),
    ("invalid UTF-8 in a field name", b'{"prompt": "x", "\xc0\xaf": 1}', {}, 422,
     "invalid-field", None),
    ("UTF-16 surrogate in UTF-8", b'{"prompt": "\xed\xa0\x80"}', {}, 422, "invalid-field",
     "prompt"),
    ("NUL escape", b'{"prompt": "a\\u0000b"}', {}, 422, "invalid-field", None),
    ("raw NUL byte", b'{"prompt": "a\x00b"}', {}, 400, "malformed-json", None),
    ("control character", body(prompt="a\x07b"), {}, 422, "invalid-field", "prompt"),
    ("unknown field", body(colour="blue"), {}, 422, "unknown-field", "colour"),
    ("unknown nested field", body(loudness={"gain": 3}), {}, 422, "unknown-field",
     "loudness"),
    ("API-owned field", body(controls={}), {}, 422, "unknown-field", "controls"),
    ("unknown model", body(model="gpt@4"), {}, 422, "invalid-field", "model"),
    ("unknown model name", body(model="gpt"), {}, 422, "invalid-field", "model"),
    ("unknown version", body(model="neural@9"), {}, 422, "invalid-field", "model"),
    ("model not a name", body(model="Neural@1"), {}, 422, "invalid-field", "model"),
    ("model wrong type", body(model=1), {}, 422, "invalid-field", "model"),
    ("stems from a model without", body(model="http", stems=True), {}, 422, "invalid-field",
     "stems"),
    ("empty user", body(user=""), {}, 422, "invalid-field", "user"),
    ("user over 128 characters", body(user="u" * 129), {}, 422, "invalid-field", "user"),
    ("user with a control character", body(user="a\x07b"), {}, 422, "invalid-field", "user"),
    ("user wrong type", body(user=7), {}, 422, "invalid-field", "user"),
    ("parameters for a model that declares none", body(parameters={"temperature": 0.8}), {},
     422, "invalid-field", "parameters"),
    ("parameters not an object", body(model="http@2", parameters=[0.8]), {}, 422,
     "invalid-field", "parameters"),
    ("parameter name not a-z0-9_", body(model="http@2", parameters={"Top-P": 0.9}), {}, 422,
     "invalid-field", "parameters"),
    ("parameter value an object", body(model="http@2", parameters={"top_p": {"x": 1}}), {},
     422, "invalid-field", "parameters.top_p"),
    ("too many parameters", body(model="http@2", parameters={f"p{i}": 1 for i in range(17)}),
     {}, 422, "invalid-field", "parameters"),
    ("stems from http@2", body(model="http@2", stems=True), {}, 422, "invalid-field", "stems"),
    ("webhook not http", body(webhook={"url": "file:///etc/passwd"}), {}, 422,
     "invalid-field", "webhook.url"),
    ("wrong content type", body(), {"Content-Type": "text/plain"}, 415,
     "unsupported-media-type", None),
    ("form content type", b"prompt=x", {"Content-Type": "application/x-www-form-urlencoded"},
     415, "unsupported-media-type", None),
    ("bad idempotency key", body(), {"Idempotency-Key": "tab\there"}, 422, "invalid-field",
     "Idempotency-Key"),
]


@pytest.fixture
def fresh(env, cli):
    tenant, key = new_key(cli)
    api = Api(env["CADENZA_API_URL"], key)
    api.tenant = tenant
    return api


@pytest.mark.parametrize("name,raw,headers,status,ptype,field", BODIES,
                         ids=[row[0] for row in BODIES])
def test_bad_bodies(fresh, psql, name, raw, headers, status, ptype, field):
    before = db_counts(psql, fresh.tenant)
    s, h, data = fresh.request("POST", "/v1/jobs", raw=raw, headers=headers)
    check_problem(s, h, data, status, ptype, field)
    assert db_counts(psql, fresh.tenant) == before


@pytest.mark.parametrize("query,field", [
    ("limit=0", "limit"), ("limit=101", "limit"), ("limit=ten", "limit"),
    ("limit=99999999999999999999", "limit"), ("cursor=abc", "cursor"),
    ("state=done", "state"),
])
def test_bad_list_queries(fresh, query, field):
    s, h, data = fresh.request("GET", f"/v1/jobs?{query}")
    check_problem(s, h, data, 422, "invalid-field", field)


@pytest.mark.parametrize("query,field", [
    ("variant=lyrics", "variant"), ("format=aiff", "format"),
    ("variant=stem&name=kazoo&format=wav", "name"), ("variant=master&name=drums", "name"),
    ("variant=midi&format=flac", "format"),
])
def test_bad_audio_queries(fresh, query, field):
    job = fresh.submit(**GOOD)
    s, h, data = fresh.request("GET", f"/v1/jobs/{job['id']}/audio?{query}")
    check_problem(s, h, data, 422, "invalid-field", field)
    fresh.request("POST", f"/v1/jobs/{job['id']}/cancel")


def test_sql_looking_text_is_only_text(fresh, psql):
    """SQL in every text field is stored as the text it is; nothing runs."""
    tables = "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
    n_tables = psql(tables)
    evil = "x'); DROP TABLE jobs; --"
    job = fresh.submit(prompt=evil, genre="1' OR '1'='1", mood="\"; DELETE FROM tenants; --",
                       duration_s=1, metadata={"q": "'; TRUNCATE outbox; --", evil: evil})
    assert job["request"]["prompt"] == evil
    assert job["metadata"] == {"q": "'; TRUNCATE outbox; --", evil: evil}
    stored = psql("SELECT request ->> 'prompt' FROM jobs WHERE id = :'p1'", job["id"])
    assert stored == evil
    assert psql(tables) == n_tables
    assert int(psql("SELECT count(*) FROM tenants")) > 0
    assert psql("SELECT count(*) FROM outbox WHERE key = :'p1'", job["id"]) == "1"
    # The same in a path and a query string: a not-found and an invalid field.
    s, h, data = fresh.request("GET", "/v1/jobs/1%27%20OR%20%271%27=%271")
    check_problem(s, h, data, 404, "not-found", None)
    s, h, data = fresh.request("GET", "/v1/jobs?state=queued%27%3B%20DROP%20TABLE%20jobs%3B--")
    check_problem(s, h, data, 422, "invalid-field", "state")
    assert psql(tables) == n_tables
    fresh.request("POST", f"/v1/jobs/{job['id']}/cancel")


def test_keys_missing_wrong_and_revoked(env, cli, psql):
    tenant, key = new_key(cli)
    api = Api(env["CADENZA_API_URL"], key)
    before = db_counts(psql, tenant)
    rows = [
        (None, "send an API key"),
        ("cz_" + "0" * 40, None),
        ("short", None),
        (key + "x", None),
        (key[:-1] + ("0" if key[-1] != "0" else "1"), None),  # right prefix, wrong secret
    ]
    for k, detail in rows:
        s, h, data = api.request("POST", "/v1/jobs", GOOD, key=k)
        b = check_problem(s, h, data, 401, "unauthorized", None)
        assert h["WWW-Authenticate"].startswith("Bearer")
        if detail:
            assert detail in b["detail"]
    s, h, data = api.request("POST", "/v1/jobs", GOOD, headers={"Authorization": f"Basic {key}"},
                             key=None)
    check_problem(s, h, data, 401, "unauthorized", None)
    assert db_counts(psql, tenant) == before

    prefix = key[:11]
    assert cli("keys", "revoke", prefix).returncode == 0
    listed = [json.loads(line) for line in cli("keys", "list", "--tenant", tenant).stdout.split()]
    assert len(listed) == 1 and listed[0]["prefix"] == prefix and listed[0]["revoked_at"]
    import time
    time.sleep(1.2)  # the API's key cache keeps a key for at most 1 s
    s, h, data = api.request("POST", "/v1/jobs", GOOD)
    check_problem(s, h, data, 401, "unauthorized", None)
    s, h, data = api.request("GET", "/v1/jobs")
    check_problem(s, h, data, 401, "unauthorized", None)
    assert db_counts(psql, tenant) == before


def test_wrong_role(env, cli, psql):
    for role in ("curator", "operator"):
        tenant, key = new_key(cli, role=role)
        api = Api(env["CADENZA_API_URL"], key)
        before = db_counts(psql, tenant)
        s, h, data = api.request("POST", "/v1/jobs", GOOD)
        b = check_problem(s, h, data, 403, "forbidden", None)
        assert role in b["detail"] and "submitter" in b["detail"]
        assert db_counts(psql, tenant) == before


def test_other_tenants_job_is_404(env, cli, psql):
    owner_tenant, owner_key = new_key(cli)
    owner = Api(env["CADENZA_API_URL"], owner_key)
    job = owner.submit(**GOOD)
    for role in ("submitter", "admin", "curator"):
        other_tenant, other_key = new_key(cli, role=role)
        other = Api(env["CADENZA_API_URL"], other_key)
        before = db_counts(psql, owner_tenant)
        for method, path in [("GET", f"/v1/jobs/{job['id']}"),
                             ("GET", f"/v1/jobs/{job['id']}/audio"),
                             ("POST", f"/v1/jobs/{job['id']}/cancel")]:
            s, h, data = other.request(method, path)
            if role == "curator" and method == "POST":
                check_problem(s, h, data, 403, "forbidden", None)
            else:
                check_problem(s, h, data, 404, "not-found", None)
        s, _, page = other.json("GET", "/v1/jobs")
        assert s == 200 and page["data"] == []
        assert db_counts(psql, owner_tenant) == before
    s, _, still = owner.json("GET", f"/v1/jobs/{job['id']}")
    assert s == 200 and still["state"] != "canceled"
    owner.request("POST", f"/v1/jobs/{job['id']}/cancel")


def test_unknown_ids_and_paths(fresh):
    for path in (f"/v1/jobs/{uuid.uuid4()}", "/v1/jobs/not-a-uuid", f"/v1/jobs/{'9' * 80}"):
        s, h, data = fresh.request("GET", path)
        check_problem(s, h, data, 404, "not-found", None)
    s, h, data = fresh.request("PUT", "/v1/jobs")
    check_problem(s, h, data, 405, "method-not-allowed", None)
