-- wrk script for the webhook benchmark's baseline: POSTs the very body the
-- dispatcher sends (read from $CADENZA_WEBHOOK_BODY) with the same headers,
-- then prints the figures bench_webhooks.sh reads after a marker.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["User-Agent"] = "Cadenza-Webhooks/1"
wrk.headers["webhook-id"] = "baseline"
wrk.headers["webhook-timestamp"] = "1614265330"
wrk.headers["webhook-signature"] = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
local f = assert(io.open(os.getenv("CADENZA_WEBHOOK_BODY"), "rb"))
wrk.body = f:read("*a")
f:close()

function done(summary, latency, requests)
    local seconds = summary.duration / 1e6
    local bad = summary.errors.status + summary.errors.connect + summary.errors.read
        + summary.errors.write + summary.errors.timeout
    io.write("--- cadenza-bench\n")
    io.write(string.format("requests %d\n", summary.requests))
    io.write(string.format("rate %.1f\n", summary.requests / seconds))
    io.write(string.format("errors %d\n", bad))
end
