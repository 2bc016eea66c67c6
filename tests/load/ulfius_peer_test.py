#!/usr/bin/python3
"""tests/load/ulfius_peer_test.py: the ulfius peer of tests/load/run
(tests/load/peers/ulfius_peer.c) answers its three routes correctly, against
the suite's real PostgreSQL (the tiers fixture), in a database of its own
that `shoal-node migrate` fills with the node's world table:

  - /json: 200, application/json, exactly {"message":"Hello, World!"}
  - /plaintext: 200, text/plain, exactly Hello, World!
  - /db: 200, application/json, {"id":N,"randomNumber":M} with N in
    1..10000 and M the row's value (the test rewrites every row to a value
    it can compute from the id, so that a made-up or wrong row fails), ids
    spread, from parallel clients on at most one connection per pool thread
  - an unknown path is 404; SIGTERM exits 0 and closes its connections
  - with PostgreSQL unreachable /db answers 503 and /json still 200;
    SIGINT exits 0; a missing --port exits 2
  - tests/load/run finds the peer where ctest says (SHOAL_ULFIUS_BIN) and
    gives the reason when a path holds none

  ulfius_peer_test.py PEER SHOAL_NODE PORT   (SHOAL_TEST_* from the fixture)
"""
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import types
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402  (tests/load/run's harness: how it finds the peer)

PEER, NODE, PORT = sys.argv[1], sys.argv[2], int(sys.argv[3])
SCALE = max(1, int(float(os.environ.get("SHOAL_TEST_TIME_SCALE", "1"))))
BASE = "http://127.0.0.1:%d" % PORT
THREADS = 2

failures = 0


def check(description, ok, detail=""):
    global failures
    if ok:
        print("ok - " + description)
    else:
        failures += 1
        print("not ok - %s%s" % (description, (": " + detail) if detail else ""))


def get(path, method="GET"):
    """(status, content type, body bytes, headers) of one request on a new connection."""
    req = urllib.request.Request(BASE + path, method=method)
    try:
        with urllib.request.urlopen(req, timeout=5 * SCALE) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read(), r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read(), e.headers
    except (urllib.error.URLError, OSError) as e:
        return None, "", str(e).encode(), {}


def psql(url, sql):
    r = subprocess.run(["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                       capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError("psql: %s: %s" % (sql, r.stderr.strip()))
    return r.stdout.strip()


def expected_number(world_id):
    """The value the test writes into every world row."""
    return (world_id * 7919) % 10000 + 1


def start(database_url, log):
    proc = subprocess.Popen([PEER, "--port", str(PORT), "--threads", str(THREADS),
                             "--database-url", database_url], stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10 * SCALE
    while time.monotonic() < deadline and proc.poll() is None:
        if get("/json")[0] is not None:
            return proc
        time.sleep(0.05)
    return proc


def stop(proc, sig):
    """SIGNAL to the peer; its exit code, or None when it had to be killed."""
    if proc.poll() is not None:
        return proc.returncode
    proc.send_signal(sig)
    try:
        return proc.wait(timeout=5 * SCALE)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return None


def check_db_answer(status, ctype, body, seen):
    if status != 200 or not ctype.startswith("application/json"):
        return "status %s, %s: %r" % (status, ctype, body[:80])
    try:
        doc = json.loads(body)
    except ValueError:
        return "not JSON: %r" % body[:80]
    if not isinstance(doc, dict) or sorted(doc) != ["id", "randomNumber"]:
        return "keys: %r" % body[:80]
    i, n = doc["id"], doc["randomNumber"]
    if type(i) is not int or type(n) is not int or not 1 <= i <= 10000:
        return "values: %r" % body[:80]
    if n != expected_number(i):
        return "world %d has randomNumber %d, answered %d" % (i, expected_number(i), n)
    seen.append(i)
    return None


def routes(database_url, admin_url, db_name, log):
    proc = start(database_url, log)
    check("the peer starts and answers on 127.0.0.1:%d" % PORT, proc.poll() is None)
    if proc.poll() is not None:
        return
    try:
        status, ctype, body, headers = get("/json")
        check("/json: 200 application/json {\"message\":\"Hello, World!\"}",
              status == 200 and ctype.startswith("application/json") and
              body == b'{"message":"Hello, World!"}', "%s %s %r" % (status, ctype, body))
        check("/json: Server: ulfius", headers.get("Server") == "ulfius", str(headers.get("Server")))
        status, ctype, body, _ = get("/plaintext")
        check("/plaintext: 200 text/plain Hello, World!",
              status == 200 and ctype.startswith("text/plain") and body == b"Hello, World!",
              "%s %s %r" % (status, ctype, body))
        status, _, _, _ = get("/no-such-route")
        check("an unknown path is 404", status == 404, str(status))

        # /db from parallel clients, so that every pool thread answers some.
        seen, wrong = [], []
        lock = threading.Lock()

        def client():
            for _ in range(25):
                status, ctype, body, _ = get("/db")
                with lock:
                    why = check_db_answer(status, ctype, body, seen)
                    if why:
                        wrong.append(why)

        clients = [threading.Thread(target=client) for _ in range(8)]
        for c in clients:
            c.start()
        for c in clients:
            c.join()
        check("/db: 200 answers, each {\"id\":N,\"randomNumber\":M} with the row's M (%d of 200)" % len(seen),
              not wrong and len(seen) == 200, "; ".join(wrong[:3]))
        check("/db: random ids (%d distinct of %d)" % (len(set(seen)), len(seen)),
              len(set(seen)) >= 150, str(sorted(set(seen))[:10]))
        held = int(psql(admin_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' "
                        "AND application_name = 'ulfius-peer'" % db_name))
        check("/db: at most one PostgreSQL connection per pool thread (%d held, %d threads)" % (held, THREADS),
              1 <= held <= THREADS)
    finally:
        rc = stop(proc, signal.SIGTERM)
    check("SIGTERM: the peer exits 0", rc == 0, str(rc))
    # A backend leaves pg_stat_activity a moment after its client closed.
    deadline = time.monotonic() + 2 * SCALE
    while True:
        left = int(psql(admin_url, "SELECT count(*) FROM pg_stat_activity WHERE datname = '%s' "
                        "AND application_name = 'ulfius-peer'" % db_name))
        if left == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    check("SIGTERM: its PostgreSQL connections are closed", left == 0, "%d left" % left)


def outage(log):
    # Port 1 on loopback: nothing listens there, so every connect is refused.
    proc = start("postgresql://shoal:shoal@127.0.0.1:1/shoal?connect_timeout=2", log)
    check("with no PostgreSQL the peer starts", proc.poll() is None)
    if proc.poll() is not None:
        return
    try:
        status, ctype, body, _ = get("/db")
        ok = status == 503 and ctype.startswith("application/json")
        check("with no PostgreSQL /db answers 503 with a JSON error", ok and b"error" in body,
              "%s %s %r" % (status, ctype, body[:80]))
        status, _, _, _ = get("/json")
        check("with no PostgreSQL /json answers 200", status == 200, str(status))
    finally:
        rc = stop(proc, signal.SIGINT)
    check("SIGINT: the peer exits 0", rc == 0, str(rc))


def arguments():
    r = subprocess.run([PEER, "--database-url", "postgresql:///x"], capture_output=True, text=True)
    check("without --port the peer exits 2 with its usage", r.returncode == 2 and "usage" in r.stderr,
          "%d %r" % (r.returncode, r.stderr))


def harness_finds_it():
    args = types.SimpleNamespace(ulfius_bin=os.environ.get("SHOAL_ULFIUS_BIN"))
    path, why = harness.ulfius_binary(args)
    check("tests/load/run finds the peer (SHOAL_ULFIUS_BIN)", path == PEER and why is None, "%s %s" % (path, why))
    args.ulfius_bin = os.path.join(tempfile.gettempdir(), "no-such-ulfius-peer")
    path, why = harness.ulfius_binary(args)
    check("tests/load/run says why when the peer is missing",
          path is None and why and args.ulfius_bin in why, str(why))


def main():
    test_url = os.environ.get("SHOAL_TEST_DATABASE_URL")
    admin_url = os.environ.get("SHOAL_TEST_ADMIN_DATABASE_URL")
    if not test_url or not admin_url:
        print("run by ctest with the tiers fixture (SHOAL_TEST_DATABASE_URL, SHOAL_TEST_ADMIN_DATABASE_URL)")
        return 1
    # A database of the test's own, so that rewriting world touches no other test's.
    db_name = "ulfius_peer_test_%d" % os.getpid()
    parts = urllib.parse.urlsplit(test_url)
    database_url = urllib.parse.urlunsplit(parts._replace(path="/" + db_name))
    psql(admin_url, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db_name)
    psql(admin_url, "CREATE DATABASE %s OWNER shoal" % db_name)
    log = tempfile.TemporaryFile()
    try:
        r = subprocess.run([NODE, "migrate"], env=dict(os.environ, DATABASE_URL=database_url),
                           capture_output=True, text=True)
        check("shoal-node migrate makes the world table", r.returncode == 0, r.stderr[-300:])
        psql(database_url, "UPDATE world SET randomnumber = (id * 7919) % 10000 + 1")
        routes(database_url, admin_url, db_name, log)
        outage(log)
        arguments()
        harness_finds_it()
    finally:
        psql(admin_url, "DROP DATABASE IF EXISTS %s WITH (FORCE)" % db_name)
        if failures:
            log.seek(0)
            print("# the peer's output:\n" + log.read().decode(errors="replace"))
    print("%s" % ("all passed" if not failures else "%d failed" % failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
