#!/usr/bin/env bash
# make bench: runs every tests/bench/bench_*.sh in name order. Each prints
# its figure beside a baseline measured in the same run, and the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
status=0
for bench in tests/bench/bench_*.sh; do
    echo
    "$bench" || { echo "!! $bench failed"; status=1; }
done
exit "$status"
