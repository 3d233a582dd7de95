#!/usr/bin/env bash
# Offline evaluation of playlists (run by make bench via tests/bench/run.sh).
#
# 20,000 synthetic tracks and 500 synthetic listeners with hidden tastes
# (cli/synth_catalog.c); each listener's history is made from the
# hidden taste alone, a fifth of their likes is held out, and a 50-track
# playlist from the engine (common/playlist/engine.c) is scored beside the
# popularity-only baseline under the same sequencing rules: hit rate and
# recall of held-out likes, hidden affinity, diversity, smoothness; then
# the energy arc's fit per activity. See tests/bench/pl_eval.c for how the
# listeners are made. Deterministic; fails when any transition breaks the
# tempo, key or repeat rules. CADENZA_BENCH_TRACKS and
# CADENZA_BENCH_LISTENERS override the sizes for a quick run.
set -euo pipefail
cd "$(dirname "$0")/../.."
[[ -x build/bench/pl_eval ]] || make -s build/bench/pl_eval
build/bench/pl_eval "${CADENZA_BENCH_TRACKS:-20000}" "${CADENZA_BENCH_LISTENERS:-500}"
