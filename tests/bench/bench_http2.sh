#!/usr/bin/env bash
# http@2 beside http@1 (run by make bench via tests/bench/run.sh): the same
# jobs through the real stack's inference worker against the same reference
# model server (tests/reference_model.py), whose modelled GPU runs one batch
# at a time and charges a fixed cost per batch (CADENZA_BENCH_BATCH_COST_S,
# default 0.5 s: a forward pass's weights reads, the kernel launches) plus a
# cost per item (CADENZA_BENCH_ITEM_COST_S, default 0.05 s). http@1 sends one
# job per request, so every job pays the fixed cost; http@2 sends the
# pool's batch (up to CADENZA_MAX_BATCH, 16) in one request of at most the
# server's max_batch (8), so the fixed cost is shared.
#
#   throughput  CADENZA_BENCH_HTTP2_JOBS (default 32) jobs of 2 s, submitted at
#               once, per model: jobs per second from the first job's creation
#               to the last job's generation (http2_load.py), and the ratio
#
# The figure depends on the modelled costs, which are stated with it; what
# it shows is that the worker really batches and follows many predictions
# at once. The reference server listens on CADENZA_HTTP_MODEL_PORT, where
# the stack's workers look for it.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/local/stack.sh up >/dev/null
. deploy/local/env.sh
N="${CADENZA_BENCH_HTTP2_JOBS:-32}"
BATCH_COST="${CADENZA_BENCH_BATCH_COST_S:-0.5}"
ITEM_COST="${CADENZA_BENCH_ITEM_COST_S:-0.05}"

out="$(mktemp -d)"
python3 tests/reference_model.py --port "$CADENZA_HTTP_MODEL_PORT" --max-batch 8 \
    --batch-cost-s "$BATCH_COST" --item-cost-s "$ITEM_COST" >"$out/port" 2>/dev/null &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -rf "$out"' EXIT
for _ in $(seq 50); do grep -q listening "$out/port" && break; sleep 0.1; done

echo "== http@2 beside http@1: $N jobs of 2 s at once, one inference worker, the same server"
echo "   (modelled GPU: ${BATCH_COST} s a batch + ${ITEM_COST} s an item, one batch at a time)"
for model in http@1 http@2; do
    python3 tests/bench/http2_load.py "$model" "$N" 2 >"$out/$model" ||
        { echo "  $model: failed"; exit 1; }
    awk -v m="$model" '{ v[$1] = $2 } END {
        printf "  %-8s %7.2f jobs/s   (%d jobs in %.1f s)\n", m, v["jobs_per_s"], v["jobs"], v["seconds"] }' \
        "$out/$model"
done
curl -s "http://127.0.0.1:$CADENZA_HTTP_MODEL_PORT/v1/stats" | python3 -c '
import json, sys
s = json.load(sys.stdin)
sizes = [b["size"] for b in s["batches"] if b["outcome"] == "succeeded"]
print(f"  http@2 batches on the server: {len(sizes)}, sizes {sorted(sizes, reverse=True)}")'
awk '{ v[FILENAME, $1] = $2 } END {
    a = v[ARGV[1], "jobs_per_s"]; b = v[ARGV[2], "jobs_per_s"]
    printf "  ratio (http@2 / http@1)   %.2fx\n", b / a }' "$out/http@1" "$out/http@2"
