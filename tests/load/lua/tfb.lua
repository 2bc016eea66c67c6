-- tests/load/lua/tfb.lua: one TechEmpower request, repeated; the URL given to
-- wrk is the request. LOAD_PIPELINE (environment, default 1) is the HTTP
-- pipelining depth, as TechEmpower's plaintext test uses (16). It is read
-- when the script loads, since wrk decides before init() whether a script
-- builds its own requests: at depth 1 there is no request() and wrk sends one
-- preformatted request without running Lua per request.
--
-- LOAD_TIMELINE=1 (environment) counts answers per second (timeline.lua)
-- and answers outside 2xx, through a response() callback: Lua for every
-- answer, which costs wrk CPU on the cores the server uses, so only when
-- asked (tests/load/run --timeline).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")
local timeline = dofile(here .. "timeline.lua")

local depth = tonumber(os.getenv("LOAD_PIPELINE") or "1") or 1
local counting = os.getenv("LOAD_TIMELINE") == "1"
local threads = {}

if depth > 1 then
  local batch
  function request()
    if not batch then batch = string.rep(wrk.format(), depth) end
    return batch
  end
end

if counting then
  function setup(thread)
    timeline.setup(thread)
    threads[#threads + 1] = thread
  end

  function response(status, headers, body)
    if status < 200 or status > 299 then non2xx = (non2xx or 0) + 1 end
    timeline.count(status)
  end
end

function done(summary, latency, requests)
  if not counting then
    report.done(summary, latency, nil)
    return
  end
  local bad = 0
  for _, t in ipairs(threads) do bad = bad + (t:get("non2xx") or 0) end
  report.done(summary, latency, bad)
  timeline.report(threads)
end
