-- wrk script: POST /v1/jobs with a small valid request (or the body in
-- CADENZA_BENCH_BODY), then print the figures the bench scripts read (one
-- "key value" per line after a marker).
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("CADENZA_API_KEY")
wrk.body = os.getenv("CADENZA_BENCH_BODY") or '{"prompt":"benchmark: short ambient pad","duration_s":5}'

function done(summary, latency, requests)
    local seconds = summary.duration / 1e6
    local bad = summary.errors.status + summary.errors.connect + summary.errors.read
        + summary.errors.write + summary.errors.timeout
    io.write("--- cadenza-bench\n")
    io.write(string.format("requests %d\n", summary.requests))
    io.write(string.format("rate %.1f\n", summary.requests / seconds))
    io.write(string.format("p50_ms %.2f\n", latency:percentile(50) / 1000))
    io.write(string.format("p99_ms %.2f\n", latency:percentile(99) / 1000))
    io.write(string.format("errors %d\n", bad))
end
