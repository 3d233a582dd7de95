#!/usr/bin/env python3
"""Writes the JSON schema of each version of a CustomResourceDefinition
(its openAPIV3Schema) as OUTDIR/<kind>_<version>.json, lower case, which is
the layout kubeconform's -schema-location template
'OUTDIR/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json' reads.

    crd_to_schema.py CRD.yaml OUTDIR

Objects that list their properties are closed (additionalProperties: false),
so that a misspelt field is an error, as in the strict Kubernetes schemas.
"""
import json
import pathlib
import sys

import yaml

crd = yaml.safe_load(pathlib.Path(sys.argv[1]).read_text())
out = pathlib.Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
kind = crd["spec"]["names"]["kind"].lower()


def strict(node):
    """Closes every object that lists its properties (as kubeconform's strict
    Kubernetes schemas do), unless the CRD keeps unknown fields there."""
    if isinstance(node, dict):
        if ("properties" in node and "additionalProperties" not in node
                and not node.get("x-kubernetes-preserve-unknown-fields")):
            node["additionalProperties"] = False
        for v in node.values():
            strict(v)
    elif isinstance(node, list):
        for v in node:
            strict(v)
    return node


for v in crd["spec"]["versions"]:
    schema = strict(v["schema"]["openAPIV3Schema"])
    (out / f"{kind}_{v['name']}.json").write_text(json.dumps(schema))
