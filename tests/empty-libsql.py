#!/usr/bin/env python3
"""Empties the database of the libSQL server in LIBSQL_TEST_URL (token: LIBSQL_TEST_AUTH_TOKEN): drops
every table and resets the schema version, so a run starts as on a fresh file. Hrana over HTTP, stdlib only."""
import json
import os
import sys
import urllib.request

url = os.environ["LIBSQL_TEST_URL"].replace("libsql://", "https://", 1).rstrip("/") + "/v2/pipeline"
token = os.environ.get("LIBSQL_TEST_AUTH_TOKEN", "")


def pipeline(statements):
    requests = [{"type": "execute", "stmt": {"sql": sql}} for sql in statements] + [{"type": "close"}]
    request = urllib.request.Request(url, data=json.dumps({"requests": requests}).encode(), method="POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as answer:
        results = json.load(answer)["results"]
    for result in results:
        if result["type"] != "ok":
            sys.exit(f"empty-libsql: {result}")
    return [r["response"]["result"] for r in results if r["response"]["type"] == "execute"]


# Virtual tables first: their shadow tables go with them. Then every table left.
dropped = 0
for kind in ("sql LIKE 'CREATE VIRTUAL TABLE%'", "1"):
    tables = pipeline([
        f"SELECT name FROM sqlite_schema WHERE type = 'table' AND {kind} AND name NOT LIKE 'sqlite_%' "
        "AND name NOT LIKE 'libsql_%'"
    ])[0]["rows"]
    if tables:
        pipeline([f'DROP TABLE IF EXISTS "{row[0]["value"]}"' for row in tables])
    dropped += len(tables)
pipeline(["PRAGMA user_version = 0"])
print(f"empty-libsql: dropped {dropped} tables")
