"""tests/load/peers/flask_app.py: the reference peer for tests/load/run.

The TechEmpower endpoints and one session read in Flask, as a Flask
developer would write them, run by gunicorn with 4 sync workers against the
same PostgreSQL and Redis as shoal (DATABASE_URL, REDIS_URL). Each worker is
a process serving one request at a time, so one PostgreSQL and one Redis
connection per worker, opened on first use, is all it needs.

The TechEmpower rules followed: JSON keys id and randomNumber; ids drawn from
1..10000; the queries/count parameter clamped to 1..500 (missing or not a
number: 1); fortunes with the extra row added at request time, sorted by
message, HTML-escaped by the template engine; updates write the new random
numbers back. Tables world(id, randomnumber) and fortune(id, message) are
shoal's (node/services/techempower/migrations/0001_techempower.sql).

GET /api/user: validates `Authorization: Token T` against Redis the simple
way: the key is loadpeer:session:<sha256 hex of T>, its value the user as
JSON (tests/load/run seeds one). shoal's own session layout is richer
(sliding TTL, revocation); this is the read a Flask app would make.
/cached-queries keeps worlds in Redis under loadpeer:world:ID (cache-aside,
one MGET per request, misses filled from PostgreSQL).

Must run under /usr/bin/python3: Debian's python3-flask, python3-psycopg2
and python3-redis are installed for it only.
"""
import hashlib
import json
import os
import random

import psycopg2
import redis
from flask import Flask, Response, render_template_string, request

app = Flask(__name__)

DATABASE_URL = os.environ.get("DATABASE_URL", "postgresql://shoal:shoal@127.0.0.1:5433/shoal")
REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6380/0")

_db = None
_redis = None


def db():
    global _db
    if _db is None or _db.closed:
        _db = psycopg2.connect(DATABASE_URL)
        _db.autocommit = True
    return _db


def rds():
    global _redis
    if _redis is None:
        _redis = redis.Redis.from_url(REDIS_URL)
    return _redis


def json_response(obj):
    return Response(json.dumps(obj, separators=(",", ":")), mimetype="application/json")


def query_count(name="queries"):
    raw = request.args.get(name)
    if raw is None and name == "count":
        raw = request.args.get("queries")
    try:
        n = int(raw)
    except (TypeError, ValueError):
        return 1
    return max(1, min(500, n))


def random_id():
    return random.randint(1, 10000)


@app.route("/json")
def hello_json():
    return json_response({"message": "Hello, World!"})


@app.route("/plaintext")
def plaintext():
    return Response(b"Hello, World!", mimetype="text/plain")


def fetch_world(cur, wid):
    cur.execute("SELECT id, randomnumber FROM world WHERE id = %s", (wid,))
    row = cur.fetchone()
    return {"id": row[0], "randomNumber": row[1]}


@app.route("/db")
def single_query():
    with db().cursor() as cur:
        return json_response(fetch_world(cur, random_id()))


@app.route("/queries")
def multiple_queries():
    n = query_count()
    with db().cursor() as cur:
        return json_response([fetch_world(cur, random_id()) for _ in range(n)])


@app.route("/updates")
def updates():
    n = query_count()
    conn = db()
    with conn.cursor() as cur:
        # Distinct ids, sorted: concurrent requests then lock rows in the same
        # order and cannot deadlock.
        ids = sorted(random.sample(range(1, 10001), n))
        worlds = [fetch_world(cur, wid) for wid in ids]
        for w in worlds:
            w["randomNumber"] = random_id()
        cur.executemany("UPDATE world SET randomnumber = %s WHERE id = %s",
                        [(w["randomNumber"], w["id"]) for w in worlds])
    random.shuffle(worlds)
    return json_response(worlds)


FORTUNES = """<!DOCTYPE html>
<html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>
{% for id, message in fortunes %}<tr><td>{{ id }}</td><td>{{ message }}</td></tr>
{% endfor %}</table></body></html>"""


@app.route("/fortunes")
def fortunes():
    with db().cursor() as cur:
        cur.execute("SELECT id, message FROM fortune")
        rows = cur.fetchall()
    rows.append((0, "Additional fortune added at request time."))
    rows.sort(key=lambda r: r[1])
    return Response(render_template_string(FORTUNES, fortunes=rows),
                    content_type="text/html; charset=utf-8")


@app.route("/cached-queries")
def cached_queries():
    n = query_count("count")
    ids = [random_id() for _ in range(n)]
    keys = ["loadpeer:world:%d" % i for i in ids]
    cached = rds().mget(keys)
    out = []
    fill = {}
    with db().cursor() as cur:
        for wid, key, hit in zip(ids, keys, cached):
            if hit is not None:
                out.append({"id": wid, "randomNumber": int(hit)})
                continue
            w = fetch_world(cur, wid)
            fill[key] = w["randomNumber"]
            out.append(w)
    if fill:
        rds().mset(fill)
    return json_response(out)


@app.route("/api/user")
def current_user():
    auth = request.headers.get("Authorization", "")
    if not auth.startswith("Token "):
        return json_response({"errors": {"body": ["missing token"]}}), 401
    token = auth[len("Token "):].strip()
    key = "loadpeer:session:" + hashlib.sha256(token.encode()).hexdigest()
    raw = rds().get(key)
    if raw is None:
        return json_response({"errors": {"body": ["invalid token"]}}), 401
    user = json.loads(raw)
    user["token"] = token
    return json_response({"user": user})
