#!/usr/bin/env bash
# Webhook benchmarks (run by make bench via tests/bench/run.sh), against the
# local stack's own scheduler and a fast local receiver
# (tests/bench/wh_receiver.c, libmicrohttpd, checking every signature).
#
#   throughput  N deliveries (default 20000) of a realistic job.succeeded
#               body, due at once: deliveries per second from the first
#               arrival to the last one recorded as succeeded in Postgres.
#               Baseline: wrk POSTing the same body with the same headers to
#               the same receiver at the same concurrency (16, the
#               dispatcher's default per receiver). Target >= 2000/s.
#   latency     jobs finishing at RATE per second (default 200) for S
#               seconds (default 30): post_done events produced to Kafka the
#               way post workers do (tests/bench/wh_events.c), applied by
#               the scheduler, which enqueues the webhooks in the same
#               transaction. Completion-to-delivery p50/p99, from the
#               worker's event to the receiver's arrival; beside it the part
#               before the state change (the baseline: what the pipeline
#               cost without webhooks). Target p99 < 100 ms.
#
# CADENZA_BENCH_WEBHOOKS (N), CADENZA_BENCH_WEBHOOK_RATE (RATE) and
# CADENZA_BENCH_WEBHOOK_SECONDS (S) change the sizes. Latency is measured
# first, before the throughput burst leaves vacuum work behind.
set -euo pipefail
cd "$(dirname "$0")/../.."
deploy/local/stack.sh up >/dev/null
. deploy/local/env.sh

export PGOPTIONS="--client-min-messages=warning"
N="${CADENZA_BENCH_WEBHOOKS:-20000}"
RATE="${CADENZA_BENCH_WEBHOOK_RATE:-200}"
SECS="${CADENZA_BENCH_WEBHOOK_SECONDS:-30}"
PORT=$((CADENZA_API_PORT + 2)) # beside the API's and the model server's ports
DB="$CADENZA_DATABASE_URL"
TMP="$(mktemp -d)"
TENANT="bench-webhooks-$$"
q() { psql -X -q -At "$DB" "$@"; }

rx_pid=""
cleanup() {
    [[ -n "$rx_pid" ]] && kill "$rx_pid" 2>/dev/null && wait "$rx_pid" 2>/dev/null || true
    # The benchmark's rows are of no use afterwards.
    q <<SQL || true
DELETE FROM webhook_attempts a USING webhook_deliveries d
 WHERE a.delivery_id = d.id AND d.tenant_id = '$TENANT';
DELETE FROM webhook_deliveries WHERE tenant_id = '$TENANT';
DELETE FROM webhook_endpoints WHERE tenant_id = '$TENANT';
DELETE FROM webhook_secrets WHERE tenant_id = '$TENANT';
DELETE FROM job_events e USING jobs j WHERE e.job_id = j.id AND j.tenant_id = '$TENANT';
DELETE FROM artifacts a USING jobs j WHERE a.job_id = j.id AND j.tenant_id = '$TENANT';
DELETE FROM qa_reports r USING jobs j WHERE r.job_id = j.id AND j.tenant_id = '$TENANT';
DELETE FROM usage_ledger WHERE tenant_id = '$TENANT';
DELETE FROM jobs WHERE tenant_id = '$TENANT';
DELETE FROM api_keys WHERE tenant_id = '$TENANT';
DELETE FROM tenants WHERE id = '$TENANT';
SQL
    rm -rf "$TMP"
}
trap cleanup EXIT

wait_for() { # SQL that counts, the count wanted, seconds
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        [[ "$(q -c "$1")" -ge "$2" ]] && return 0
        sleep 0.1
    done
    echo "!! only $(q -c "$1") of $2 after $3 s" >&2
    return 1
}

# Start from a settled database: the benchmark before this one (make bench
# runs them in name order) may have left tens of thousands of new rows whose
# vacuum would otherwise run during this one (1,500 deliveries/s instead of
# 4,000 when measured right after bench_submit.sh).
q -c "VACUUM (ANALYZE) jobs, job_events, outbox, webhook_deliveries, webhook_attempts"

KEY="$(bin/cadenzactl keys create --tenant "$TENANT" --role submitter)"
SECRET="$(curl -fsS -X POST "$CADENZA_API_URL/v1/webhook-endpoints" \
    -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
    -d "{\"url\": \"http://127.0.0.1:$PORT/hook\"}" |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["secret"])')"
build/bench/wh_receiver "$PORT" "$TMP/received.txt" "$SECRET" >"$TMP/receiver.out" &
rx_pid=$!
for _ in $(seq 50); do
    port_open "$PORT" && break
    sleep 0.1
done

# The canonical request of the benchmark's jobs, like the pipeline's.
REQ='{"duration_s": 30, "loudness": {"target_lufs": -14, "true_peak_dbtp": -1}, "metadata": {"order": "bench"}, "model": "composer@1", "outputs": ["flac"], "prompt": "warm lo-fi hip hop with rhodes, 82 bpm", "quality": "final", "review": "auto", "seed": 7, "stems": false, "controls": {"genre": "lofi", "moods": ["warm"], "tempo_bpm": 82, "duration_s": 30, "instruments": ["rhodes"]}, "ignored": []}'

# Latency first, on a quiet database: the throughput run leaves work behind
# (autovacuum of 20,000 updated rows, a checkpoint) that would land on it.
M=$((RATE * SECS))
q -c "INSERT INTO jobs (id, tenant_id, state, request, request_hash, model, seed, trace_id,
                        started_at, stage)
      SELECT gen_random_uuid(), '$TENANT', 'postprocessing', '$REQ', md5(g::text), 'composer@1',
             g, md5(g::text), now(), 'post'
        FROM generate_series(1, $M) g"
q -c "SELECT id FROM jobs WHERE tenant_id = '$TENANT' AND state = 'postprocessing'" >"$TMP/ids.txt"
events_out="$(build/bench/wh_events "$CADENZA_KAFKA_BROKERS" "$RATE" "$TMP/ids.txt" \
    "$TMP/events.txt")"
wait_for "SELECT count(*) FROM webhook_deliveries d JOIN jobs j ON j.id = d.job_id
           WHERE j.tenant_id = '$TENANT' AND d.state = 'succeeded'" "$M" 120

# A finished job (a master, QA) whose job.succeeded body every throughput
# delivery carries.
JOB="$(q -c "INSERT INTO jobs (id, tenant_id, state, request, request_hash, model, seed,
                               trace_id, started_at, finished_at, progress)
             VALUES (gen_random_uuid(), '$TENANT', 'succeeded', '$REQ', md5('$TENANT'),
                     'composer@1', 7, md5('$TENANT'), now(), now(), 100) RETURNING id")"
q -c "INSERT INTO artifacts (job_id, attempt, kind, name, format, uri, sha256, bytes, duration_s)
      VALUES ('$JOB', 1, 'master', 'master', 'flac', 'file:///bench/master.flac',
              repeat('ab', 32), 2457600, 30);
      INSERT INTO qa_reports (job_id, attempt, report)
      VALUES ('$JOB', 1, '{\"integrated_lufs\": -14.0, \"true_peak_dbtp\": -1.1,
              \"loudness_range_lu\": 5.2, \"verdict\": \"pass\", \"flags\": []}')" >/dev/null
q -c "SELECT json_build_object('type', 'job.succeeded', 'timestamp', cz_ts(now()),
             'sequence', 1, 'data', cz_job_json(j))::text FROM jobs j WHERE j.id = '$JOB'" \
    >"$TMP/body.json"
BODY_BYTES="$(wc -c <"$TMP/body.json")"

wrk_out="$(CADENZA_WEBHOOK_BODY="$TMP/body.json" wrk -t1 -c16 -d5s -s tests/bench/wh_post.lua \
    "http://127.0.0.1:$PORT/hook")"
wrk_rate="$(awk '/^--- cadenza-bench/{s=1} s && $1=="rate" {print $2}' <<<"$wrk_out")"

q -v body="$(cat "$TMP/body.json")" <<SQL
INSERT INTO webhook_deliveries (id, tenant_id, job_id, endpoint_id, url, event, sequence,
                                payload, next_attempt_at)
SELECT gen_random_uuid(), '$TENANT', '$JOB', e.id, e.url, 'job.succeeded', 1, :'body', now()
  FROM webhook_endpoints e, generate_series(1, $N)
 WHERE e.tenant_id = '$TENANT';
SQL
wait_for "SELECT count(*) FROM webhook_deliveries WHERE job_id = '$JOB' AND state = 'succeeded'" \
    "$N" 300

kill "$rx_pid"
wait "$rx_pid" || true
rx_pid=""
read -r _ received _ bad_sigs <"$TMP/receiver.out"

figures="$(q <<SQL
CREATE TEMP TABLE rx (id text, us bigint);
CREATE TEMP TABLE tx (job_id uuid, us bigint);
\copy rx FROM '$TMP/received.txt' WITH (DELIMITER ' ')
\copy tx FROM '$TMP/events.txt' WITH (DELIMITER ' ')
CREATE TEMP TABLE first AS SELECT id, min(us) AS us FROM rx GROUP BY id;
SELECT 'throughput', count(*),
       round((count(*) / (extract(epoch FROM max(d.delivered_at)) - min(f.us) / 1e6))::numeric, 0)
  FROM webhook_deliveries d JOIN first f ON f.id = d.id::text
 WHERE d.job_id = '$JOB' AND d.state = 'succeeded';
WITH l AS (
  SELECT (f.us - t.us) / 1000.0 AS total_ms,
         (extract(epoch FROM j.finished_at) * 1e6 - t.us) / 1000.0 AS apply_ms,
         extract(epoch FROM a.started_at - j.finished_at) * 1000 AS dispatch_ms,
         j.finished_at
    FROM webhook_deliveries d JOIN first f ON f.id = d.id::text
    JOIN jobs j ON j.id = d.job_id JOIN tx t ON t.job_id = d.job_id
    JOIN webhook_attempts a ON a.delivery_id = d.id AND a.attempt = 1)
SELECT 'latency', count(*),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY total_ms)::numeric, 1),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY total_ms)::numeric, 1),
       round(max(total_ms)::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY apply_ms)::numeric, 1),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY apply_ms)::numeric, 1),
       round((count(*) / nullif(extract(epoch FROM max(finished_at) - min(finished_at)), 0))
             ::numeric, 1),
       round(percentile_cont(0.5) WITHIN GROUP (ORDER BY dispatch_ms)::numeric, 1),
       round(percentile_cont(0.99) WITHIN GROUP (ORDER BY dispatch_ms)::numeric, 1)
  FROM l;
SQL
)"
read -r _ tp_n tp_rate <<<"$(tr '|' ' ' <<<"$(grep '^throughput' <<<"$figures")")"
read -r _ l_n l50 l99 lmax a50 a99 done_rate d50 d99 \
    <<<"$(tr '|' ' ' <<<"$(grep '^latency' <<<"$figures")")"

echo "== webhooks: completion to delivery, jobs finishing at $RATE/s for $SECS s"
printf '  %-44s %9s jobs/s   (%s)\n' "jobs finishing" "$done_rate" "$(tr -d '\n' <<<"$events_out")"
printf '  %-44s %9s ms p50  %7s ms p99\n' "baseline: event produced -> job state changed" "$a50" "$a99"
printf '  %-44s %9s ms p50  %7s ms p99  (max %s; target p99 < 100)\n' \
    "event produced -> webhook received" "$l50" "$l99" "$lmax"
printf '  %-44s %9s ms p50  %7s ms p99\n' "  of which state change -> attempt sent" "$d50" "$d99"
printf '  (%s of %s jobs delivered)\n' "$l_n" "$M"
echo "== webhooks: deliveries per second to a local receiver ($N deliveries, $BODY_BYTES-byte body)"
printf '  %-44s %9s deliveries/s   (target >= 2000)\n' "cadenza dispatcher, delivered and recorded" \
    "$tp_rate"
printf '  %-44s %9.0f requests/s\n' "wrk, same body, same receiver, 16 connections" "$wrk_rate"
printf '  %-44s %9s\n' "ratio (dispatcher / wrk)" \
    "$(awk -v a="$tp_rate" -v b="$wrk_rate" 'BEGIN {printf "%.2f", a / b}')"
printf '  (%s of %s delivered; the receiver got %s requests, %s with a bad signature: wrk'"'"'s)\n' \
    "$tp_n" "$N" "$received" "$bad_sigs"
printf '  (load average %s on %s cores at the end)\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "$(nproc)"
