#!/usr/bin/env bash
# Pipeline benchmarks (run by make bench via tests/bench/run.sh), through the
# whole real stack: API, Postgres, outbox relay, Kafka, both worker pools,
# the scheduler.
#
#   capacity  jobs per second end to end with 1-second tracks (a burst)
#   overhead  orchestration time per job (end to end minus the workers'
#             own compute) at half that rate; target p50 < 10 ms, p99 < 50 ms
#   soak      CADENZA_SOAK_SECONDS (default 600) at half capacity: throughput,
#             end-to-end p50/p99, RSS of every process before and after;
#             target: no process grows more than 10%
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/local/stack.sh up >/dev/null
SOAK="${CADENZA_SOAK_SECONDS:-600}"

echo "== pipeline: capacity with 1-second tracks (500 jobs at once)"
cap="$(python3 tests/bench/pipeline.py capacity 500 | awk '$1 == "capacity_jobs_per_s" {print $2}')"
printf '  %-40s %8s jobs/s\n' "end to end, one worker per pool" "$cap"
half="$(awk -v c="$cap" 'BEGIN {printf "%.1f", c / 2}')"

echo "== pipeline: orchestration overhead at half capacity ($half jobs/s, 30 s)"
python3 tests/bench/pipeline.py overhead "$half" 30 | awk '
    $1 ~ /overhead_p50/ {printf "  %-40s %8.1f ms   (target < 10 ms)\n", "overhead p50", $2}
    $1 ~ /overhead_p99/ {printf "  %-40s %8.1f ms   (target < 50 ms)\n", "overhead p99", $2}
    $1 ~ /e2e_p50/ {printf "  %-40s %8.1f ms\n", "end to end p50 (1 s track)", $2}
    $1 ~ /e2e_p99/ {printf "  %-40s %8.1f ms\n", "end to end p99 (1 s track)", $2}
    $1 == "not_succeeded" {printf "  %-40s %8d\n", "jobs not succeeded", $2}'

echo "== pipeline: soak at $half jobs/s for $SOAK s"
python3 tests/bench/pipeline.py soak "$half" "$SOAK" | awk '
    $1 == "rate_jobs_per_s" {printf "  %-40s %8.1f jobs/s\n", "throughput", $2}
    $1 == "jobs" {printf "  %-40s %8d\n", "jobs", $2}
    $1 == "e2e_p50_ms" {printf "  %-40s %8.1f ms\n", "end to end p50", $2}
    $1 == "e2e_p99_ms" {printf "  %-40s %8.1f ms\n", "end to end p99", $2}
    $1 == "not_succeeded" {printf "  %-40s %8d\n", "jobs not succeeded", $2}
    $1 ~ /^rss_kib_/ {sub("rss_kib_", "", $1);
        printf "  RSS %-36s %6.1f -> %6.1f MiB (%s; target within +10%%)\n", $1, $2/1024, $3/1024, $4}'
