"""Bad requests get RFC 9457 problems and never reach the job tables."""
import pytest


def counts(psql):
    return psql("SELECT (SELECT count(*) FROM jobs) || ',' || (SELECT count(*) FROM outbox)")


def assert_problem(status, headers, body, want_status, field=None):
    assert status == want_status, body
    assert headers["Content-Type"] == "application/problem+json"
    assert body["status"] == want_status
    assert body["type"].startswith("urn:cadenza:problem:")
    assert body["title"] and body["detail"]
    if field:
        assert body["field"] == field


@pytest.mark.parametrize("raw,status,field", [
    (b'{"prompt": "unterminated', 400, None),
    (b'not json at all', 400, None),
    (b'{}', 422, "prompt"),
    (b'{"prompt": ""}', 422, "prompt"),
    (b'{"prompt": "x", "duration_s": 9999}', 422, "duration_s"),
    (b'{"prompt": "x", "colour": "blue"}', 422, "colour"),
    (b'["prompt"]', 422, None),
])
def test_invalid_bodies(tenant_api, psql, raw, status, field):
    before = counts(psql)
    s, h, body = tenant_api.json("POST", "/v1/jobs", raw=raw)
    assert_problem(s, h, body, status, field)
    assert counts(psql) == before


def test_missing_and_wrong_keys(anon_api, psql):
    before = counts(psql)
    s, h, body = anon_api.json("POST", "/v1/jobs", {"prompt": "x"}, key=None)
    assert_problem(s, h, body, 401)
    assert h["WWW-Authenticate"].startswith("Bearer")
    s, h, body = anon_api.json("POST", "/v1/jobs", {"prompt": "x"},
                               key="cz_0000000000000000000000000000000000000000")
    assert_problem(s, h, body, 401)
    s, h, body = anon_api.json("GET", "/v1/jobs", key="short")
    assert_problem(s, h, body, 401)
    assert counts(psql) == before


def test_wrong_content_type_and_size(tenant_api, psql):
    before = counts(psql)
    s, h, body = tenant_api.json("POST", "/v1/jobs", raw=b'{"prompt":"x"}',
                                 headers={"Content-Type": "text/plain"})
    assert_problem(s, h, body, 415)
    big = b'{"prompt":"' + b"a" * (65 * 1024) + b'"}'
    s, h, body = tenant_api.json("POST", "/v1/jobs", raw=big)
    assert_problem(s, h, body, 413)
    assert counts(psql) == before


def test_a_role_that_may_not_submit(env, cli, psql):
    from conftest import Api, new_key
    _, key = new_key(cli, role="curator")
    before = counts(psql)
    s, h, body = Api(env["CADENZA_API_URL"], key).json("POST", "/v1/jobs", {"prompt": "x"})
    assert_problem(s, h, body, 403)
    assert counts(psql) == before


def test_unknown_paths_and_methods(tenant_api):
    s, h, body = tenant_api.json("GET", "/v1/nothing-here")
    assert_problem(s, h, body, 404)
    s, h, body = tenant_api.json("DELETE", "/v1/jobs")
    assert_problem(s, h, body, 405)
    s, h, body = tenant_api.json("GET", "/v1/jobs/not-a-uuid")
    assert_problem(s, h, body, 404)


def test_health_and_readiness(anon_api):
    s, _, body = anon_api.json("GET", "/healthz", key=None)
    assert s == 200 and body["status"] == "ok"
    s, _, body = anon_api.json("GET", "/readyz", key=None)
    assert s == 200 and body["checks"] == {"postgres": "ok", "kafka": "ok", "redis": "ok"}
