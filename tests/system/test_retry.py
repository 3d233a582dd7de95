"""Retries and the dead-letter topic, forced with the http@1 backend and the
reference model server (tests/reference_model.py): a model that fails the
first attempt is retried and succeeds; one that keeps failing uses every
attempt, fails for good, and lands on cadenza.jobs.dlq."""
import json
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def model(env):
    port = env["CADENZA_HTTP_MODEL_PORT"]
    proc = subprocess.Popen([sys.executable, str(ROOT / "tests/reference_model.py"), "--port", port],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    assert proc.stdout.readline().startswith("listening on")
    yield proc
    proc.terminate()
    proc.wait(timeout=10)


def history(psql, job_id):
    return psql(f"SELECT string_agg(event || ':' || attempt, ',' ORDER BY id)"
                f"  FROM job_events WHERE job_id = '{job_id}'").split(",")


def dlq_messages(env):
    """Everything on cadenza.jobs.dlq, read with Kafka's own console consumer."""
    out = subprocess.run(
        [str(ROOT / "deploy/local/kafka.sh"), "run-class", "org.apache.kafka.tools.consumer.ConsoleConsumer",
         "--bootstrap-server", env["CADENZA_KAFKA_BROKERS"], "--topic", "cadenza.jobs.dlq",
         "--from-beginning", "--timeout-ms", "8000"],
        capture_output=True, text=True)
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]


def test_a_failed_attempt_is_retried_and_succeeds(tenant_api, psql, model):
    job = tenant_api.submit(prompt="calm tune reference:fail-first", model="http@1",
                            duration_s=3, seed=31)
    done = tenant_api.wait(job["id"], timeout=120)
    assert done["state"] == "succeeded" and done["attempt"] == 2
    path = history(psql, job["id"])
    assert "retry:1" in path and path[-1] == "post_done:2"
    retry = json.loads(psql(f"SELECT detail FROM job_events WHERE job_id = '{job['id']}'"
                            f" AND event = 'retry'"))
    assert retry["failure"]["class"] == "backend_unavailable"
    assert psql(f"SELECT count(*) FROM usage_ledger WHERE job_id = '{job['id']}'") == "1"


def test_exhausted_retries_fail_the_job_and_reach_the_dlq(tenant_api, psql, model, env):
    job = tenant_api.submit(prompt="never works reference:unavailable", model="http@1",
                            duration_s=3, seed=32)
    done = tenant_api.wait(job["id"], timeout=180)
    assert done["state"] == "failed"
    assert done["attempt"] == done["max_attempts"] == 4
    assert done["failure"]["class"] == "backend_unavailable"
    path = history(psql, job["id"])
    assert [e for e in path if e.startswith("retry")] == ["retry:1", "retry:2", "retry:3"]
    assert path[-1] == "failed:4"
    assert psql(f"SELECT outcome FROM usage_ledger WHERE job_id = '{job['id']}'") == "failed"
    letters = [m for m in dlq_messages(env) if m["job_id"] == job["id"]]
    assert len(letters) == 1
    assert letters[0]["attempt"] == 4
    assert letters[0]["failure"]["class"] == "backend_unavailable"
    assert letters[0]["message"]["request"]["model"] == "http@1"


def test_a_model_error_is_retried_then_dead_lettered(tenant_api, psql, model, env):
    job = tenant_api.submit(prompt="bad request reference:error", model="http@1",
                            duration_s=3, seed=33)
    done = tenant_api.wait(job["id"], timeout=180)
    assert done["state"] == "failed" and done["failure"]["class"] == "model_error"
    assert done["attempt"] == 4
    assert any(m["job_id"] == job["id"] for m in dlq_messages(env))
