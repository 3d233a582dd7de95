"""/metrics on every process: the API, the scheduler and each worker serve
the Prometheus text format (checked with prometheus_client's parser), with
every metric docs/operations.md lists, and the figures move as jobs run:
counters by comparing scrapes before and after, gauges by sampling them
while the stack is driven through what they report (a scale-up, a burst,
a review, a webhook backlog, Kafka down)."""
import os
import subprocess
import threading
import time
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import ROOT, Api, new_key
from webhook_helpers import Receiver

SCHEDULER = ["cadenza_jobs_total", "cadenza_jobs_in_state", "cadenza_job_duration_seconds",
             "cadenza_job_retries_total", "cadenza_job_failures_total",
             "cadenza_audio_seconds_total", "cadenza_compute_seconds_total",
             "cadenza_cost_per_audio_minute", "cadenza_pool_replicas", "cadenza_kafka_lag",
             "cadenza_pool_throughput_per_replica", "cadenza_outbox_backlog",
             "cadenza_review_queue_oldest_seconds", "cadenza_webhook_backlog",
             "cadenza_webhook_overdue_seconds"]
API = ["cadenza_http_requests_total", "cadenza_http_request_duration_seconds",
       "cadenza_cache_hits_total", "cadenza_cache_misses_total", "cadenza_cache_entries"]
WORKER = ["cadenza_worker_jobs_total", "cadenza_worker_job_seconds",
          "cadenza_worker_busy_seconds_total", "cadenza_worker_busy"]


def scrape(url):
    """{(sample name, frozenset(labels)): value} and the metric names, parsed strictly."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = resp.read().decode()
    samples, families = {}, set()
    for fam in text_string_to_metric_families(text):
        assert fam.name.startswith("cadenza_"), fam.name
        families.add(fam.name)
        for s in fam.samples:
            samples[(s.name, frozenset(s.labels.items()))] = s.value
            if fam.type == "counter":  # the parser names a counter's family without _total
                families.add(s.name)
    return samples, families


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())), 0.0)


def urls(env):
    base = int(env["CADENZA_WORKER_METRICS_PORT_BASE"])
    return {"api": env["CADENZA_API_URL"], "scheduler": env["CADENZA_SCHED_METRICS_URL"],
            # slot 0 of the first and second supervised pools (inference, post)
            "inference": f"http://127.0.0.1:{base}", "post": f"http://127.0.0.1:{base + 64}"}


def test_every_process_serves_the_metrics_and_they_move(env, tenant_api, psql):
    where = urls(env)
    before = {k: scrape(u) for k, u in where.items()}
    for name in SCHEDULER:
        assert name in before["scheduler"][1] or name in (
            "cadenza_jobs_total", "cadenza_job_duration_seconds", "cadenza_job_retries_total",
            "cadenza_job_failures_total"), name  # counters by label appear with the first event
    for name in API:
        assert name in before["api"][1], name
    for pool in ("inference", "post"):
        assert "cadenza_worker_busy" in before[pool][1]

    # Two jobs that succeed (the first with a webhook), the second one's twin
    # answered from the cache, and one whose model is unreachable: retried,
    # then failed.
    rx = Receiver()
    ok = [tenant_api.submit(prompt=f"metrics piece {i}, taiko drums, 140 bpm", duration_s=4, seed=500 + i,
                            **({"webhook": {"url": rx.url}} if i == 0 else {}))
          for i in range(2)]
    bad = tenant_api.submit(prompt="metrics: no model answers", model="http@1",
                            duration_s=2, seed=77)
    for job in ok:
        assert tenant_api.wait(job["id"], timeout=240)["state"] == "succeeded"
    twin = tenant_api.submit(prompt="metrics piece 0, taiko drums, 140 bpm", duration_s=4, seed=500)
    assert tenant_api.wait(twin["id"], timeout=60)["state"] == "succeeded"
    done = tenant_api.wait(bad["id"], timeout=240)
    assert done["state"] == "failed" and done["failure"]["class"] == "backend_unavailable"
    rx.wait(lambda r: r.headers.get("webhook-id"), timeout=60)
    rx.close()
    time.sleep(3)  # the scheduler's collector looks every 2 s

    after = {k: scrape(u) for k, u in where.items()}
    s0, s1 = before["scheduler"][0], after["scheduler"][0]
    for name in SCHEDULER:
        assert name in after["scheduler"][1], name
    assert value(s1, "cadenza_jobs_total", state="succeeded") >= \
        value(s0, "cadenza_jobs_total", state="succeeded") + 3
    assert value(s1, "cadenza_jobs_total", state="failed") >= \
        value(s0, "cadenza_jobs_total", state="failed") + 1
    for stage in ("end_to_end", "queued", "generating", "postprocessing"):
        assert value(s1, "cadenza_job_duration_seconds_count", stage=stage) > \
            value(s0, "cadenza_job_duration_seconds_count", stage=stage), stage
    assert value(s1, "cadenza_job_retries_total", **{"class": "backend_unavailable"}) >= \
        value(s0, "cadenza_job_retries_total", **{"class": "backend_unavailable"}) + 3
    assert value(s1, "cadenza_job_failures_total", **{"class": "backend_unavailable"}) >= \
        value(s0, "cadenza_job_failures_total", **{"class": "backend_unavailable"}) + 1
    assert value(s1, "cadenza_audio_seconds_total") >= value(s0, "cadenza_audio_seconds_total") + 8
    assert value(s1, "cadenza_compute_seconds_total") > value(s0, "cadenza_compute_seconds_total")
    assert value(s1, "cadenza_cost_per_audio_minute") > 0
    assert value(s1, "cadenza_webhook_attempts_total", outcome="succeeded") >= \
        value(s0, "cadenza_webhook_attempts_total", outcome="succeeded") + 1
    assert value(s1, "cadenza_webhook_attempt_seconds_count") > \
        value(s0, "cadenza_webhook_attempt_seconds_count")
    assert value(s1, "cadenza_pool_replicas", pool="inference", kind="desired") >= 1
    assert value(s1, "cadenza_pool_replicas", pool="inference", kind="running") >= 1
    assert ("cadenza_kafka_lag", frozenset({("pool", "inference")})) in s1

    a0, a1 = before["api"][0], after["api"][0]
    assert value(a1, "cadenza_http_requests_total", code="202") >= \
        value(a0, "cadenza_http_requests_total", code="202") + 4
    assert value(a1, "cadenza_http_request_duration_seconds_count") > \
        value(a0, "cadenza_http_request_duration_seconds_count")
    assert value(a1, "cadenza_cache_hits_total") + value(a1, "cadenza_cache_coalesced_total") > \
        value(a0, "cadenza_cache_hits_total") + value(a0, "cadenza_cache_coalesced_total")

    for pool in ("inference", "post"):
        w0, w1 = before[pool][0], after[pool][0]
        for name in WORKER:
            assert name in after[pool][1], (pool, name)
        assert value(w1, "cadenza_worker_jobs_total", pool=pool, outcome="done") >= \
            value(w0, "cadenza_worker_jobs_total", pool=pool, outcome="done") + 2
        assert value(w1, "cadenza_worker_busy_seconds_total", pool=pool) > \
            value(w0, "cadenza_worker_busy_seconds_total", pool=pool)


class Sampler:
    """Scrapes every process in the background, every quarter second, and
    keeps each sample's series of values, so a test can ask what a gauge
    went through rather than what it is at one instant."""

    def __init__(self, where):
        self.where, self.series, self.lock = where, {}, threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stopping.wait(0.25):
            for proc, url in self.where.items():
                try:
                    samples, _ = scrape(url)
                except OSError:
                    continue  # a worker being replaced
                with self.lock:
                    for key, v in samples.items():
                        self.series.setdefault((proc, key), []).append(v)

    def seen(self, proc, name, **labels):
        with self.lock:
            return list(self.series.get((proc, (name, frozenset(labels.items()))), []))

    def wait(self, what, proc, name, timeout=60, **labels):
        """Waits until some value of the series satisfies @p what."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(what(v) for v in self.seen(proc, name, **labels)):
                return
            time.sleep(0.25)
        raise AssertionError(f"{proc} {name}{labels}: {self.seen(proc, name, **labels)[-20:]}")

    def mark(self):
        """Forgets the series so far: later waits see only what follows."""
        with self.lock:
            self.series.clear()

    def stop(self):
        self.stopping.set()
        self.thread.join()


def kafka(action):
    subprocess.run([str(ROOT / "deploy/local/kafka.sh"), action], check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_the_gauges_follow_what_the_stack_does(env, cli, tenant_api):
    _, operator = new_key(cli, role="operator")
    ops = Api(env["CADENZA_API_URL"], operator)
    curator = Api(env["CADENZA_API_URL"], cli("keys", "create", "--tenant", tenant_api.tenant,
                                              "--role", "curator").stdout.strip())
    where = urls(env)
    sampler = Sampler({k: where[k] for k in ("scheduler", "api", "inference")})
    try:
        # Replicas, desired then running, up and back down.
        assert ops.json("PUT", "/v1/pools/post", {"desired": 2, "reason": "metrics"})[0] == 200
        sampler.wait(lambda v: v == 2, "scheduler", "cadenza_pool_replicas",
                     pool="post", kind="desired")
        sampler.wait(lambda v: v == 2, "scheduler", "cadenza_pool_replicas",
                     pool="post", kind="running")
        assert ops.json("PUT", "/v1/pools/post", {"desired": 1, "reason": "metrics"})[0] == 200
        sampler.mark()
        sampler.wait(lambda v: v == 1, "scheduler", "cadenza_pool_replicas",
                     pool="post", kind="running")

        # A burst on one inference replica: lag, queued jobs, a busy worker
        # and its throughput rise, then the lag drains back to nothing.
        sampler.mark()
        # (long enough that the collector, every 2 s, sees them waiting)
        burst = [tenant_api.submit(prompt=f"gauges burst {i}, strings", duration_s=30)["id"]
                 for i in range(16)]
        sampler.wait(lambda v: v >= 3, "scheduler", "cadenza_kafka_lag", pool="inference")
        # Published at once, they wait as dispatched until a worker takes them.
        sampler.wait(lambda v: v >= 3, "scheduler", "cadenza_jobs_in_state", state="dispatched")
        sampler.wait(lambda v: v == 1, "inference", "cadenza_worker_busy", pool="inference")
        for job in burst:
            assert tenant_api.wait(job, timeout=300)["state"] == "succeeded"
        sampler.wait(lambda v: v > 0, "scheduler", "cadenza_pool_throughput_per_replica",
                     pool="inference")
        sampler.mark()
        sampler.wait(lambda v: v == 0, "scheduler", "cadenza_kafka_lag", pool="inference")
        sampler.wait(lambda v: v == 0, "inference", "cadenza_worker_busy", pool="inference")

        # A job waiting in review ages the queue; approving it ends the wait.
        sampler.mark()
        flagged = tenant_api.submit(prompt="gauges: a person listens first", duration_s=2,
                                    seed=31, review="always")
        assert tenant_api.wait(flagged["id"], states={"in_review"})["state"] == "in_review"
        sampler.wait(lambda v: v >= 2, "scheduler", "cadenza_review_queue_oldest_seconds")
        s, _, task = curator.json("POST", "/v1/review/claim", {})
        assert s == 200 and task["job_id"] == flagged["id"], task
        assert curator.json("POST", f"/v1/review/{flagged['id']}/approve", {})[0] == 200

        # A seeded job fills a cache entry; forty repeats, each answered from
        # the cache with a webhook to a receiver that takes 3 s an answer,
        # build a delivery backlog with deliveries overdue, which drains.
        entries = sampler.seen("api", "cadenza_cache_entries")[-1]
        request = {"prompt": f"gauges cached {os.getpid()} {time.time()}", "duration_s": 2,
                   "seed": 4040}
        assert tenant_api.wait(tenant_api.submit(**request)["id"])["state"] == "succeeded"
        sampler.wait(lambda v: v > entries, "api", "cadenza_cache_entries")
        rx = Receiver(lambda n, req: (200, {}, b"ok", 3))
        sampler.mark()
        base = max(sampler.seen("scheduler", "cadenza_webhook_backlog") or [0])
        for i in range(40):
            repeat = tenant_api.submit(**request, webhook={"url": rx.url}, metadata={"n": i})
            assert repeat["state"] == "succeeded" and repeat["cached_from"], repeat
        sampler.wait(lambda v: v >= base + 20, "scheduler", "cadenza_webhook_backlog")
        sampler.wait(lambda v: v > 0, "scheduler", "cadenza_webhook_overdue_seconds")
        rx.wait(count=40, timeout=60)
        sampler.mark()
        sampler.wait(lambda v: v <= base, "scheduler", "cadenza_webhook_backlog")
        rx.close()

        # Kafka down: accepted jobs wait in the outbox, then flow when it is back.
        kafka("stop")
        held = [tenant_api.submit(prompt=f"gauges outbox {i}", duration_s=1)["id"]
                for i in range(3)]
        sampler.wait(lambda v: v >= 3, "scheduler", "cadenza_outbox_backlog")
        kafka("start")
        for job in held:
            assert tenant_api.wait(job, timeout=240)["state"] == "succeeded"
        sampler.mark()
        sampler.wait(lambda v: v == 0, "scheduler", "cadenza_outbox_backlog")
    finally:
        sampler.stop()
        kafka("start")
        ops.json("PUT", "/v1/pools/post", {"desired": 1, "reason": "metrics clean-up"})


def test_metrics_listeners_answer_only_metrics(env):
    where = urls(env)
    for name in ("scheduler", "inference"):
        try:
            urllib.request.urlopen(where[name] + "/other", timeout=5)
            pytest.fail("answered a path other than /metrics")
        except urllib.error.HTTPError as e:
            assert e.code == 404


def test_cadenzactl_status_shows_pools_backlog_and_latency(env, cli, tenant_api):
    import os
    import subprocess
    job = tenant_api.submit(prompt="status screen", duration_s=3, seed=901)
    assert tenant_api.wait(job["id"], timeout=120)["state"] == "succeeded"
    time.sleep(3)  # the collector's interval
    key = cli("keys", "create", "--tenant", "t-status", "--role", "operator").stdout.strip()
    out = subprocess.run([str(ROOT / "bin/cadenzactl"), "status"], capture_output=True, text=True,
                         env=dict(os.environ, **env, CADENZA_API_KEY=key), check=True).stdout
    lines = out.splitlines()
    assert lines[0] == "POOLS" and lines[1].split()[:4] == ["POOL", "MIN", "MAX", "DESIRED"]
    assert any(l.startswith("inference ") for l in lines)
    assert any(l.startswith("post ") for l in lines)
    assert any(l.startswith("JOBS NOW") and "queued" in l for l in lines)
    assert any(l.startswith("BACKLOG") and "outbox" in l for l in lines)
    p95 = [l for l in lines if l.startswith("LATENCY")][0]
    assert "end-to-end p95" in p95 and " s over " in p95, p95
    assert any(l.startswith("THROUGHPUT") for l in lines)
    # A submitter key may not see it.
    _, sub = tenant_api.tenant, tenant_api.key
    bad = subprocess.run([str(ROOT / "bin/cadenzactl"), "status"], capture_output=True, text=True,
                         env=dict(os.environ, **env, CADENZA_API_KEY=sub))
    assert bad.returncode == 1 and "403" in bad.stderr
