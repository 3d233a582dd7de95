-- wrk script: POST /v1/playlists, each request different (it excludes a
-- track no other request excludes), so none is answered from the cache;
-- prints the same summary as submit.lua.
dofile("tests/bench/submit.lua")
local base = os.getenv("CADENZA_BENCH_BODY")
local thread_id = 0
local n = 0

function setup(thread)
    thread:set("id", thread_id)
    thread_id = thread_id + 1
end

function request()
    n = n + 1
    local body = base:sub(1, -2) .. string.format(',"exclude":["bench-%d-%d-%d"]}', id, n, os.time())
    return wrk.format("POST", "/v1/playlists", nil, body)
end
