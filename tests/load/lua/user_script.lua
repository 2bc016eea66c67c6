-- tests/load/lua/user_script.lua: runs a user's own wrk Lua script
-- (tests/load/run --wrk-script FILE.lua, its path in LOAD_USER_SCRIPT) and
-- adds what the harness reads: the LOAD_RESULT line (report.lua), answers
-- outside 2xx and the answers per second (timeline.lua). The user's
-- setup(), init(), request(), response() and done() run as they would
-- alone; setup, response and done are wrapped, so wrk always calls
-- response() (it parses every answer for it, which costs wrk some CPU).
-- The wrapper's own globals are prefixed load_ and tl_, to stay out of the
-- script's way.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")
local timeline = dofile(here .. "timeline.lua")

local script = os.getenv("LOAD_USER_SCRIPT")
if not script then error("user_script.lua: set LOAD_USER_SCRIPT to the script to run") end
dofile(script)

local user_setup, user_response, user_done = setup, response, done
local load_threads = {}

function setup(thread)
  timeline.setup(thread)
  load_threads[#load_threads + 1] = thread
  if user_setup then return user_setup(thread) end
end

function response(status, headers, body)
  if status < 200 or status > 299 then load_non2xx = (load_non2xx or 0) + 1 end
  timeline.count(status)
  if user_response then return user_response(status, headers, body) end
end

function done(summary, latency, requests)
  if user_done then user_done(summary, latency, requests) end
  local bad = 0
  for _, t in ipairs(load_threads) do bad = bad + (t:get("load_non2xx") or 0) end
  report.done(summary, latency, bad)
  timeline.report(load_threads)
end
