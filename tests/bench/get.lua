-- wrk script: GET the URL given, then print the figures the bench scripts
-- read (the same summary as submit.lua).
dofile("tests/bench/submit.lua")
wrk.method = "GET"
wrk.body = nil
wrk.headers["Content-Type"] = nil
