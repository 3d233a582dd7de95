#!/usr/bin/env bash
# Prompt-cache benchmark (run by make bench via tests/bench/run.sh), on the
# real stack: one seeded job is generated, then wrk repeats the identical
# request (each repeat a new job, answered from the cache: succeeded at
# once, sharing the first job's files, with its row, history and ledger row
# committed durably) at a fixed concurrency. In the same run, beside it:
# reading that job (GET /v1/jobs/{id}: authentication and one query, no
# commit), the least any answer can cost. Target: cached p99 < 5 ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/local/stack.sh up >/dev/null
. "${CADENZA_STATE_DIR:-.cadenza}/env"
CONC="${CADENZA_BENCH_CACHE_CONCURRENCY:-1}"
SECS="${CADENZA_BENCH_SECONDS:-10}"
tenant="bench-cache-$(date +%s)"
export CADENZA_API_KEY
CADENZA_API_KEY="$(bin/cadenzactl keys create --tenant "$tenant" --role submitter \
    --rate-per-s 1000000 --burst 1000000 2>/dev/null)"
body='{"prompt":"benchmark: cached string pad","duration_s":4,"seed":6060}'
first="$(curl -fsS -X POST "$CADENZA_API_URL/v1/jobs" -H "Authorization: Bearer $CADENZA_API_KEY" \
    -H 'Content-Type: application/json' -d "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
bin/cadenzactl watch "$first" >/dev/null 2>&1 || { echo "the first job did not succeed"; exit 1; }
sleep 0.5 # the scheduler stores the entry as the job succeeds; let it settle

run() { # name, method, url, body
    local out
    out="$(CADENZA_BENCH_BODY="$4" wrk -t1 -c"$CONC" -d"${SECS}s" -s tests/bench/submit.lua \
        --latency -H "X-Bench: $1" "$3" 2>&1)"
    awk -v name="$1" '/^--- cadenza-bench/{s=1} s && $1=="rate"{r=$2} s && $1=="p50_ms"{a=$2}
        s && $1=="p99_ms"{b=$2} s && $1=="errors"{e=$2}
        END {printf "  %-40s %8.0f req/s   p50 %6.2f ms   p99 %6.2f ms   errors %s\n", name, r, a, b, e}' <<<"$out"
}
echo "== prompt cache: repeats of a seeded request, concurrency $CONC, ${SECS} s each"
cached="$(run "POST /v1/jobs, answered from the cache" POST "$CADENZA_API_URL/v1/jobs" "$body")"
echo "$cached"
hits="$(psql -At "$CADENZA_DATABASE_URL" -c "SELECT count(*) FROM jobs j JOIN tenants t ON t.id = j.tenant_id
    WHERE t.id = '$tenant' AND j.cached_from = '$first'")"
read="$(wrk -t1 -c"$CONC" -d"${SECS}s" --latency -s tests/bench/get.lua \
    "$CADENZA_API_URL/v1/jobs/$first" 2>&1 |
    awk '/^--- cadenza-bench/{s=1} s && $1=="rate"{r=$2} s && $1=="p50_ms"{a=$2} s && $1=="p99_ms"{b=$2}
        END {printf "  %-40s %8.0f req/s   p50 %6.2f ms   p99 %6.2f ms\n", "GET /v1/jobs/{id} (baseline: a read)", r, a, b}')"
echo "$read"
p99_read="$(awk '{for (i = 1; i < NF; i++) if ($i == "p99") print $(i + 1)}' <<<"$read")"
p99_cached="$(awk '{for (i = 1; i < NF; i++) if ($i == "p99") print $(i + 1)}' <<<"$cached")"
printf '  %-40s %8s\n' "cache hits recorded" "$hits"
printf '  %-40s %8s ms   (target < 5 ms)\n' "cached p99" "$p99_cached"
printf '  %-40s %7.2fx\n' "p99 ratio (cached / read)" \
    "$(awk -v a="$p99_cached" -v b="$p99_read" 'BEGIN {print a / b}')"
