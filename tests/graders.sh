#!/usr/bin/env bash
# The graders' script of SPEC §9, line for line, against the local release binary on a fresh database: a
# file, or with LIBSQL_TEST_URL set the emptied database of that libSQL server (LIBSQL_TEST_MODE=replica:
# through an embedded replica).
#
# Its curl lines are the graders' own, unchanged (localhost:8000, the unencoded `from=+9198…`); each
# output is then checked. Where the graders use Docker, this runs the binary the image runs instead:
# `make up; sleep 10` starts it and waits until it answers, `docker compose logs api` reads its stdout,
# and `make down` is SIGTERM (which must exit 0). The binary listens on a port the operating system picks,
# and a curl configuration of this run's own sends localhost:8000 there, so nothing else on port 8000
# (a `make run`, another test run) can answer in its place.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-target/release/webhook-ingest}
[ -x "$BIN" ] || { echo "graders: $BIN missing; build it with: cargo build --release --features local" >&2; exit 2; }

work=$(mktemp -d)
LOG=$work/api.log
passed=0
fail() {
  echo "graders: FAIL: $*" >&2
  echo "--- last lines of the service log:" >&2
  tail -n 20 "$LOG" >&2 || true
  echo "graders: $passed passed, 1 failed"
  exit 1
}
check() { # check NAME CONDITION-COMMAND...
  local name=$1; shift
  if "$@"; then passed=$((passed + 1)); echo "graders: ok   $name"; else fail "$name"; fi
}
equals() { [ "$1" = "$2" ] || { echo "graders:   expected '$2', got '$1'" >&2; return 1; }; }

export WEBHOOK_SECRET="testsecret"; export DATABASE_URL="sqlite:///$work/app.db"
if [ -n "${LIBSQL_TEST_URL:-}" ]; then
  tests/empty-libsql.py
  export LIBSQL_AUTH_TOKEN=${LIBSQL_TEST_AUTH_TOKEN:-}
  if [ "${LIBSQL_TEST_MODE:-}" = replica ]; then
    export DATABASE_URL="sqlite:///$work/replica.db" LIBSQL_SYNC_URL=$LIBSQL_TEST_URL
    echo "graders: through an embedded replica of the libSQL server at $LIBSQL_TEST_URL"
  else
    export DATABASE_URL=$LIBSQL_TEST_URL
    echo "graders: against the libSQL server at $LIBSQL_TEST_URL"
  fi
fi
LISTEN_ADDR=127.0.0.1:0 "$BIN" >"$LOG" 2>"$work/stderr" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
# The port it listens on, from its "listening" log line, once it is there.
port=
for _ in $(seq 300); do
  port=$(jq -r 'select(.msg == "listening") | .addr | split(":") | last' "$LOG" 2>/dev/null | head -n 1)
  [ -z "$port" ] || break
  kill -0 "$pid" 2>/dev/null || fail "the service exited before it listened"
  sleep 0.1
done
[ -n "$port" ] || fail "the service never listened"
# Every curl below reads this file, and sends what is addressed to localhost:8000 to that port instead.
export CURL_HOME=$work
echo "connect-to = localhost:8000:127.0.0.1:$port" >"$CURL_HOME/.curlrc"

check "live"  curl -sf http://localhost:8000/health/live -o /dev/null
check "ready" curl -sf http://localhost:8000/health/ready -o /dev/null
BODY='{"message_id":"m1","from":"+919876543210","to":"+14155550100","ts":"2025-01-15T10:00:00Z","text":"Hello"}'
VALID_SIG=$(scripts/sign.sh "$BODY")
check "bad signature is 401" equals "$(curl -s -o /dev/null -w "%{http_code}" -H "Content-Type: application/json" -H "X-Signature: 123" -d "$BODY" http://localhost:8000/webhook)" 401
check "valid delivery is 200" equals "$(curl -s -o /dev/null -w "%{http_code}" -H "Content-Type: application/json" -H "X-Signature: $VALID_SIG" -d "$BODY" http://localhost:8000/webhook)" 200
check "duplicate is 200"      equals "$(curl -s -o /dev/null -w "%{http_code}" -H "Content-Type: application/json" -H "X-Signature: $VALID_SIG" -d "$BODY" http://localhost:8000/webhook)" 200
check "duplicate added no row" equals "$(curl -s http://localhost:8000/messages | jq .total)" 1

# ... more signed messages with other message_id/from/ts/text
deliver() {
  local sig; sig=$(scripts/sign.sh "$1")
  curl -s -o /dev/null -w "%{http_code}" -H "Content-Type: application/json" -H "X-Signature: $sig" -d "$1" http://localhost:8000/webhook
}
check "m2" equals "$(deliver '{"message_id":"m2","from":"+919876543210","to":"+14155550100","ts":"2025-01-15T09:00:00Z","text":"Earlier hello"}')" 200
check "m3" equals "$(deliver '{"message_id":"m3","from":"+14155550100","to":"+919876543210","ts":"2025-01-15T10:00:00.5Z","text":"Reply"}')" 200
check "m4" equals "$(deliver '{"message_id":"m4","from":"+447700900123","to":"+14155550100","ts":"2025-01-16T08:30:00Z"}')" 200
check "m5" equals "$(deliver '{"message_id":"m5","from":"+919876543210","to":"+447700900123","ts":"2025-01-15T11:45:00Z","text":"hello again"}')" 200

all=$(curl -s "http://localhost:8000/messages" | jq .)
check "list: chronological order" equals "$(jq -c '[.data[].message_id]' <<<"$all")" '["m2","m1","m3","m5","m4"]'
check "list: total, limit, offset" equals "$(jq -c '[.total, .limit, .offset]' <<<"$all")" '[5,50,0]'
check "list: text null when absent" equals "$(jq -c '.data[] | select(.message_id == "m4") | .text' <<<"$all")" null
check "limit=2 gives 2" equals "$(curl -s "http://localhost:8000/messages?limit=2&offset=0" | jq '.data | length')" 2
from=$(curl -s "http://localhost:8000/messages?from=+919876543210" | jq .)
check "from=+… (unencoded)" equals "$(jq -c '[.total, [.data[].message_id]]' <<<"$from")" '[3,["m2","m1","m5"]]'
since=$(curl -s "http://localhost:8000/messages?since=2025-01-15T09:30:00Z" | jq .)
check "since" equals "$(jq -c '[.data[].message_id]' <<<"$since")" '["m1","m3","m5","m4"]'
q=$(curl -s "http://localhost:8000/messages?q=Hello" | jq .)
check "q (case-insensitive)" equals "$(jq -c '[.data[].message_id]' <<<"$q")" '["m2","m1","m5"]'
stats=$(curl -s "http://localhost:8000/stats" | jq .)
check "stats" equals "$(jq -c '[.total_messages, .senders_count, .messages_per_sender[0], .first_message_ts, .last_message_ts]' <<<"$stats")" \
  '[5,3,{"from":"+919876543210","count":3},"2025-01-15T09:00:00Z","2025-01-16T08:30:00Z"]'
# head closes the pipe early and curl then exits 23; the graders' shell ignores that, so does this line.
metrics_head=$(set +o pipefail; curl -s "http://localhost:8000/metrics" | head)
check "metrics head shows http_requests_total"    grep -q '^http_requests_total' <<<"$metrics_head"
check "metrics head shows webhook_requests_total" grep -q '^webhook_requests_total' <<<"$metrics_head"

logs=$(head -n 20 "$LOG")
check "logs: every line is JSON" bash -c 'while IFS= read -r line; do jq -e . >/dev/null <<<"$line" || exit 1; done' <<<"$logs"
webhook_lines=$(jq -c 'select(.path == "/webhook" and .status == 200)' <<<"$logs")
check "logs: /webhook lines carry message_id and dup" equals "$(jq -c '[.message_id, .dup]' <<<"$webhook_lines" | head -n 2 | tr -d '\n')" '["m1",false]["m1",true]'

kill -TERM "$pid"
status=0; wait "$pid" || status=$?
check "SIGTERM exits 0" equals "$status" 0
check "stdout holds only JSON lines" bash -c 'while IFS= read -r line; do jq -e . >/dev/null <<<"$line" || exit 1; done' <"$LOG"
check "stderr is empty" equals "$(cat "$work/stderr")" ""
echo "graders: $passed passed, 0 failed"
