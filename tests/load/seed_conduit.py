#!/usr/bin/python3
"""tests/load/seed_conduit.py: the data set for the Conduit mix (lua/conduit.lua).

    seed_conduit.py URL SEED_FILE [--users N] [--articles M]

Through the API itself (RealWorld spec 1.1.0, /work/shared/realworld/openapi.yml):
registers N users (or logs them in when they exist from an earlier run), has
each follow the next, makes sure each has M articles with tags, and writes the
seed file conduit.lua reads (users with their tokens, article slugs, tags).
Running it twice against the same deployment adds nothing.

Exit status 3, with a message, when URL has no Conduit API (/api/tags is not
200), so the harness can skip the workload cleanly.
"""
import argparse
import json
import sys
import urllib.error
import urllib.request

TAGS = ["load", "scaling", "redis", "postgres", "haproxy", "flask", "c"]


def call(base, method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Token " + token)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw) if raw else None
        except ValueError:
            return e.code, None


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("seed_file")
    ap.add_argument("--users", type=int, default=20)
    ap.add_argument("--articles", type=int, default=3)
    a = ap.parse_args()
    base = a.url.rstrip("/") + "/api"

    try:
        status, _ = call(base, "GET", "/tags")
    except (urllib.error.URLError, OSError) as e:
        print("seed: %s/tags: %s" % (base, e), file=sys.stderr)
        return 3
    if status != 200:
        print("seed: /api/tags answered %d: no Conduit API at %s" % (status, a.url), file=sys.stderr)
        return 3

    users = []
    for i in range(a.users):
        name = "loadseed%03d" % i
        email = name + "@load.invalid"
        password = "load-seed-password-%03d" % i
        status, body = call(base, "POST", "/users",
                            {"user": {"username": name, "email": email, "password": password}})
        if status not in (200, 201):
            status, body = call(base, "POST", "/users/login",
                                {"user": {"email": email, "password": password}})
        if status not in (200, 201) or not body or "user" not in body:
            print("seed: could not register or log in %s (%d): %s" % (name, status, body),
                  file=sys.stderr)
            return 1
        users.append((name, email, password, body["user"]["token"]))

    # Each follows the next, so that every feed has articles.
    for k, (name, _, _, token) in enumerate(users):
        other = users[(k + 1) % len(users)][0]
        if other != name:
            call(base, "POST", "/profiles/%s/follow" % other, token=token)

    slugs = []
    for k, (name, _, _, token) in enumerate(users):
        status, body = call(base, "GET", "/articles?author=%s&limit=100" % name)
        have = [art["slug"] for art in (body or {}).get("articles", [])] if status == 200 else []
        for j in range(len(have), a.articles):
            art = {"title": "Load test article %d by %s" % (j, name),
                   "description": "Seeded for the Conduit load mix",
                   "body": "Some text to read. " * 40,
                   "tagList": [TAGS[0], TAGS[(k + j) % (len(TAGS) - 1) + 1]]}
            status, body = call(base, "POST", "/articles", {"article": art}, token=token)
            if status not in (200, 201) or not body or "article" not in body:
                print("seed: creating an article for %s failed (%d): %s" % (name, status, body),
                      file=sys.stderr)
                return 1
            have.append(body["article"]["slug"])
        slugs.extend(have)

    with open(a.seed_file, "w") as f:
        for u in users:
            f.write("user %s %s %s %s\n" % u)
        for s in slugs:
            f.write("article %s\n" % s)
        for t in TAGS:
            f.write("tag %s\n" % t)
    print("seed: %d users, %d articles in %s" % (len(users), len(slugs), a.seed_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
