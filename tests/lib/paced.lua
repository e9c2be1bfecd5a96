-- tests/lib/paced.lua — wrk script: each connection waits 5 ms between
-- requests (wrk's delay hook), so 16 connections offer about 3,000
-- requests/s. The checks using wrk test that connections survive reloads
-- and that --rate shows live numbers, not overload: unpaced, wrk
-- saturates the 2 shared cores, the director drops under overload, and
-- TCP's backoff turns two losses of one segment into a request slower
-- than wrk's 2 s timeout, which wrk reports like a broken connection.
-- A connection that does break still shows: its requests never finish.
function delay()
  return 5
end
