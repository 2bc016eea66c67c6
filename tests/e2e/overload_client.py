#!/usr/bin/python3
"""tests/e2e/overload_client.py: bounded concurrent load for overload_test.sh.

    overload_client.py URL CLIENTS REQUESTS

CLIENTS threads each send REQUESTS GETs of URL over one keep-alive
connection (a new one after the server closes it) and the script prints one
JSON object: how many answers had each status, how many 503s carried
Retry-After and the JSON envelope, by code, other failures, and the slowest
answer in seconds. Every request has a 20 s socket timeout, so the run is
bounded in count and time.
"""
import http.client
import json
import sys
import threading
import time
import urllib.parse


def main():
    url, clients, requests = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    parts = urllib.parse.urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    lock = threading.Lock()
    result = {"status": {}, "refusals": {}, "refusals_without_retry_after": 0,
              "refusals_without_envelope": 0, "failures": [], "slowest_s": 0.0}

    def client():
        connection = None
        for _ in range(requests):
            started = time.monotonic()
            try:
                if connection is None:
                    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=20)
                connection.request("GET", target)
                response = connection.getresponse()
                body = response.read()
                retry_after = response.getheader("Retry-After")
                closing = (response.getheader("Connection") or "").lower() == "close"
                status = response.status
            except (OSError, http.client.HTTPException) as error:
                with lock:
                    result["failures"].append(repr(error))
                if connection is not None:
                    connection.close()
                connection = None
                continue
            elapsed = time.monotonic() - started
            with lock:
                result["status"][str(status)] = result["status"].get(str(status), 0) + 1
                result["slowest_s"] = max(result["slowest_s"], elapsed)
                if status == 503:
                    try:
                        envelope = json.loads(body)
                        code = envelope["code"]
                        if not isinstance(envelope["errors"], dict):
                            raise ValueError("errors is not an object")
                    except (ValueError, KeyError, TypeError):
                        code = "(no envelope)"
                        result["refusals_without_envelope"] += 1
                    result["refusals"][code] = result["refusals"].get(code, 0) + 1
                    if retry_after != "1":
                        result["refusals_without_retry_after"] += 1
            if closing:
                connection.close()
                connection = None
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result["failures"] = result["failures"][:10]
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
