#!/usr/bin/env bash
# Composer + render benchmark (run by make bench via tests/bench/run.sh).
#
# Ours: `cadenza-worker render`, the inference stage's own code without
# Kafka, composes a 180 s piece, writes its MIDI file and renders it with
# FluidSynth into the mix and one stem per instrument group (48 kHz float
# WAV). The figure is seconds of audio per CPU second of that work (the
# SoundFont is loaded once per worker, so its load is reported apart, and so
# is committing the files: fsync and sha256, the artifact store's work).
#
# Baseline: Debian's `fluidsynth -F` renders the very MIDI file ours wrote,
# with the same SoundFont, to a 48 kHz float WAV (the mix only). Its CPU
# time includes starting up and loading the SoundFont, so the same command
# on an empty MIDI file is timed too and subtracted.
#
# Both run pinned to one core; each is run three times and the median kept.
# Override the piece with CADENZA_BENCH_PROMPT, CADENZA_BENCH_SECONDS,
# CADENZA_BENCH_SEED.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=../../deploy/local/env.sh
. deploy/local/env.sh

PROMPT="${CADENZA_BENCH_PROMPT:-warm lo-fi hip hop with rhodes and vinyl drums, 82 bpm, A minor}"
SECS="${CADENZA_BENCH_SECONDS:-180}"
SEED="${CADENZA_BENCH_SEED:-7}"
RUNS=3
SF="$CADENZA_SOUNDFONT"

[[ -x bin/cadenza-worker ]] || { echo "bin/cadenza-worker not built (run make)" >&2; exit 1; }
command -v fluidsynth >/dev/null || { echo "fluidsynth CLI not installed" >&2; exit 1; }
pin=()
command -v taskset >/dev/null && pin=(taskset -c 0)

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

median() { sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
# CPU seconds (user + system) of a command, from GNU time.
cpu_of() { /usr/bin/time -f "%U %S" -o "$work/time" "$@" >/dev/null 2>&1; awk '{print $1 + $2}' "$work/time"; }
field() { python3 -c "import json, sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])" "$@"; }

echo "== composer + render: a ${SECS} s piece vs fluidsynth -F on the same MIDI, one core, median of $RUNS"
echo "   prompt: $PROMPT (seed $SEED)"
ours=() loads=() commits=()
for i in $(seq "$RUNS"); do
    rm -rf "$work/ours"
    "${pin[@]}" bin/cadenza-worker render --prompt "$PROMPT" --duration "$SECS" --seed "$SEED" \
        --stems --out "$work/ours" >"$work/ours.json"
    ours+=("$(field "$work/ours.json" generate_cpu_s)")
    loads+=("$(field "$work/ours.json" load_cpu_s)")
    commits+=("$(field "$work/ours.json" commit_cpu_s)")
done
stems="$(ls "$work/ours" | grep -c '^stem-')"

# An empty MIDI file: the CLI's start-up and SoundFont load alone.
printf 'MThd\x00\x00\x00\x06\x00\x00\x00\x01\x01\xe0MTrk\x00\x00\x00\x04\x00\xff\x2f\x00' \
    >"$work/empty.mid"
fs=() fs0=()
for i in $(seq "$RUNS"); do
    fs+=("$(cpu_of "${pin[@]}" fluidsynth -ni -q -r 48000 -O float -T wav -F "$work/fs.wav" \
        "$SF" "$work/ours/score.mid")")
    fs0+=("$(cpu_of "${pin[@]}" fluidsynth -ni -q -r 48000 -O float -T wav -F "$work/fs0.wav" \
        "$SF" "$work/empty.mid")")
done
fs_secs="$(python3 -c "import wave, sys
import struct
d = open(sys.argv[1], 'rb').read()
i = d.index(b'data')
print(struct.unpack('<I', d[i + 4:i + 8])[0] / (48000 * 2 * 4))" "$work/fs.wav")"

our_cpu="$(printf '%s\n' "${ours[@]}" | median)"
our_load="$(printf '%s\n' "${loads[@]}" | median)"
our_commit="$(printf '%s\n' "${commits[@]}" | median)"
fs_cpu="$(printf '%s\n' "${fs[@]}" | median)"
fs_load="$(printf '%s\n' "${fs0[@]}" | median)"
awk -v secs="$SECS" -v oc="$our_cpu" -v ol="$our_load" -v ocm="$our_commit" -v st="$stems" \
    -v fc="$fs_cpu" -v fl="$fs_load" -v fsecs="$fs_secs" 'BEGIN {
    fr = fc - fl
    printf "  %-46s %7.3f s CPU  %6.1fx realtime\n", "cadenza composer@1 (compose, MIDI, render)", oc, secs / oc
    printf "  %-46s %s stems + mix, 48 kHz float WAV\n", "  writes", st
    printf "  %-46s %7.3f s CPU (once per worker)\n", "  SoundFont load", ol
    printf "  %-46s %7.3f s CPU (fsync, sha256 of every file)\n", "  committing the files", ocm
    printf "  %-46s %7.3f s CPU  %6.1fx realtime (%.1f s of audio)\n", "fluidsynth -F, same MIDI, start-up subtracted", fr, fsecs / fr, fsecs
    printf "  %-46s %7.3f s CPU (start-up and SoundFont load)\n", "  start-up", fl
    printf "  %-46s %7.2f\n", "ratio (ours / fluidsynth -F, x realtime)", (secs / oc) / (fsecs / fr)
}'
