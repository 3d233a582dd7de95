#!/usr/bin/env bash
# tools/lint.sh (make lint): validates the deployment files, offline once
# the tools are in place.
#
#   Kubernetes  kubeconform -strict on deploy/k8s, against the Kubernetes
#               JSON schemas that the PyPI package kubernetes-validate ships
#               (made standalone by tools/k8s_schemas.py: kubeconform cannot
#               follow their shared definitions file), and against KEDA's ScaledObject
#               schema, converted from the CRD in KEDA's Go module
#               (tools/crd_to_schema.py).
#   compose     deploy/docker/compose.yaml against the Compose
#               specification's JSON schema, from the compose-go Go module,
#               with python's jsonschema.
#   Prometheus  promtool check rules on deploy/prometheus, when promtool is
#               installed (built from the Prometheus Go module: see
#               docs/operations.md).
#   the rest    tools/lint_deploy.py: KEDA settings equal the pools' seed,
#               every metric alerts and dashboards query exists.
#
# kubeconform comes from the Go module proxy (go install), the schemas from
# PyPI and the Go module proxy; each is fetched once and cached (Go's module
# cache, pip's site-packages).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

K8S_VERSION=1.30.0
KUBECONFORM=github.com/yannh/kubeconform/cmd/kubeconform@v0.8.0
KEDA=github.com/kedacore/keda/v2@v2.16.1
COMPOSE_GO=github.com/compose-spec/compose-go/v2@v2.16.2
GOBIN="$(go env GOPATH)/bin"
OUT=build/lint

log() { printf '[lint] %s\n' "$*"; }

module_dir() { go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])'; }

[[ -x "$GOBIN/kubeconform" ]] || { log "installing $KUBECONFORM"; go install "$KUBECONFORM"; }
if ! python3 -c 'import kubernetes_validate, jsonschema, yaml' 2>/dev/null; then
    log "installing kubernetes-validate (Kubernetes JSON schemas)"
    python3 -m pip install -q kubernetes-validate jsonschema pyyaml 2>/dev/null ||
        python3 -m pip install -q --break-system-packages kubernetes-validate jsonschema pyyaml
fi
mkdir -p "$OUT/k8s" "$OUT/crd"
python3 tools/k8s_schemas.py "$K8S_VERSION" "$OUT/k8s" deploy/k8s/*.yaml
python3 tools/crd_to_schema.py "$(module_dir "$KEDA")/config/crd/bases/keda.sh_scaledobjects.yaml" "$OUT/crd"

log "kubeconform (Kubernetes $K8S_VERSION, strict) on deploy/k8s"
"$GOBIN/kubeconform" -strict -summary -kubernetes-version "$K8S_VERSION" \
    -schema-location "$OUT/k8s/{{ .ResourceKind }}{{ .KindSuffix }}.json" \
    -schema-location "$OUT/crd/{{ .ResourceKind }}_{{ .ResourceAPIVersion }}.json" \
    deploy/k8s

log "compose specification schema on deploy/docker/compose.yaml"
COMPOSE_SCHEMA="$(module_dir "$COMPOSE_GO")/schema/compose-spec.json" python3 - <<'PY'
import json, os, sys
import jsonschema, yaml
schema = json.load(open(os.environ["COMPOSE_SCHEMA"]))
doc = yaml.safe_load(open("deploy/docker/compose.yaml"))
errors = sorted(jsonschema.validators.validator_for(schema)(schema).iter_errors(doc), key=str)
for e in errors:
    print(f"compose.yaml: {'/'.join(map(str, e.absolute_path))}: {e.message}", file=sys.stderr)
sys.exit(1 if errors else 0)
PY

if command -v promtool >/dev/null || [[ -x "$GOBIN/promtool" ]]; then
    log "promtool check rules"
    "$(command -v promtool || echo "$GOBIN/promtool")" check rules deploy/prometheus/*.yml
else
    log "promtool not installed: alert rules checked for metric names only (docs/operations.md says how to build it)"
fi

log "pools, GPU request, metric names"
python3 tools/lint_deploy.py
log "ok"
