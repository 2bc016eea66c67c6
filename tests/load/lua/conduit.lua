-- tests/load/lua/conduit.lua: a realistic RealWorld "Conduit" mix against
-- /api (the paths and bodies of /work/shared/realworld/openapi.yml, the
-- RealWorld spec 1.1.0), from the data set tests/load/seed_conduit.py made.
--
-- LOAD_SEED (environment): the seed file, lines of
--   user USERNAME EMAIL PASSWORD TOKEN
--   article SLUG
--   tag TAG
-- Every request picks an operation by weight and, where the operation needs a
-- session, a seeded user's token (`Authorization: Token ...`): reading is
-- common, commenting and favouriting happen sometimes, logging in and
-- registering rarely. Registrations use names unique to this run and thread.
local here = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
local report = dofile(here .. "report.lua")

-- weight, name: the share of requests (out of the total) of each operation.
local MIX = {
  { 28, "list_articles" },     -- GET /api/articles?limit=20&offset=N
  {  6, "articles_by_tag" },   -- GET /api/articles?tag=T
  {  4, "articles_by_author" },-- GET /api/articles?author=U
  { 20, "get_article" },       -- GET /api/articles/SLUG
  { 10, "get_comments" },      -- GET /api/articles/SLUG/comments
  {  6, "get_tags" },          -- GET /api/tags
  {  4, "get_profile" },       -- GET /api/profiles/U (with a session)
  {  5, "feed" },              -- GET /api/articles/feed (session)
  {  5, "current_user" },      -- GET /api/user (session)
  {  5, "add_comment" },       -- POST /api/articles/SLUG/comments (session)
  {  3, "favorite" },          -- POST /api/articles/SLUG/favorite (session)
  {  2, "unfavorite" },        -- DELETE /api/articles/SLUG/favorite (session)
  {  1, "login" },             -- POST /api/users/login
  {  1, "register" },          -- POST /api/users
}

local users, slugs, tags = {}, {}, {}
local total = 0
for _, m in ipairs(MIX) do total = total + m[1] end

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
    end
  end
  f:close()
  if #users == 0 or #slugs == 0 then error("conduit.lua: no users or articles in " .. path) end
  if #tags == 0 then tags[1] = "load" end
end

local threads = {}
local next_id = 1

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  threads[#threads + 1] = thread
end

local json_headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }

local function pick(t) return t[math.random(#t)] end

local function authed(extra)
  local h = { ["Accept"] = "application/json",
              ["Authorization"] = "Token " .. pick(users).token }
  if extra then h["Content-Type"] = "application/json" end
  return h
end

local registered = 0
local nonce

function init(args)
  load_seed()
  nonce = string.format("%x%x", os.time() % 0x100000, math.floor((os.clock() * 1e6) % 0x10000))
  math.randomseed(os.time() * 1000 + (id or 0))
  non2xx = 0
  unauthorized = 0
end

local ops = {
  list_articles = function()
    return wrk.format("GET", "/api/articles?limit=20&offset=" .. (math.random(0, 4) * 20), json_headers)
  end,
  articles_by_tag = function()
    return wrk.format("GET", "/api/articles?tag=" .. pick(tags), json_headers)
  end,
  articles_by_author = function()
    return wrk.format("GET", "/api/articles?author=" .. pick(users).name, json_headers)
  end,
  get_article = function()
    return wrk.format("GET", "/api/articles/" .. pick(slugs), json_headers)
  end,
  get_comments = function()
    return wrk.format("GET", "/api/articles/" .. pick(slugs) .. "/comments", json_headers)
  end,
  get_tags = function()
    return wrk.format("GET", "/api/tags", json_headers)
  end,
  get_profile = function()
    return wrk.format("GET", "/api/profiles/" .. pick(users).name, authed())
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
  end
end

function done(summary, latency, requests)
  local bad, unauth = 0, 0
  for _, t in ipairs(threads) do
    bad = bad + (t:get("non2xx") or 0)
    unauth = unauth + (t:get("unauthorized") or 0)
  end
  report.done(summary, latency, nil, bad)
  io.write(string.format("LOAD_NOTE unauthorized=%d\n", unauth))
end
