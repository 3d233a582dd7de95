"""Load generator for the pipeline benchmarks (make bench).

  pipeline.py capacity N        submit N one-second jobs at once; jobs/s end to end
  pipeline.py overhead RATE S   submit RATE jobs/s for S seconds; overhead p50/p99
  pipeline.py soak RATE S       like overhead, with RSS of every process before/after

Orchestration overhead of a job is its end-to-end time (created_at to
finished_at, both stamped by Postgres) minus the compute its workers
measured around their own work (render + write, master + write): what is
left is the time spent in the API, the outbox relay, Kafka, the consumers
and the scheduler. Reads .cadenza/env; prints "name value" lines.
"""
import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = {}
for line in (ROOT / ".cadenza/env").read_text().splitlines():
    if line.startswith("export "):
        k, _, v = line[7:].partition("=")
        ENV[k] = v.strip("'\"")
BASE = ENV["CADENZA_API_URL"]


def psql(sql):
    return subprocess.run(["psql", ENV["CADENZA_DATABASE_URL"], "-At", "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def new_key():
    tenant = f"bench-{os.getpid()}-{int(time.time() * 1000)}"
    key = subprocess.run([str(ROOT / "bin/cadenzactl"), "keys", "create", "--tenant", tenant,
                          "--role", "submitter", "--rate-per-s", "100000", "--burst", "100000"],
                         env=dict(os.environ, **ENV), check=True,
                         capture_output=True, text=True).stdout.strip()
    return tenant, key


def submit(key, i):
    body = json.dumps({"prompt": f"bench {i}", "duration_s": 1, "seed": i}).encode()
    req = urllib.request.Request(BASE + "/v1/jobs", data=body, method="POST", headers={
        "Authorization": f"Bearer {key}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 202


def wait_done(tenant, n, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = int(psql(f"SELECT count(*) FROM jobs WHERE tenant_id = '{tenant}' AND state IN"
                        f" ('succeeded','failed','canceled','rejected')"))
        if done >= n:
            return
        time.sleep(0.2)
    raise SystemExit(f"only {done} of {n} jobs finished in {timeout} s")


def stats(tenant):
    row = psql(
        "WITH t AS (SELECT extract(epoch FROM finished_at - created_at) * 1000 AS e2e,"
        "                  extract(epoch FROM finished_at - created_at) * 1000 - compute_ms AS ovh"
        f"            FROM jobs WHERE tenant_id = '{tenant}' AND state = 'succeeded')"
        " SELECT count(*),"
        "        percentile_cont(0.5) WITHIN GROUP (ORDER BY e2e),"
        "        percentile_cont(0.99) WITHIN GROUP (ORDER BY e2e),"
        "        percentile_cont(0.5) WITHIN GROUP (ORDER BY ovh),"
        "        percentile_cont(0.99) WITHIN GROUP (ORDER BY ovh),"
        f"       (SELECT count(*) FROM jobs WHERE tenant_id = '{tenant}' AND state <> 'succeeded')"
        " FROM t")
    n, e50, e99, o50, o99, bad = row.split("|")
    return {"jobs": int(n), "e2e_p50_ms": float(e50), "e2e_p99_ms": float(e99),
            "overhead_p50_ms": float(o50), "overhead_p99_ms": float(o99), "not_succeeded": int(bad)}


def rss():
    out = {}
    for name in ("api", "scheduler", "worker-inference", "worker-post"):
        pid = (pathlib.Path(ENV["CADENZA_STATE_DIR"]) / "run" / f"{name}.pid").read_text().strip()
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                out[name] = int(line.split()[1])
    return out


def steady(key, rate, seconds):
    """Submits at a fixed rate from a small pool; returns the rate achieved."""
    n = int(rate * seconds)
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        futures = []
        for i in range(n):
            due = start + i / rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            futures.append(pool.submit(submit, key, i))
        for f in futures:
            f.result()
    return n / (time.monotonic() - start)


def remove_files(tenant):
    """The benchmark's audio is of no use afterwards; a soak writes gigabytes."""
    ids = psql(f"SELECT string_agg(id::text, ' ') FROM jobs WHERE tenant_id = '{tenant}'").split()
    root = pathlib.Path(ENV["CADENZA_ARTIFACT_DIR"])
    for job_id in ids:
        subprocess.run(["rm", "-rf", str(root / job_id)], check=False)


def main():
    mode = sys.argv[1]
    tenant, key = new_key()
    try:
        run(mode, tenant, key)
    finally:
        remove_files(tenant)


def run(mode, tenant, key):
    if mode == "capacity":
        n = int(sys.argv[2])
        start = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: submit(key, i), range(n)))
        wait_done(tenant, n)
        elapsed = time.monotonic() - start
        print(f"capacity_jobs_per_s {n / elapsed:.1f}")
        print(f"jobs {n}")
        return
    rate, seconds = float(sys.argv[2]), float(sys.argv[3])
    before = rss() if mode == "soak" else None
    achieved = steady(key, rate, seconds)
    wait_done(tenant, int(rate * seconds))
    print(f"rate_jobs_per_s {achieved:.1f}")
    for k, v in stats(tenant).items():
        print(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}")
    if before:
        after = rss()
        for name in before:
            print(f"rss_kib_{name} {before[name]} {after[name]} "
                  f"{100.0 * (after[name] - before[name]) / before[name]:+.1f}%")


if __name__ == "__main__":
    main()
