#!/usr/bin/env python3
"""Offline checks of the deployment files that no schema can make (run by
`make lint` after kubeconform and the compose schema):

  - each KEDA ScaledObject's min/max/cooldown/lagThreshold equals the
    pools row the migration seeds for its pool, and it watches that pool's
    consumer group and topic;
  - a Deployment requests nvidia.com/gpu only when it runs a CUDA build
    (annotated cadenza.dev/accelerator: cuda), and then asks for one;
  - every cadenza_ metric the alert rules and the dashboard query is one the
    code defines (a renamed metric would leave a silent alert behind).
"""
import json
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[1]
TOPICS = {"inference": "cadenza.jobs.generate", "post": "cadenza.jobs.post"}
errors = []


def seeded_pools():
    sql = (ROOT / "migrations/0010_pools.sql").read_text()
    rows = re.findall(r"\('([a-z-]+)',\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+),\s*(\d+)\)", sql)
    return {r[0]: dict(min=int(r[1]), max=int(r[2]), desired=int(r[3]), lag=int(r[4]),
                       cooldown=int(r[5])) for r in rows}


def k8s_docs():
    for f in sorted((ROOT / "deploy/k8s").glob("*.yaml")):
        for doc in yaml.safe_load_all(f.read_text()):
            if doc:
                yield f.name, doc


def check_keda():
    pools = seeded_pools()
    if set(pools) != set(TOPICS):
        errors.append(f"migrations/0010_pools.sql seeds {sorted(pools)}, expected {sorted(TOPICS)}")
    seen = set()
    for name, doc in k8s_docs():
        if doc["kind"] == "Deployment":
            spec = doc["spec"]["template"]
            cuda = (spec.get("metadata", {}).get("annotations", {})
                    .get("cadenza.dev/accelerator") == "cuda")
            for c in spec["spec"]["containers"]:
                res = c.get("resources", {})
                gpu = any("nvidia.com/gpu" in res.get(k, {}) for k in ("requests", "limits"))
                if gpu != cuda:
                    errors.append(f"{name}: {c['name']} " + (
                        "requests a GPU but runs no CUDA build" if gpu else
                        "runs a CUDA build but requests no GPU"))
        if doc["kind"] != "ScaledObject":
            continue
        pool = doc["spec"]["scaleTargetRef"]["name"].removeprefix("cadenza-worker-")
        p = pools.get(pool)
        if not p:
            errors.append(f"{name}: ScaledObject for unknown pool {pool}")
            continue
        seen.add(pool)
        spec, trig = doc["spec"], doc["spec"]["triggers"][0]
        want = {"minReplicaCount": p["min"], "maxReplicaCount": p["max"],
                "cooldownPeriod": p["cooldown"]}
        for k, v in want.items():
            if spec.get(k) != v:
                errors.append(f"{name}: {k} is {spec.get(k)}, the {pool} pool has {v}")
        m = trig["metadata"]
        if trig["type"] != "kafka" or m.get("lagThreshold") != str(p["lag"]):
            errors.append(f"{name}: lagThreshold {m.get('lagThreshold')}, the {pool} pool's"
                          f" target_lag_per_replica is {p['lag']}")
        if m.get("consumerGroup") != f"cadenza-{pool}" or m.get("topic") != TOPICS[pool]:
            errors.append(f"{name}: must watch group cadenza-{pool} on {TOPICS[pool]}")
    for pool in set(TOPICS) - seen:
        errors.append(f"deploy/k8s: no ScaledObject for the {pool} pool")


def defined_metrics():
    names = set()
    for f in list(ROOT.glob("*/*.c")):
        names |= set(re.findall(r'"(cadenza_[a-z0-9_]+)"', f.read_text()))
    out = set(names)
    for n in names:  # a histogram's series
        out |= {n + "_bucket", n + "_sum", n + "_count"}
    return out


def check_metric_names():
    known = defined_metrics()
    used = {}
    for f in (ROOT / "deploy/prometheus").glob("*.yml"):
        for group in yaml.safe_load(f.read_text())["groups"]:
            for rule in group["rules"]:
                for n in re.findall(r"\bcadenza_[a-z0-9_]+", rule["expr"]):
                    used.setdefault(n, f.name)
    for f in (ROOT / "deploy/grafana").glob("*.json"):
        dash = json.loads(f.read_text())
        for panel in dash["panels"]:
            for t in panel.get("targets", []):
                for n in re.findall(r"\bcadenza_[a-z0-9_]+", t["expr"]):
                    used.setdefault(n, f.name)
    if not used:
        errors.append("no cadenza_ metric used by the alerts or the dashboard")
    for n, where in sorted(used.items()):
        if n not in known:
            errors.append(f"{where}: {n} is not a metric the code defines")


check_keda()
check_metric_names()
for e in errors:
    print(f"lint: {e}", file=sys.stderr)
sys.exit(1 if errors else 0)
