-- tests/load/lua/scenario.lua: a user's scenario (tests/load/run --scenario
-- FILE): weighted requests, each request picked by weight. The harness
-- checks the user's file and compiles it to a Lua table, whose path is in
-- LOAD_SCENARIO (environment):
--
--   return { { weight = 70, method = "GET", path = "/json", headers = {...}, body = nil }, ... }
--
-- Counts every answer outside 2xx (by status in the LOAD_NOTE line) and the
-- answers per second (timeline.lua).
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")
local timeline = dofile(here .. "timeline.lua")

local path = os.getenv("LOAD_SCENARIO")
if not path then error("scenario.lua: set LOAD_SCENARIO to the compiled scenario") end
local lines = dofile(path)
if #lines == 0 then error("scenario.lua: no requests in " .. path) end

local threads = {}
local next_id = 1
local requests, cumulative, total = {}, {}, 0

function setup(thread)
  timeline.setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

function init(args)
  for i, line in ipairs(lines) do
    -- wrk.format adds Host and Content-Length; a copy, since it writes them
    -- into the table it is given.
    local headers = {}
    for k, v in pairs(line.headers or {}) do headers[k] = v end
    requests[i] = wrk.format(line.method, line.path, headers, line.body)
    total = total + line.weight
    cumulative[i] = total
  end
  math.randomseed(os.time() * 1000 + (id or 0))
  non2xx = 0
  statuses = {}
end

function request()
  local r = math.random(total)
  for i = 1, #cumulative do
    if r <= cumulative[i] then return requests[i] end
  end
  return requests[#requests]
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    statuses[status] = (statuses[status] or 0) + 1
  end
  timeline.count(status)
end

function done(summary, latency, requests)
  local bad, by_status = report.non2xx(threads)
  report.done(summary, latency, bad)
  io.write(string.format("LOAD_NOTE non2xx_by_status=%s\n", by_status))
  timeline.report(threads)
end
