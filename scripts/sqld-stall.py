#!/usr/bin/env python3
"""Shows sqld (0.24.32 and later) stop committing for good under concurrent writers, without this service.

Usage: scripts/sqld-stall.py URL [--clients N] [--seconds S] [--row-bytes B]

Against the libSQL server at URL (a scratch database: it creates and fills the table `stall_repro`), N clients
each send one plain autocommit INSERT at a time (Hrana over HTTP, one pipeline per statement, as any client
that keeps no stream open does), for S seconds. Every second it prints the inserts committed. When none
commits for 10 s while a read still answers, the server is stalled: it then burns CPU with every thread that
waits to write, and only a restart brings it back. The section "sqld under concurrent writers" of
docs/storage.md says why, and what avoids it (`--checkpoint-interval-s`). Stdlib only. Exit status: 1 when it
stalled, 0 when it did not within S seconds.
"""
import argparse
import http.client
import json
import sys
import threading
import time
import urllib.parse


def pipeline(connection, path, sql, args=()):
    """Runs one statement in a stream of its own; returns its rows or raises."""
    values = [{"type": "text", "value": a} for a in args]
    body = json.dumps({"baton": None, "requests": [
        {"type": "execute", "stmt": {"sql": sql, "args": values}}, {"type": "close"}]})
    connection.request("POST", path, body, {"content-type": "application/json"})
    answer = connection.getresponse()
    data = answer.read()
    if answer.status != 200:
        raise RuntimeError(f"HTTP {answer.status}: {data[:200]!r}")
    result = json.loads(data)["results"][0]
    if result["type"] != "ok":
        raise RuntimeError(result["error"]["message"])
    return result["response"]["result"]["rows"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=int, default=120)
    parser.add_argument("--row-bytes", type=int, default=200, help="size of each inserted row's text")
    options = parser.parse_args()
    url = urllib.parse.urlsplit(options.url)
    path = url.path.rstrip("/") + "/v3/pipeline"

    def connect():
        kind = http.client.HTTPSConnection if url.scheme in ("https", "libsql") else http.client.HTTPConnection
        return kind(url.hostname, url.port, timeout=30)

    pipeline(connect(), path, "CREATE TABLE IF NOT EXISTS stall_repro (id TEXT PRIMARY KEY, body TEXT)")
    committed = [0] * options.clients
    failures = {}
    stop = time.monotonic() + options.seconds
    padding = "x" * options.row_bytes

    def client(number):
        connection, n = connect(), 0
        while time.monotonic() < stop:
            n += 1
            try:
                pipeline(connection, path, "INSERT INTO stall_repro VALUES (?, ?) ON CONFLICT DO NOTHING",
                         (f"{time.time_ns()}-{number}-{n}", padding))
                committed[number] += 1
            except Exception as error:  # a timeout, a refused request, `database is locked`: count and go on
                failures[str(error)[:80]] = failures.get(str(error)[:80], 0) + 1
                connection = connect()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(options.clients)]
    for thread in threads:
        thread.start()
    last, last_progress, started = 0, time.monotonic(), time.monotonic()
    while time.monotonic() < stop:
        time.sleep(1)
        total = sum(committed)
        now = time.monotonic()
        if total > last:
            last_progress = now
        print(f"{now - started:5.0f} s  {total - last:6d} inserts committed  ({total} in all)", flush=True)
        last = total
        if now - last_progress >= 10:
            try:
                rows = pipeline(connect(), path, "SELECT count(*) FROM stall_repro")
                reads = f"a read still answers ({rows[0][0]['value']} rows)"
            except Exception as error:
                reads = f"reads fail too ({error})"
            print(f"STALLED: no insert committed for 10 s after {total} inserts from {options.clients} clients; "
                  f"{reads}. Failures so far: {failures}. The server now spins its waiting writers; restart it.")
            return 1
    print(f"no stall in {options.seconds} s: {sum(committed)} inserts from {options.clients} clients; "
          f"failures: {failures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
