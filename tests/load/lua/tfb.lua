-- tests/load/lua/tfb.lua: one TechEmpower request, repeated; the URL given to
-- wrk is the request. LOAD_PIPELINE (environment, default 1) is the HTTP
-- pipelining depth, as TechEmpower's plaintext test uses (16). It is read
-- when the script loads, since wrk decides before init() whether a script
-- builds its own requests: at depth 1 there is no request() and wrk sends one
-- preformatted request without running Lua per request.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")

local depth = tonumber(os.getenv("LOAD_PIPELINE") or "1") or 1

if depth > 1 then
  local batch
  function request()
    if not batch then batch = string.rep(wrk.format(), depth) end
    return batch
  end
end

function done(summary, latency, requests)
  report.done(summary, latency, nil, nil)
end
