#!/usr/bin/env python3
"""Makes standalone Kubernetes JSON schemas for kubeconform from the ones
the PyPI package kubernetes-validate ships.

kubernetes-validate keeps, per Kubernetes version, one file per kind plus a
shared _definitions.json that the kinds reference as
"/api/_definitions.json#/$defs/NAME", a path kubeconform cannot resolve.
For each kind used in the given manifests this writes
OUTDIR/<kind><suffix>.json with the definitions it reaches copied into its
own $defs and the references rewritten to "#/$defs/NAME" (definitions refer
to each other that way already).

    k8s_schemas.py VERSION OUTDIR MANIFEST...    (VERSION e.g. 1.30.0)
"""
import json
import os
import pathlib
import sys

import kubernetes_validate
import yaml

version, out, manifests = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3:]
src = (pathlib.Path(os.path.dirname(kubernetes_validate.__file__)) / "kubernetes-json-schema"
       / f"v{version}-local-strict")
defs = json.loads((src / "_definitions.json").read_text())["$defs"]
PREFIXES = ("/api/_definitions.json#/$defs/", "#/$defs/")  # in a kind's file; in _definitions


def rewrite(node, reached):
    if isinstance(node, dict):
        ref = node.get("$ref")
        prefix = next((p for p in PREFIXES if isinstance(ref, str) and ref.startswith(p)), None)
        if prefix:
            name = ref[len(prefix):]
            node["$ref"] = "#/$defs/" + name
            if name not in reached:
                reached[name] = None
                reached[name] = rewrite(json.loads(json.dumps(defs[name])), reached)
        for k, v in node.items():
            if k != "$ref":
                rewrite(v, reached)
    elif isinstance(node, list):
        for v in node:
            rewrite(v, reached)
    return node


out.mkdir(parents=True, exist_ok=True)
kinds = set()
for m in manifests:
    for doc in yaml.safe_load_all(pathlib.Path(m).read_text()):
        if doc and "/" not in doc["apiVersion"].replace("apps/", "").replace("policy/", ""):
            group, _, ver = doc["apiVersion"].rpartition("/")
            suffix = f"-{group.split('.')[0]}-{ver}" if group else f"-{ver}"
            kinds.add(doc["kind"].lower() + suffix)
for k in sorted(kinds):
    schema = json.loads((src / f"{k}.json").read_text())
    reached = {}
    rewrite(schema, reached)
    schema["$defs"] = reached
    schema.pop("$id", None)  # resolve references within this file
    (out / f"{k}.json").write_text(json.dumps(schema))
