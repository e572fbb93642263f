#!/usr/bin/env bash
# Usage: scripts/with-sqld.sh SQLD COMMAND…
# Runs COMMAND with LIBSQL_TEST_URL (and LIBSQL_BENCH_URL) naming a fresh libSQL server: the sqld binary SQLD,
# started in a temporary directory on a port the operating system picks, with $SQLD_ARGS, and stopped (its
# data removed) afterwards.
set -euo pipefail
sqld=${1:?usage: scripts/with-sqld.sh SQLD COMMAND...}
shift
[ -x "$sqld" ] || { echo "with-sqld: no sqld binary at $sqld" >&2; exit 2; }
dir=$(mktemp -d)
# shellcheck disable=SC2086 # SQLD_ARGS is a list of arguments
"$sqld" --db-path "$dir/data.sqld" --http-listen-addr 127.0.0.1:0 --no-welcome ${SQLD_ARGS:-} >"$dir/sqld.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
# The port it listens on, from /proc: its sockets' inodes among the listening ones (state 0A).
listening_port() {
  python3 - "$pid" <<'PY'
import os, sys
pid = sys.argv[1]
links = (os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd"))
inodes = {link[8:-1] for link in links if link.startswith("socket:[")}
for table in ("tcp", "tcp6"):
    for line in open(f"/proc/{pid}/net/{table}").readlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and fields[9] in inodes:
            print(int(fields[1].rsplit(":", 1)[1], 16))
            sys.exit(0)
sys.exit(1)
PY
}
port=
for _ in $(seq 300); do
  if port=$(listening_port 2>/dev/null); then break; fi
  kill -0 "$pid" 2>/dev/null || { echo "with-sqld: sqld exited:" >&2; cat "$dir/sqld.log" >&2; exit 2; }
  sleep 0.1
done
[ -n "$port" ] || { echo "with-sqld: sqld never listened" >&2; exit 2; }
echo "with-sqld: a fresh sqld on http://127.0.0.1:$port (${SQLD_ARGS:-default arguments})"
LIBSQL_TEST_URL="http://127.0.0.1:$port" LIBSQL_BENCH_URL="http://127.0.0.1:$port" "$@"
