"""Load generator for bench_http2.sh: N jobs of one model submitted at once,
followed until each is generated; prints "name value" lines.

  http2_load.py MODEL N DURATION_S

A job counts as generated at its first event from `generated` on (the
`generated` row itself may be missing: its transition is refused when the
post worker's events arrived first); throughput is N over the time from
the first job's creation to the last job's generation, both stamped by
Postgres, so it measures the inference stage and not the post pool. Reads
the stack's env file ($CADENZA_STATE_DIR/env).
"""
import concurrent.futures
import json
import os
import pathlib
import subprocess
import sys
import time
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parents[2]
ENV = {}
STATE = pathlib.Path(os.environ.get("CADENZA_STATE_DIR", ROOT / ".cadenza"))
for line in (STATE / "env").read_text().splitlines():
    if line.startswith("export "):
        k, _, v = line[7:].partition("=")
        ENV[k] = v.strip("'\"")


def psql(sql):
    return subprocess.run(["psql", ENV["CADENZA_DATABASE_URL"], "-At", "-c", sql],
                          check=True, capture_output=True, text=True).stdout.strip()


def main():
    model, n, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    tenant = f"bench-http2-{os.getpid()}-{int(time.time() * 1000)}"
    key = subprocess.run([str(ROOT / "bin/cadenzactl"), "keys", "create", "--tenant", tenant,
                          "--role", "submitter", "--rate-per-s", "100000", "--burst", "100000"],
                         env=dict(os.environ, **ENV), check=True,
                         capture_output=True, text=True).stdout.strip()

    def submit(i):
        body = json.dumps({"prompt": f"bench {model} {i}, 110 bpm", "model": model,
                           "duration_s": seconds, "seed": 1000 + i, "cache": False}).encode()
        req = urllib.request.Request(ENV["CADENZA_API_URL"] + "/v1/jobs", data=body,
                                     method="POST", headers={"Authorization": f"Bearer {key}",
                                                             "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 202

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        list(ex.map(submit, range(n)))
    deadline = time.monotonic() + 600
    generated = ("'generated','post_started','post_done','needs_review'")
    while time.monotonic() < deadline:
        row = psql(f"SELECT count(*) FILTER (WHERE g IS NOT NULL), "
                   f"count(*) FILTER (WHERE state IN ('failed','canceled')), "
                   f"extract(epoch FROM max(g) - min(created_at)) FROM ("
                   f" SELECT j.created_at, j.state, (SELECT min(e.created_at) FROM job_events e"
                   f"   WHERE e.job_id = j.id AND e.event IN ({generated})) AS g"
                   f" FROM jobs j WHERE j.tenant_id = '{tenant}') t")
        done, failed, span = row.split("|")
        if int(failed):
            sys.exit(f"{failed} {model} jobs failed")
        if int(done) >= n:
            span = float(span)
            print(f"jobs {n}")
            print(f"seconds {span:.2f}")
            print(f"jobs_per_s {n / span:.3f}")
            return
        time.sleep(0.2)
    sys.exit(f"{model}: not all {n} jobs generated within 600 s")


if __name__ == "__main__":
    main()
