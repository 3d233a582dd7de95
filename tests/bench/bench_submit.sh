#!/usr/bin/env bash
# Submission benchmark (run by make bench via tests/bench/run.sh).
#
# Submission: how many jobs per second POST /v1/jobs accepts durably (the
# 202 comes after the job and its outbox row are committed), beside pgbench
# committing the same rows with the same statement, one job per
# transaction, at the same concurrency, in the same run. The API shares
# commits between concurrent submissions (group commit, api/committer.h);
# pgbench cannot, which is the point of the comparison. wrk (with
# tests/bench/submit.lua) drives the API at a fixed number of connections
# and reports its rate and latency percentiles. It runs against its own
# database and API process so the benchmark's jobs never reach the workers.
# The key it uses has a rate limit far above what the run can reach.
set -euo pipefail
cd "$(dirname "$0")/../.."
. deploy/local/env.sh
deploy/local/services.sh up >/dev/null

export PGOPTIONS="--client-min-messages=warning"
CONC="${CADENZA_BENCH_CONCURRENCY:-16}"
SECS="${CADENZA_BENCH_SECONDS:-10}"
PORT=$((CADENZA_API_PORT + 10)) # beside this stack's API, never another stack's
ADMIN="postgresql://postgres@127.0.0.1:$CADENZA_PG_PORT/postgres"
DB="postgresql://postgres@127.0.0.1:$CADENZA_PG_PORT/cadenza_bench"

psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS cadenza_bench" -c "CREATE DATABASE cadenza_bench"
CADENZA_DATABASE_URL="$DB" bin/cadenza-api migrate >/dev/null
export CADENZA_API_KEY
CADENZA_API_KEY="$(CADENZA_DATABASE_URL="$DB" bin/cadenzactl keys create --tenant bench --role submitter \
    --rate-per-s 1000000 --burst 1000000 2>/dev/null)"

CADENZA_DATABASE_URL="$DB" CADENZA_API_LISTEN="127.0.0.1:$PORT" CADENZA_API_THREADS="${CADENZA_BENCH_API_THREADS:-$CONC}" \
    CADENZA_LOG_LEVEL=warn bin/cadenza-api >"$CADENZA_LOG_DIR/bench-api.log" 2>&1 &
api_pid=$!
cleanup() {
    kill "$api_pid" 2>/dev/null || true
    wait "$api_pid" 2>/dev/null || true
    psql -q "$ADMIN" -c "DROP DATABASE IF EXISTS cadenza_bench" 2>/dev/null || true
}
trap cleanup EXIT
for _ in $(seq 50); do
    curl -fsS "http://127.0.0.1:$PORT/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done

echo "== submission: POST /v1/jobs vs pgbench, concurrency $CONC, ${SECS} s each"
# Warm up connections and caches, then measure.
wrk -t2 -c"$CONC" -d2s -s tests/bench/submit.lua "http://127.0.0.1:$PORT/v1/jobs" >/dev/null
wrk_out="$(wrk -t2 -c"$CONC" -d"${SECS}s" -s tests/bench/submit.lua --latency \
    "http://127.0.0.1:$PORT/v1/jobs")"
figure() { awk -v k="$1" '/^--- cadenza-bench/{s=1} s && $1==k {print $2}' <<<"$wrk_out"; }
api_rate="$(figure rate)"
accepted="$(psql -At "$DB" -c "SELECT count(*) FROM jobs")"

pg_out="$(pgbench -n -c "$CONC" -j 2 -T "$SECS" -f tests/bench/submit.sql "$DB" 2>&1)"
pg_rate="$(awk '/^tps = / {print $3}' <<<"$pg_out")"

ratio="$(awk -v a="$api_rate" -v b="$pg_rate" 'BEGIN {printf "%.2f", a / b}')"
printf '  %-34s %9.0f jobs/s   p50 %s ms   p99 %s ms   errors %s\n' \
    "cadenza-api POST /v1/jobs" "$api_rate" "$(figure p50_ms)" "$(figure p99_ms)" "$(figure errors)"
printf '  %-34s %9.0f jobs/s\n' "pgbench, same rows, 1 job/txn" "$pg_rate"
printf '  %-34s %9s\n' "ratio (API / pgbench)" "$ratio"
printf '  (%s jobs committed by the API during the run)\n' "$accepted"
printf '  target: ratio >= 1.0 and p99 < 20 ms\n'
