-- tests/load/lua/conduit.lua: a realistic RealWorld "Conduit" mix against
-- /api (the paths and bodies of /work/shared/realworld/openapi.yml, the
-- RealWorld spec 1.1.0), from the data set tests/load/seed_conduit.py
-- prepared.
--
-- LOAD_SEED (environment): the seed file, lines of
--   users_total N WIDTH          (optional: users user00001..userN of
--                                 `shoal-node seed`, names WIDTH digits wide)
--   user USERNAME EMAIL PASSWORD TOKEN   (users with a session)
--   article SLUG
--   tag TAG
-- LOAD_CONDUIT_MIX (environment, optional): weights to change, as
--   "login=0,register=0,add_comment=100" (names from MIX below).
--
-- Every request picks an operation by weight (per mille of all requests)
-- and, where the operation needs a session, a seeded user's token
-- (`Authorization: Token ...`); reads are sent with a session half of the
-- time, as a logged-in reader would (the answer then carries per-viewer
-- fields). Reading is common, commenting and favouriting happen sometimes,
-- logging in and registering rarely: each costs the server an argon2id
-- hash, tens of milliseconds of CPU. Registrations use names unique to the
-- run and thread. Every answer outside 2xx counts as an error.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")
local timeline = dofile(here .. "timeline.lua")

-- weight (per mille), name
local MIX = {
  { 266, "list_articles" },      -- GET /api/articles?limit=20&offset=N
  {  60, "articles_by_tag" },    -- GET /api/articles?tag=T
  {  40, "articles_by_author" }, -- GET /api/articles?author=U
  {  20, "articles_favorited" }, -- GET /api/articles?favorited=U
  { 200, "get_article" },        -- GET /api/articles/SLUG
  { 100, "get_comments" },       -- GET /api/articles/SLUG/comments
  {  60, "get_tags" },           -- GET /api/tags
  {  50, "get_profile" },        -- GET /api/profiles/U
  {  50, "feed" },               -- GET /api/articles/feed (session)
  {  50, "current_user" },       -- GET /api/user (session)
  {  40, "add_comment" },        -- POST /api/articles/SLUG/comments (session)
  {  40, "favorite" },           -- POST /api/articles/SLUG/favorite (session)
  {  20, "unfavorite" },         -- DELETE /api/articles/SLUG/favorite (session)
  {   2, "login" },              -- POST /api/users/login
  {   2, "register" },           -- POST /api/users
}

local users, slugs, tags = {}, {}, {}
local users_total, name_width = 0, 5
local total = 0

local function load_seed()
  local path = os.getenv("LOAD_SEED")
  if not path then error("conduit.lua: set LOAD_SEED to the seed file") end
  local f = assert(io.open(path, "r"))
  for line in f:lines() do
    local kind, a, b, c, d = line:match("^(%S+)%s*(%S*)%s*(%S*)%s*(%S*)%s*(%S*)")
    if kind == "user" then
      users[#users + 1] = { name = a, email = b, password = c, token = d }
    elseif kind == "article" then
      slugs[#slugs + 1] = a
    elseif kind == "tag" then
      tags[#tags + 1] = a
    elseif kind == "users_total" then
      users_total, name_width = tonumber(a), tonumber(b)
    end
  end
  f:close()
  if #users == 0 or #slugs == 0 then error("conduit.lua: no users or articles in " .. path) end
  if #tags == 0 then tags[1] = "load" end
end

local function apply_mix_overrides()
  local text = os.getenv("LOAD_CONDUIT_MIX")
  if not text then return end
  for name, weight in text:gmatch("([%w_]+)=(%d+)") do
    local found = false
    for _, m in ipairs(MIX) do
      if m[2] == name then m[1] = tonumber(weight); found = true end
    end
    if not found then error("conduit.lua: LOAD_CONDUIT_MIX names no operation '" .. name .. "'") end
  end
end

local threads = {}
local next_id = 1

function setup(thread)
  timeline.setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

local json_headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
local accept_only = { ["Accept"] = "application/json" }

local function pick(t) return t[math.random(#t)] end

local function authed(with_body)
  local h = { ["Accept"] = "application/json",
              ["Authorization"] = "Token " .. pick(users).token }
  if with_body then h["Content-Type"] = "application/json" end
  return h
end

-- Reads: with a session half of the time.
local function reader()
  if math.random(2) == 1 then return authed() end
  return accept_only
end

-- A username: from the whole seeded range when it is known, the popular
-- (low-numbered, most prolific) users more often; else a user with a session.
local function any_username()
  if users_total > 0 then
    local k = math.floor(users_total * math.random() ^ 2) + 1
    if k > users_total then k = users_total end
    return string.format("user%0" .. name_width .. "d", k)
  end
  return pick(users).name
end

local registered = 0
local nonce

function init(args)
  load_seed()
  apply_mix_overrides()
  total = 0
  for _, m in ipairs(MIX) do total = total + m[1] end
  if total == 0 then error("conduit.lua: every weight is 0") end
  nonce = string.format("%x%x", os.time() % 0x100000, math.floor((os.clock() * 1e6) % 0x10000))
  math.randomseed(os.time() * 1000 + (id or 0))
  non2xx = 0
  unauthorized = 0
  statuses = {}
end

local ops = {
  list_articles = function()
    -- Mostly the first pages, sometimes deep.
    local offset = math.random(10) == 1 and math.random(0, 50) * 20 or math.random(0, 4) * 20
    return wrk.format("GET", "/api/articles?limit=20&offset=" .. offset, reader())
  end,
  articles_by_tag = function()
    return wrk.format("GET", "/api/articles?tag=" .. pick(tags) .. "&limit=20", reader())
  end,
  articles_by_author = function()
    return wrk.format("GET", "/api/articles?author=" .. any_username() .. "&limit=20", reader())
  end,
  articles_favorited = function()
    return wrk.format("GET", "/api/articles?favorited=" .. any_username() .. "&limit=20", reader())
  end,
  get_article = function()
    return wrk.format("GET", "/api/articles/" .. pick(slugs), reader())
  end,
  get_comments = function()
    return wrk.format("GET", "/api/articles/" .. pick(slugs) .. "/comments", reader())
  end,
  get_tags = function()
    return wrk.format("GET", "/api/tags", accept_only)
  end,
  get_profile = function()
    return wrk.format("GET", "/api/profiles/" .. any_username(), reader())
  end,
  feed = function()
    return wrk.format("GET", "/api/articles/feed?limit=10", authed())
  end,
  current_user = function()
    return wrk.format("GET", "/api/user", authed())
  end,
  add_comment = function()
    local body = '{"comment":{"body":"A comment from the load test, ' .. math.random(1e6) .. '."}}'
    return wrk.format("POST", "/api/articles/" .. pick(slugs) .. "/comments", authed(true), body)
  end,
  favorite = function()
    return wrk.format("POST", "/api/articles/" .. pick(slugs) .. "/favorite", authed())
  end,
  unfavorite = function()
    return wrk.format("DELETE", "/api/articles/" .. pick(slugs) .. "/favorite", authed())
  end,
  login = function()
    local u = pick(users)
    local body = '{"user":{"email":"' .. u.email .. '","password":"' .. u.password .. '"}}'
    return wrk.format("POST", "/api/users/login", json_headers, body)
  end,
  register = function()
    registered = registered + 1
    local name = string.format("lt%s_%d_%d", nonce, id or 0, registered)
    local body = '{"user":{"username":"' .. name .. '","email":"' .. name ..
                 '@load.invalid","password":"load-test-password"}}'
    return wrk.format("POST", "/api/users", json_headers, body)
  end,
}

function request()
  local r = math.random(total)
  for _, m in ipairs(MIX) do
    r = r - m[1]
    if r <= 0 then return ops[m[2]]() end
  end
  return ops.list_articles()
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    if status == 401 then unauthorized = unauthorized + 1 end
    statuses[status] = (statuses[status] or 0) + 1
  end
  timeline.count(status)
end

function done(summary, latency, requests)
  local bad, by_status = report.non2xx(threads)
  local unauth = 0
  for _, t in ipairs(threads) do unauth = unauth + (t:get("unauthorized") or 0) end
  report.done(summary, latency, bad)
  io.write(string.format("LOAD_NOTE unauthorized=%d non2xx_by_status=%s\n", unauth, by_status))
  timeline.report(threads)
end
