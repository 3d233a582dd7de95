"""Fixtures for Cadenza's black-box system tests.

The tests talk to the stack that `make up` started (real Postgres, Redis and
Kafka, plus our four processes), using only its public interfaces: the HTTP
API, the cadenzactl CLI, psql for read-only checks, and the deploy/local
scripts to stop and start services.
"""
import json
import os
import pathlib
import shlex
import subprocess
import time
import urllib.error
import urllib.request
import uuid

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
TERMINAL = {"succeeded", "failed", "canceled", "rejected"}


def _load_env():
    state = pathlib.Path(os.environ.get("CADENZA_STATE_DIR", ROOT / ".cadenza"))
    env_file = state / "env"
    if not env_file.exists():
        subprocess.run([str(ROOT / "deploy/local/stack.sh"), "up"], check=True)
    env = {}
    for line in env_file.read_text().splitlines():
        if line.startswith("export "):
            name, _, value = line[len("export "):].partition("=")
            # The file is written with bash's quoting (printf %q).
            env[name] = " ".join(shlex.split(value)) if value.strip() else ""
    return env


class Api:
    """A small HTTP client for the API: returns (status, headers, body bytes)."""

    def __init__(self, base, key=None):
        self.base = base
        self.key = key

    def request(self, method, path, body=None, key="default", headers=None, raw=None):
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        h = {"Content-Type": "application/json"} if data is not None else {}
        key = self.key if key == "default" else key
        if key:
            h["Authorization"] = f"Bearer {key}"
        h.update(headers or {})
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, dict(resp.headers), resp.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def json(self, method, path, body=None, **kw):
        status, headers, data = self.request(method, path, body, **kw)
        return status, headers, json.loads(data) if data else None

    def submit(self, **fields):
        status, _, job = self.json("POST", "/v1/jobs", fields)
        assert status == 202, job
        return job

    def wait(self, job_id, states=TERMINAL, timeout=180):
        deadline = time.monotonic() + timeout
        job = None
        while time.monotonic() < deadline:
            status, _, job = self.json("GET", f"/v1/jobs/{job_id}")
            assert status == 200, job
            if job["state"] in states:
                return job
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} still {job and job['state']} after {timeout} s")


@pytest.fixture(scope="session")
def env():
    return _load_env()


@pytest.fixture(scope="session")
def cli(env):
    def run(*args, check=True):
        e = dict(os.environ, **env)
        return subprocess.run([str(ROOT / "bin/cadenzactl"), *args], env=e, check=check,
                              capture_output=True, text=True)
    return run


@pytest.fixture(scope="session")
def psql(env):
    def run(sql, *params):
        args = ["psql", env["CADENZA_DATABASE_URL"], "-At", "-v", "ON_ERROR_STOP=1"]
        for i, p in enumerate(params, 1):
            args += ["-v", f"p{i}={p}"]
        out = subprocess.run(args, input=sql, check=True, capture_output=True, text=True)
        return out.stdout.strip()
    return run


def new_key(cli, role="submitter"):
    tenant = f"t-{uuid.uuid4().hex[:12]}"
    return tenant, cli("keys", "create", "--tenant", tenant, "--role", role).stdout.strip()


@pytest.fixture
def tenant_api(env, cli):
    """An Api for a fresh tenant with a submitter key."""
    tenant, key = new_key(cli)
    api = Api(env["CADENZA_API_URL"], key)
    api.tenant = tenant
    return api


@pytest.fixture
def anon_api(env):
    return Api(env["CADENZA_API_URL"])
