-- tests/load/lua/timeline.lua: answers per second over a wrk run, for the
-- harness's timeline chart and timeline.csv. A script that uses it calls
--   timeline.setup(thread)          from its setup(thread)
--   timeline.count(status)          from its response(status, ...)
--   timeline.report(threads)        from its done(...), after report.done
-- and the last prints one line:
--
--   LOAD_TIMELINE 0:2xx:other 1:2xx:other ...
--
-- second 0 being the first second after the run started (the moment the
-- first thread was set up), "other" every answer outside 2xx. Counting needs
-- a response() callback, which costs wrk Lua time per answer: the
-- TechEmpower script counts only when asked (LOAD_TIMELINE=1).
--
-- Each thread counts in its own Lua state (globals tl_ok and tl_other, keyed
-- by second); done() runs in the main state and reads them with thread:get.
local timeline = {}

local ok_ffi, ffi = pcall(require, "ffi")
if ok_ffi then
  -- Defined once per Lua state; a second script loading this module in the
  -- same state finds the type there already.
  pcall(ffi.cdef, "typedef struct { long tv_sec; long tv_nsec; } load_timespec;" ..
                  "int clock_gettime(int clock, load_timespec *now);")
end
local now_ts = ok_ffi and ffi.new("load_timespec") or nil

-- Seconds since the epoch, to the microsecond when LuaJIT's ffi is there
-- (wrk's LuaJIT has it), else whole seconds.
local function now()
  if now_ts and ffi.C.clock_gettime(0, now_ts) == 0 then
    return tonumber(now_ts.tv_sec) + tonumber(now_ts.tv_nsec) / 1e9
  end
  return os.time()
end

local start
function timeline.setup(thread)
  start = start or now()
  thread:set("tl_start", start)
end

function timeline.count(status)
  -- tl_start is set by setup; a script that has none counts from its
  -- first answer.
  if not tl_start then tl_start = now() end
  if not tl_ok then tl_ok, tl_other = {}, {} end
  local second = math.floor(now() - tl_start)
  if status >= 200 and status <= 299 then
    tl_ok[second] = (tl_ok[second] or 0) + 1
  else
    tl_other[second] = (tl_other[second] or 0) + 1
  end
end

function timeline.report(threads)
  local ok, other, last = {}, {}, -1
  for _, t in ipairs(threads) do
    for second, n in pairs(t:get("tl_ok") or {}) do
      ok[second] = (ok[second] or 0) + n
      if second > last then last = second end
    end
    for second, n in pairs(t:get("tl_other") or {}) do
      other[second] = (other[second] or 0) + n
      if second > last then last = second end
    end
  end
  local parts = {}
  for second = 0, last do
    parts[#parts + 1] = string.format("%d:%d:%d", second, ok[second] or 0, other[second] or 0)
  end
  io.write("LOAD_TIMELINE " .. table.concat(parts, " ") .. "\n")
end

return timeline
