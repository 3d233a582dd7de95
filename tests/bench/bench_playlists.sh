#!/usr/bin/env bash
# Playlist latency at a million tracks (run by make bench via
# tests/bench/run.sh), on the real stack: `cadenzactl catalog seed` fills
# the catalogue, the API reads it into memory, then wrk asks for 50-track
# workout playlists for a listener with signals: every request different
# (uncached: taste from Postgres, retrieval over every track, sequencing,
# the answer stored), then one request repeated (answered from Redis).
# Beside them, in the same run: reading a stored playlist back
# (GET /v1/playlists/{id}: authentication and one Postgres read).
# Targets: uncached p99 < 50 ms, cached p99 < 2 ms.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/local/stack.sh up >/dev/null
. "${CADENZA_STATE_DIR:-.cadenza}/env"
TRACKS="${CADENZA_BENCH_TRACKS:-1000000}"
CONC="${CADENZA_BENCH_PLAYLIST_CONCURRENCY:-2}"
SECS="${CADENZA_BENCH_SECONDS:-10}"

echo "== playlists: 50 tracks from a catalogue of $TRACKS, concurrency $CONC, ${SECS} s each"
start=$(date +%s%N)
bin/cadenzactl catalog seed --tracks "$TRACKS" | sed 's/^/  /'
printf '  %-40s %8d ms\n' "seeding (COPY)" $((($(date +%s%N) - start) / 1000000))

tenant="bench-playlists-$(date +%s)"
export CADENZA_API_KEY
CADENZA_API_KEY="$(bin/cadenzactl keys create --tenant "$tenant" --role submitter \
    --rate-per-s 1000000 --burst 1000000 2>/dev/null)"
api() { curl -sS -X POST "$CADENZA_API_URL$1" -H "Authorization: Bearer $CADENZA_API_KEY" \
    -H 'Content-Type: application/json' -d "$2"; }

# Wait until the API's catalogue holds the seeded tracks (the last one is known).
last="s$((TRACKS - 1))"
for _ in $(seq 600); do
    code="$(curl -s -o /dev/null -w '%{http_code}' -X POST "$CADENZA_API_URL/v1/playlists" \
        -H "Authorization: Bearer $CADENZA_API_KEY" -H 'Content-Type: application/json' \
        -d "{\"seed_tracks\":[\"$last\"],\"length_tracks\":1}")"
    [ "$code" = 200 ] && break
    sleep 0.5
done
[ "$code" = 200 ] || { echo "the API never loaded the catalogue"; exit 1; }

# A listener with a history: 200 signals over the catalogue.
signals="$(python3 -c "
import json, random
r = random.Random(7)
kinds = ['like'] * 3 + ['complete'] * 3 + ['play'] * 3 + ['skip']
print(json.dumps({'signals': [{'track_id': f's{r.randrange($TRACKS)}', 'kind': r.choice(kinds)}
                              for _ in range(100)]}))")"
api /v1/users/bench-listener/signals "$signals" >/dev/null
api /v1/users/bench-listener/signals "$signals" >/dev/null

body='{"user":"bench-listener","activity":"workout","length_tracks":50,"novelty":0.3}'
run() { # name, script, url, body
    local out
    out="$(CADENZA_BENCH_BODY="$4" wrk -t"$CONC" -c"$CONC" -d"${SECS}s" -s "$2" --latency \
        "$3" 2>&1)"
    awk -v name="$1" '/^--- cadenza-bench/{s=1} s && $1=="rate"{r=$2} s && $1=="p50_ms"{a=$2}
        s && $1=="p99_ms"{b=$2} s && $1=="errors"{e=$2}
        END {printf "  %-40s %8.0f req/s   p50 %6.2f ms   p99 %6.2f ms   errors %s\n", name, r, a, b, e}' <<<"$out"
}
p99() { awk '{for (i = 1; i < NF; i++) if ($i == "p99") print $(i + 1)}' <<<"$1"; }

uncached="$(run "POST /v1/playlists, uncached" tests/bench/playlist.lua "$CADENZA_API_URL/v1/playlists" "$body")"
echo "$uncached"
id="$(api /v1/playlists "$body" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')"
cached="$(run "POST /v1/playlists, from the cache" tests/bench/submit.lua "$CADENZA_API_URL/v1/playlists" "$body")"
echo "$cached"
read="$(run "GET /v1/playlists/{id} (baseline: a read)" tests/bench/get.lua "$CADENZA_API_URL/v1/playlists/$id" "")"
echo "$read"
printf '  %-40s %8s ms   (target < 50 ms)\n' "uncached p99" "$(p99 "$uncached")"
printf '  %-40s %8s ms   (target < 2 ms)\n' "cached p99" "$(p99 "$cached")"
printf '  %-40s %7.2fx\n' "p99 ratio (cached / read)" \
    "$(awk -v a="$(p99 "$cached")" -v b="$(p99 "$read")" 'BEGIN {print a / b}')"
