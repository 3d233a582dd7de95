"""A job accepted while Kafka is down is not lost: it succeeds once Kafka is back."""
import subprocess
import time

from conftest import ROOT


def kafka(action):
    subprocess.run([str(ROOT / "deploy/local/kafka.sh"), action], check=True,
                   stdout=subprocess.DEVNULL)


def test_job_submitted_during_kafka_outage_succeeds(tenant_api, psql):
    kafka("stop")
    try:
        job = tenant_api.submit(prompt="submitted while the broker is down", duration_s=3, seed=7)
        assert job["state"] == "queued"
        s, _, ready = tenant_api.json("GET", "/readyz", key=None)
        assert s == 503 and ready["checks"]["kafka"] == "down"
        time.sleep(3)
        # Still waiting in the outbox: nothing was published, nothing lost.
        assert tenant_api.json("GET", f"/v1/jobs/{job['id']}")[2]["state"] == "queued"
        assert psql(f"SELECT published_at IS NULL FROM outbox WHERE key = '{job['id']}'") == "t"
    finally:
        kafka("start")
    done = tenant_api.wait(job["id"], timeout=240)
    assert done["state"] == "succeeded", done.get("failure")
    assert psql(f"SELECT count(*) FROM usage_ledger WHERE job_id = '{job['id']}'") == "1"
