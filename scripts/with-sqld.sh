#!/usr/bin/env bash
# Usage: scripts/with-sqld.sh SQLD COMMAND…
# Runs COMMAND with LIBSQL_TEST_URL (and LIBSQL_BENCH_URL) naming a fresh libSQL server: the sqld binary SQLD,
# started in a temporary directory on a free port with $SQLD_ARGS, and stopped (its data removed) afterwards.
set -euo pipefail
sqld=${1:?usage: scripts/with-sqld.sh SQLD COMMAND...}
shift
[ -x "$sqld" ] || { echo "with-sqld: no sqld binary at $sqld" >&2; exit 2; }
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
# shellcheck disable=SC2086 # SQLD_ARGS is a list of arguments
"$sqld" --db-path "$dir/data.sqld" --http-listen-addr "127.0.0.1:$port" --no-welcome ${SQLD_ARGS:-} \
	>"$dir/sqld.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 300); do
	if python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null; then break; fi
	kill -0 "$pid" 2>/dev/null || { echo "with-sqld: sqld exited:" >&2; cat "$dir/sqld.log" >&2; exit 2; }
	sleep 0.1
done
echo "with-sqld: a fresh sqld on http://127.0.0.1:$port (${SQLD_ARGS:-default arguments})"
LIBSQL_TEST_URL="http://127.0.0.1:$port" LIBSQL_BENCH_URL="http://127.0.0.1:$port" "$@"
