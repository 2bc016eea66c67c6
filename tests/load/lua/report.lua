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

-- non2xx(threads) -> the answers outside 2xx over every thread, and them by
-- status as "401=3,404=7" (or "none"), sorted. Scripts that count answers
-- keep, in each thread's Lua state, a global `non2xx` (a number) and
-- `statuses` (status -> count); wrk's thread:get reads them from the main
-- state.
function report.non2xx(threads)
  local bad, by_status = 0, {}
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    for status, count in pairs(t:get("statuses") or {}) do
      by_status[status] = (by_status[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(by_status) do parts[#parts + 1] = status .. "=" .. count end
  table.sort(parts)
  return bad, #parts > 0 and table.concat(parts, ",") or "none"
end

function report.done(summary, latency, non2xx)
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
