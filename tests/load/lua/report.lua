-- tests/load/lua/report.lua: the one machine-readable line every workload
-- script prints at the end of a wrk run, for tests/load/run to parse.
--
--   LOAD_RESULT requests=N duration_s=S rps=R p50_ms=.. p90_ms=.. p99_ms=..
--     p999_ms=.. max_ms=.. connect=.. read=.. write=.. timeout=.. status=.. non2xx=..
--
-- connect/read/write/timeout are wrk's socket errors; status is wrk's own
-- count of answers with a status of 400 or more. non2xx is exact only when
-- the script counts answers itself (a response() callback, which costs wrk
-- time per answer, so the TechEmpower scripts do not); otherwise it is "-".
local report = {}

-- counters(thread) -> the thread's table of extra counters, or nil. Scripts
-- that count per thread keep them in a global named `counts` in each
-- thread's Lua state; wrk's thread:get reads it from the main state.
function report.done(summary, latency, threads, non2xx)
  local ms = function(us) return string.format("%.3f", us / 1000) end
  local secs = summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "LOAD_RESULT requests=%d duration_s=%.3f rps=%.2f p50_ms=%s p90_ms=%s p99_ms=%s p999_ms=%s max_ms=%s " ..
    "connect=%d read=%d write=%d timeout=%d status=%d non2xx=%s\n",
    summary.requests, secs, summary.requests / secs,
    ms(latency:percentile(50)), ms(latency:percentile(90)), ms(latency:percentile(99)),
    ms(latency:percentile(99.9)), ms(latency.max), e.connect, e.read, e.write, e.timeout, e.status,
    non2xx == nil and "-" or tostring(non2xx)))
end

return report
