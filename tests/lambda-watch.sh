#!/usr/bin/env bash
# Replays events/ end to end: `cargo lambda watch` runs the function (its real Lambda runtime loop against
# cargo-lambda's emulation of the Runtime API) on a loopback port with a fresh database; every event goes
# in through `cargo lambda invoke --data-file`, and every reply is checked against its .expected.json.
# Then an event that is not HTTP must fail its own invocation and leave the function serving.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
[ -x "$VENV/bin/cargo-lambda" ] || { echo "lambda-watch: $VENV/bin/cargo-lambda missing; run: make tools" >&2; exit 2; }
export PATH="$PWD/$VENV/bin:$PATH"   # cargo finds its `lambda` subcommand there

work=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
setsid cargo lambda watch --quiet --ignore-changes -A 127.0.0.1 -P "$port" \
  --env-var WEBHOOK_SECRET=events-test-secret --env-var "DATABASE_URL=sqlite:///$work/app.db" \
  --env-var WHATSAPP_APP_SECRET=events-whatsapp-secret --env-var WHATSAPP_VERIFY_TOKEN=events-verify-token \
  >"$work/watch.log" 2>&1 &
watch_pid=$!
cleanup() { kill -TERM -- "-$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

# The workspace has two binaries (the function and the bench), so the function is named.
invoke() { cargo lambda invoke webhook-ingest -A 127.0.0.1 -P "$port" --output-format json "$@" 2>"$work/invoke.err"; }
passed=0
fail() {
  echo "lambda-watch: FAIL: $*" >&2
  tail -n 30 "$work/watch.log" >&2
  echo "lambda-watch: $passed passed, 1 failed"
  exit 1
}

# The first invocation waits for the function to compile.
deadline=$((SECONDS + 900))
until invoke --data-file events/01-v2-health-live.json >/dev/null; do
  kill -0 "$watch_pid" 2>/dev/null || fail "cargo lambda watch exited"
  # Only "not up yet" is worth waiting for; any other answer will not change.
  if grep -q "available_functions" "$work/invoke.err"; then fail "invoke: $(cat "$work/invoke.err")"; fi
  [ $SECONDS -lt $deadline ] || fail "the function did not start"
  sleep 2
done
# That probe wrote nothing, so the corpus still starts on an empty database.

for event in $(ls events/*.json | grep -v '\.expected\.json$' | sort); do
  expected=${event%.json}.expected.json
  reply=$(invoke --data-file "$event") || fail "$event: invoke failed: $(cat "$work/invoke.err")"
  status=$(jq .statusCode <<<"$reply")
  [ "$status" = "$(jq .status "$expected")" ] || fail "$event: status $status, expected $(jq .status "$expected")"
  if [ "$(jq 'has("body")' "$expected")" = true ]; then
    got=$(jq -cS '.body | fromjson' <<<"$reply")
    want=$(jq -cS .body "$expected")
    [ "$got" = "$want" ] || fail "$event: body $got, expected $want"
  fi
  if [ "$(jq 'has("text")' "$expected")" = true ]; then
    got=$(jq -c .body <<<"$reply")
    want=$(jq -c .text "$expected")
    [ "$got" = "$want" ] || fail "$event: text $got, expected $want"
  fi
  passed=$((passed + 1))
  echo "lambda-watch: ok   $(basename "$event")"
done

if invoke --data-ascii '{"Records":[{"eventSource":"aws:sqs","body":"not http"}]}' >/dev/null; then
  fail "a non-HTTP event was accepted"
fi
passed=$((passed + 1)); echo "lambda-watch: ok   a non-HTTP event fails its own invocation"
after=$(invoke --data-file events/01-v2-health-live.json) || fail "the function stopped serving after a bad event"
[ "$(jq .statusCode <<<"$after")" = 200 ] || fail "health after a bad event: $after"
passed=$((passed + 1)); echo "lambda-watch: ok   still serving afterwards"

echo "lambda-watch: $passed passed, 0 failed"
