#!/usr/bin/env bash
# Fingerprint matching benchmark (run by make bench via tests/bench/run.sh).
#
# Catalogue lookups: the post worker's inverted index (common/music/fp_index.c)
# holding a synthetic catalogue of 100k three-minute fingerprints, queried
# with 30 s and 180 s masters: half distorted copies of catalogue stretches
# (about 3% of bits flipped, harsher than an MP3 128k re-encode), half
# unrelated. Prints p50/p99 per query beside the 20 ms budget, and recall.
# CADENZA_BENCH_TRACKS overrides the catalogue size for a quick run.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -x build/bench/fp_bench ]] || make -s build/bench/fp_bench
TRACKS="${CADENZA_BENCH_TRACKS:-100000}"

echo "== fingerprint matching: ${TRACKS} synthetic catalogue fingerprints of 180 s"
for q in 30 180; do
    out="$(build/bench/fp_bench "$TRACKS" 180 "$q" 1000)" || { echo "$out"; exit 1; }
    figure() { awk -v k="$1" '{for (i = 1; i < NF; i++) if ($i == k) print $(i + 1)}' <<<"$out"; }
    printf '  %-26s p50 %6s ms   p99 %6s ms   max %6s ms   (budget p99 20 ms)\n' \
        "query ${q} s" "$(figure p50_ms)" "$(figure p99_ms)" "$(figure max_ms)"
    printf '  %-26s copies found %s, unrelated matched %s, index built in %s s, %s MiB\n' "" \
        "$(figure copies_found)" "$(figure unrelated_matched)" "$(figure build_s)" "$(figure rss_mb)"
done
