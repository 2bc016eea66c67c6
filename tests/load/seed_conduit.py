#!/usr/bin/python3
"""tests/load/seed_conduit.py: the data set for the Conduit mix (lua/conduit.lua).

    seed_conduit.py URL SEED_FILE [--sessions K] [--mode auto|seeded|api]

Writes the seed file conduit.lua reads (users with session tokens, article
slugs, tags), through the API itself (RealWorld spec 1.1.0,
/work/shared/realworld/openapi.yml):

- seeded: the target holds the data set of `shoal-node seed` (users
  user00001@example.com .. with the password 'password'). Finds how many
  users there are (GET /api/profiles/userNNNNN), logs K of them in, spread
  over the range, and samples article slugs from pages spread over the whole
  list (GET /api/articles?limit=100&offset=...).
- api: registers min(K, 20) users of its own, loadseed000.. (or logs them in
  when they exist from an earlier run), has each follow the next, and makes
  sure each has 3 articles with tags. Running it twice against the same
  deployment adds nothing. A name somebody else holds (registration 422,
  login 401: say it was registered by hand) is replaced by one unique to the
  run, loadseed-RUN_ID-NNN, and the note says so. A rate limit (429) stops
  at the users made so far. For RealWorld backends that were not seeded.
- auto (default): seeded when user00001 logs in with 'password', else api.

Exit status 3, with a message, when URL has no Conduit API (/api/tags, or
the article list, does not answer 200), so the harness can skip the
workload cleanly; 4 when not one user could be had (the message says what
to run: the deployment's rate limits off, or its database seeded); 1 on
other failures.
"""
import argparse
import concurrent.futures
import json
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

TAGS = ["load", "scaling", "redis", "postgres", "haproxy", "flask", "c"]
SEEDED_PASSWORD = "password"  # node/services/conduit/seed_command.h SHOAL_SEED_PASSWORD
API_USERS = 20
API_ARTICLES = 3
SLUG_PAGES = 20
PAGE = 100


class NoApi(Exception):
    pass


def call(base, method, path, body=None, token=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", "Token " + token)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw) if raw else None
        except ValueError:
            return e.code, None


RATE_LIMIT_ADVICE = ("; run the deployment with SHOAL_RATE_LIMITS= (empty: no limits) while load testing, "
                     "since the load generator is one client")


NO_USERS_ADVICE = ("To load test it, either start its nodes with SHOAL_RATE_LIMITS= (empty: no limits), or "
                   "seed its database with the data set the mix looks for first: "
                   "DATABASE_URL=... shoal-node seed --users 10000 --articles 100000 "
                   "(every seeded user's password is 'password': not on a database real people use)")


class RateLimited(RuntimeError):
    """The deployment's login or registration limit (429) refused us: a load
    generator is one client, and the defaults allow a handful per minute."""


def login(base, email, password):
    status, body = call(base, "POST", "/users/login", {"user": {"email": email, "password": password}})
    if status == 200 and body and "user" in body:
        return body["user"]["token"]
    if status == 429:
        raise RateLimited("login of %s answered 429%s" % (email, RATE_LIMIT_ADVICE))
    return None



def seeded_name(k, width):
    return "user%0*d" % (width, k)


def find_width(base):
    """The digits of the seeded names, or None when there is no user00001 that
    logs in. Profiles are public and not rate limited, so only the width
    that exists costs a login."""
    for width in range(5, 9):
        status, _ = call(base, "GET", "/profiles/" + seeded_name(1, width))
        if status != 200:
            continue
        token = login(base, seeded_name(1, width) + "@example.com", SEEDED_PASSWORD)
        if token:
            return width, token
    return None, None


def profile_exists(base, k, width):
    status, _ = call(base, "GET", "/profiles/" + seeded_name(k, width))
    if status not in (200, 404):
        raise RuntimeError("GET /api/profiles/%s answered %d" % (seeded_name(k, width), status))
    return status == 200


def count_users(base, width):
    """The highest k whose user exists, by doubling then bisecting."""
    limit = 10 ** width - 1
    low, high = 1, 2
    while high <= limit and profile_exists(base, high, width):
        low, high = high, high * 2
    high = min(high, limit + 1)
    while high - low > 1:
        middle = (low + high) // 2
        if profile_exists(base, middle, width):
            low = middle
        else:
            high = middle
    return low


def sample_slugs(base):
    status, body = call(base, "GET", "/articles?limit=1")
    if status != 200 or not body or "articlesCount" not in body:
        raise NoApi("GET /api/articles answered %d" % status)
    count = body["articlesCount"]
    pages = max(1, min(SLUG_PAGES, (count + PAGE - 1) // PAGE))
    slugs = []
    for i in range(pages):
        offset = i * max(0, count - PAGE) // max(1, pages - 1) if pages > 1 else 0
        status, body = call(base, "GET", "/articles?limit=%d&offset=%d" % (PAGE, offset))
        if status != 200:
            raise RuntimeError("GET /api/articles?offset=%d answered %d" % (offset, status))
        slugs.extend(a["slug"] for a in body.get("articles", []))
    return list(dict.fromkeys(slugs)), count


def prepare_seeded(base, sessions, first_token, width):
    total = count_users(base, width)
    wanted = sorted(set(1 + i * total // min(sessions, total) for i in range(min(sessions, total))))

    def one(k):
        name = seeded_name(k, width)
        email = name + "@example.com"
        try:
            token = first_token if k == 1 else login(base, email, SEEDED_PASSWORD)
        except RateLimited:
            return None
        if not token:
            raise RuntimeError("%s did not log in with the seeded password" % email)
        return (name, email, SEEDED_PASSWORD, token)

    # As many at once as a node hashes passwords at once by default.
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        logged_in = list(pool.map(one, wanted))
    users = [u for u in logged_in if u is not None]
    limited = len(logged_in) - len(users)
    if not users:
        raise RuntimeError("every login answered 429" + RATE_LIMIT_ADVICE)
    slugs, count = sample_slugs(base)
    if not slugs:
        raise RuntimeError("the seeded deployment has no articles")
    status, body = call(base, "GET", "/tags")
    tags = body.get("tags", []) if status == 200 and body else []
    note = "seed: %d seeded users (%d with sessions), %d of %d articles sampled, %d tags" % (
        total, len(users), len(slugs), count, len(tags))
    if limited:
        note += " (%d logins refused with 429%s)" % (limited, RATE_LIMIT_ADVICE)
    return users, slugs, tags, (total, width), note


class NoUsers(RuntimeError):
    """Not one load user could be registered or logged in; the message says
    what to run so that the next attempt can."""


def api_user(name):
    return name, name + "@load.invalid"


def register_or_login(base, name, email, password):
    """(token, None) for a user registered now or earlier with PASSWORD;
    (None, why) otherwise, why being 'taken' (the name or address is
    somebody else's: registration 422, login 401), 'limited' (a rate limit
    answered 429) or a description of the answers."""
    status, body = call(base, "POST", "/users",
                        {"user": {"username": name, "email": email, "password": password}})
    if status in (200, 201) and body and "user" in body:
        return body["user"]["token"], None
    registered = status
    status, body = call(base, "POST", "/users/login", {"user": {"email": email, "password": password}})
    if status == 200 and body and "user" in body:
        return body["user"]["token"], None
    # A login 401 after a registration 429 means that the user does not
    # exist yet and may not be made now: the limit is what stops us.
    if status == 429 or registered == 429:
        return None, "limited"
    if registered == 422 and status == 401:
        return None, "taken"
    return None, "registration answered %d, login %d: %s" % (registered, status, body)


def prepare_api(base, sessions, run_id):
    """Registers (or logs in again) loadseed000.. with passwords of their
    own. A name somebody else holds, say one registered by hand, is replaced
    by loadseed-RUN_ID-NNN, unique to this run; a rate limit stops at the
    users made so far (at least one, else NoUsers)."""
    users, renamed = [], []
    limited = None
    for i in range(min(sessions, API_USERS)):
        name, email = api_user("loadseed%03d" % i)
        password = "load-seed-password-%03d" % i
        token, why = register_or_login(base, name, email, password)
        if why == "taken":
            taken = name
            name, email = api_user("loadseed-%s-%03d" % (run_id, i))
            token, why = register_or_login(base, name, email, password)
            if token:
                renamed.append((taken, name))
        if why == "limited":
            if not users:
                raise NoUsers("registering %s and logging it in answered 429: the deployment's rate limits "
                              "refuse a load generator, which is one client. %s" % (name, NO_USERS_ADVICE))
            limited = "%d users: the next registration or login answered 429%s" % (len(users), RATE_LIMIT_ADVICE)
            break
        if token is None:
            if not users:
                raise NoUsers("could not register or log in %s (%s). %s" % (name, why, NO_USERS_ADVICE))
            raise RuntimeError("could not register or log in %s (%s)" % (name, why))
        users.append((name, email, password, token))

    # Each follows the next, so that every feed has articles.
    for k, (name, _, _, token) in enumerate(users):
        other = users[(k + 1) % len(users)][0]
        if other != name:
            call(base, "POST", "/profiles/%s/follow" % other, token=token)

    slugs = []
    for k, (name, _, _, token) in enumerate(users):
        status, body = call(base, "GET", "/articles?author=%s&limit=100" % name)
        if status != 200:
            raise NoApi("GET /api/articles answered %d" % status)
        have = [art["slug"] for art in (body or {}).get("articles", [])]
        for j in range(len(have), API_ARTICLES):
            art = {"title": "Load test article %d by %s" % (j, name),
                   "description": "Seeded for the Conduit load mix",
                   "body": "Some text to read. " * 40,
                   "tagList": [TAGS[0], TAGS[(k + j) % (len(TAGS) - 1) + 1]]}
            status, body = call(base, "POST", "/articles", {"article": art}, token=token)
            if status not in (200, 201) or not body or "article" not in body:
                raise RuntimeError("creating an article for %s failed (%d): %s" % (name, status, body))
            have.append(body["article"]["slug"])
        slugs.extend(have)
    note = "seed: %d users, %d articles made through the API" % (len(users), len(slugs))
    if renamed:
        note += "; %s, so this run uses %s instead" % (
            ", ".join(old for old, _ in renamed) + (" is" if len(renamed) == 1 else " are") +
            " somebody else's (registration 422, login 401)",
            ", ".join(new for _, new in renamed))
    if limited:
        note += " (only %s)" % limited
    return users, slugs, TAGS, None, note


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("url")
    ap.add_argument("seed_file")
    ap.add_argument("--sessions", type=int, default=100, help="users to log in (api mode: at most %d)" % API_USERS)
    ap.add_argument("--mode", choices=("auto", "seeded", "api"), default="auto")
    ap.add_argument("--run-id", default="%x" % int(time.time()),
                    help="api mode: replaces a load user's name that somebody else holds "
                    "(loadseed-RUN_ID-NNN)")
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

    try:
        width, token = (None, None) if a.mode == "api" else find_width(base)
        if a.mode == "seeded" and width is None:
            raise RuntimeError("user00001@example.com does not log in with '%s': not seeded by shoal-node seed"
                               % SEEDED_PASSWORD)
        if width is not None:
            users, slugs, tags, seeded, note = prepare_seeded(base, a.sessions, token, width)
        else:
            users, slugs, tags, seeded, note = prepare_api(base, a.sessions, a.run_id)
    except NoApi as e:
        print("seed: %s: no Conduit API at %s" % (e, a.url), file=sys.stderr)
        return 3
    except NoUsers as e:
        print("seed: %s" % e, file=sys.stderr)
        return 4
    except (RuntimeError, urllib.error.URLError, OSError) as e:
        print("seed: %s" % e, file=sys.stderr)
        return 1

    with open(a.seed_file, "w") as f:
        if seeded:
            f.write("users_total %d %d\n" % seeded)
        for u in users:
            f.write("user %s %s %s %s\n" % u)
        for s in slugs:
            f.write("article %s\n" % s)
        for t in tags:
            f.write("tag %s\n" % urllib.parse.quote(t, safe=""))
    print("%s, in %s" % (note, a.seed_file))
    return 0


if __name__ == "__main__":
    sys.exit(main())
