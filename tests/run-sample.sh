#!/usr/bin/env bash
# The end of `make run`: with the stack up, submit a sample job, follow it to
# its end, save the mastered track and its QA report, then follow the logs
# until Ctrl-C, which stops everything and keeps the data (the saved track
# too; `make down` removes it).
set -euo pipefail
cd "$(dirname "$0")/.."
. .cadenza/env

out="$CADENZA_STATE_DIR/out"
mkdir -p "$out"
export CADENZA_API_KEY
CADENZA_API_KEY="$(bin/cadenzactl keys create --tenant demo --role submitter)"

echo "== submitting a sample job"
job_json="$(bin/cadenzactl submit --wait --duration 30 --seed 42 \
    --prompt "warm lo-fi hip hop with rhodes and vinyl drums, 82 bpm, A minor")"
id="$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$job_json")"

master="$out/$id.flac"
report="$out/$id.qa.json"
curl -fsS -H "Authorization: Bearer $CADENZA_API_KEY" \
    "$CADENZA_API_URL/v1/jobs/$id/audio?variant=master&format=flac" -o "$master"
python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["qa"], indent=2))' \
    <<<"$job_json" >"$report"

echo
echo "== job $id succeeded"
echo "mastered track: $master"
echo "QA report:      $report"
python3 - "$report" <<'PY'
import json, sys
qa = json.load(open(sys.argv[1]))
print(f"  integrated {qa['integrated_lufs']} LUFS, true peak {qa['true_peak_dbtp']} dBTP, "
      f"LRA {qa['loudness_range_lu']} LU, {qa['duration_s']} s "
      f"(target {qa['target']['integrated_lufs']} LUFS / {qa['target']['true_peak_dbtp']} dBTP)")
PY
if command -v ffmpeg >/dev/null; then
    ffmpeg -hide_banner -nostats -i "$master" -af ebur128=peak=true -f null - 2>&1 |
        awk '/Summary:/{s=1} s&&/I:/{print "  ffmpeg ebur128 (independent): integrated " $2 " LUFS"}'
fi

echo
echo "== following the logs; Ctrl-C stops the whole stack"
# The whole stack stops even if the terminal is already gone: later signals
# and a broken stdout must not cut the shutdown short.
stop_all() {
    trap '' INT TERM PIPE
    echo 2>/dev/null || true
    deploy/local/stack.sh stop 2>&1 | tee -a "$CADENZA_STATE_DIR/logs/stop.log" 2>/dev/null || true
    exit 0
}
trap stop_all INT TERM
deploy/local/stack.sh logs &
wait
