#!/usr/bin/env bash
# Property-based API tests: schemathesis generates requests from openapi.yaml (valid and invalid ones) and
# sends them to the release binary; every answer must be documented there, with the documented status,
# content type, headers and body schema, and none may be a 5xx.
#
# Three server runs (MODES), each on a fresh database in a temporary directory and a free loopback port.
# Two schemathesis runs, each after seeding a few signed messages:
#   open   no READ_API_TOKEN: every endpoint open; also checks that GET /openapi.yaml serves this file;
#   token  READ_API_TOKEN set: /messages, /stats and /metrics need the bearer token (schemathesis sends it
#          with -H; a request without it must be 401); MAX_BODY_BYTES=2048, so large deliveries get 413.
# Then, without schemathesis, the answers it cannot provoke, checked against what openapi.yaml says:
#   limits 431 for too many header fields and for a 20 KiB request target; 503 "too many connections" once
#          MAX_CONNECTIONS=2 connections are held open, and service again once they close.
# POST /webhook and POST /webhook/whatsapp bodies are signed by a hook whenever schemathesis generated a
# well-formed signature other than 64 zeros, so deliveries reach validation (422) and the store (200);
# malformed or all-zero signatures are sent as generated and must be 401. The WhatsApp handshake gets the
# configured verify token in place of a generated one that starts with a digit, so both 200 and 403 occur.
#
# Environment: BIN (default target/release/webhook-ingest, built with --features local), VENV (default
# .venv, with schemathesis from tools/requirements.txt), MAX_EXAMPLES (default 500, per operation and phase),
# SEED (default fixed, so runs repeat), MODES (default "open token limits"), CHECK_SERVED_SPEC (default 1:
# compare GET /openapi.yaml with the file), SCHEMATHESIS_ARGS (extra arguments for `schemathesis run`),
# KEEP_WORK (set: keep the temporary directory with the server logs).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-target/release/webhook-ingest}
VENV=${VENV:-.venv}
ST=$VENV/bin/schemathesis
case $ST in /*) ;; *) ST=$ROOT/$ST ;; esac
MAX_EXAMPLES=${MAX_EXAMPLES:-500}
SEED=${SEED:-20251123}
MODES=${MODES:-open token limits}
CHECK_SERVED_SPEC=${CHECK_SERVED_SPEC:-1}
read -r -a EXTRA_ARGS <<<"${SCHEMATHESIS_ARGS:-}"
CHECKS=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance,negative_data_rejection,missing_required_header,unsupported_method,allow_header_conformance

[ -x "$BIN" ] || { echo "schemathesis: $BIN missing; build it with: cargo build --release --features local" >&2; exit 2; }
[ -x "$ST" ] || { echo "schemathesis: $ST missing; install the tools with: make tools" >&2; exit 2; }
for tool in curl jq openssl python3; do
  command -v "$tool" >/dev/null || { echo "schemathesis: '$tool' is needed" >&2; exit 2; }
done

work=$(mktemp -d)
pid=""
stop_server() {
  if [ -n "$pid" ]; then
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    pid=""
  fi
}
trap 'stop_server; [ -n "${KEEP_WORK:-}" ] && echo "schemathesis: kept $work" || rm -rf "$work"' EXIT

passed=0
failed=0
results=()
record() { # record NAME STATUS(0 = ok)
  if [ "$2" -eq 0 ]; then
    passed=$((passed + 1)); results+=("ok     $1")
  else
    failed=$((failed + 1)); results+=("FAILED $1")
  fi
}
summary() {
  echo
  echo "schemathesis: summary"
  printf '  %s\n' "${results[@]}"
  echo "schemathesis: $passed passed, $failed failed"
}

export WEBHOOK_SECRET="schemathesis-secret-$$"
export WHATSAPP_APP_SECRET="schemathesis-app-secret-$$"
export WHATSAPP_VERIFY_TOKEN="schemathesis-verify-token-$$"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# start_server NAME [VAR=VALUE...]: a fresh database, a free port; sets URL and pid.
start_server() {
  local name=$1; shift
  local port attempt
  for attempt in 1 2 3; do
    port=$(free_port)
    URL=http://127.0.0.1:$port
    LOG=$work/$name.log
    env "$@" LISTEN_ADDR="127.0.0.1:$port" DATABASE_URL="sqlite:///$work/$name/app.db" LOG_LEVEL=INFO \
      "$BIN" >"$LOG" 2>"$work/$name.stderr" &
    pid=$!
    for _ in $(seq 100); do
      if [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health/ready")" = 200 ]; then
        echo "schemathesis: [$name] server pid $pid ready on $URL"
        return 0
      fi
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    echo "schemathesis: [$name] server did not become ready (attempt $attempt); its output:" >&2
    tail -n 5 "$LOG" "$work/$name.stderr" >&2 || true
    stop_server
  done
  return 1
}

# deliver BODY: POSTs BODY signed with the secret; prints the status.
deliver() {
  local sig
  sig=$(printf '%s' "$1" | openssl dgst -sha256 -hmac "$WEBHOOK_SECRET" -r | cut -d' ' -f1)
  curl -s -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' -H "X-Signature: $sig" \
    --data-binary "$1" "$URL/webhook"
}

seed() {
  local body status sig ok=0
  for body in \
    '{"message_id":"m1","from":"+919876543210","to":"+14155550100","ts":"2025-01-15T10:00:00Z","text":"Hello"}' \
    '{"message_id":"m1","from":"+919876543210","to":"+14155550100","ts":"2025-01-15T10:00:00Z","text":"Hello"}' \
    '{"message_id":"m2","from":"+919876543210","to":"+14155550100","ts":"2025-01-15T09:00:00Z","text":"Earlier hello"}' \
    '{"message_id":"m3","from":"+14155550100","to":"+919876543210","ts":"2025-01-15T10:00:00.5Z","text":"Reply 100% _done_ \"quoted\""}' \
    '{"message_id":"m4","from":"+447700900123","to":"+14155550100","ts":"2025-01-16T08:30:00Z"}' \
    '{"message_id":"m5","from":"+919876543210","to":"+447700900123","ts":"2025-01-15T11:45:00.123456789Z","text":null}' \
    '{"message_id":"m6 ünïcødé","from":"+1","to":"+2","ts":"2024-02-29T23:59:59Z","text":"ÉCOLE 😀 école"}'; do
    status=$(deliver "$body")
    [ "$status" = 200 ] || { echo "schemathesis:   seeding got $status for $body" >&2; ok=1; }
  done
  # A WhatsApp delivery with media, a location and statuses, so that one messages and statuses have every part.
  body=$(cat "$ROOT/scripts/whatsapp-sample.json")
  sig=$(printf '%s' "$body" | openssl dgst -sha256 -hmac "$WHATSAPP_APP_SECRET" -r | cut -d' ' -f1)
  status=$(curl -s -o /dev/null -w '%{http_code}' -H "X-Hub-Signature-256: sha256=$sig" --data-binary "$body" \
    "$URL/webhook/whatsapp")
  [ "$status" = 200 ] || { echo "schemathesis:   seeding the WhatsApp sample got $status" >&2; ok=1; }
  [ "$(curl -s "${AUTH[@]}" "$URL/messages" | jq .total)" = 8 ] || { echo "schemathesis:   expected 8 seeded messages" >&2; ok=1; }
  [ "$(curl -s "${AUTH[@]}" "$URL/statuses" | jq .total)" = 3 ] || { echo "schemathesis:   expected 3 seeded statuses" >&2; ok=1; }
  return "$ok"
}

# expect_error STATUS DETAIL CURL-ARGS...: the answer is STATUS, JSON {"detail": DETAIL}, with X-Request-ID.
expect_error() {
  local want=$1 detail=$2; shift 2
  local code ok=0
  code=$(curl -s -D "$work/headers" -o "$work/body" -w '%{http_code}' "$@") || true
  [ "$code" = "$want" ] || ok=1
  grep -qi '^content-type: application/json' "$work/headers" || ok=1
  grep -qi '^x-request-id: ..*' "$work/headers" || ok=1
  [ "$(jq -c . <"$work/body" 2>/dev/null)" = "$(jq -cn --arg d "$detail" '{detail: $d}')" ] || ok=1
  if [ "$ok" != 0 ]; then
    echo "schemathesis:   expected $want {\"detail\":\"$detail\"} with X-Request-ID, got $code:" >&2
    cat "$work/headers" "$work/body" >&2; echo >&2
  fi
  return "$ok"
}

# expect_too_many_connections N: holds N idle connections open, then the next connection must get the 503.
expect_too_many_connections() {
  local raw ok=0
  raw=$(python3 - "${URL#http://}" "$1" <<'PY'
import socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
held = [socket.create_connection((host, int(port))) for _ in range(int(sys.argv[2]))]
time.sleep(0.3)  # let the listener accept (and count) them
answer = b""
for _ in range(5):  # a refusal can race the request; try a few times
    s = socket.create_connection((host, int(port)))
    s.settimeout(5)
    try:
        s.sendall(b"GET /health/live HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        while chunk := s.recv(65536):
            answer += chunk
    except OSError:
        pass
    s.close()
    if answer:
        break
    time.sleep(0.1)
for s in held:
    s.close()
sys.stdout.write(answer.decode("latin-1"))
PY
  )
  raw=${raw//$'\r'/}
  local head=${raw%%$'\n\n'*} body=${raw#*$'\n\n'}
  [[ $head == "HTTP/1.1 503 "* ]] || ok=1
  grep -qi '^content-type: application/json' <<<"$head" || ok=1
  grep -qi '^x-request-id: ..*' <<<"$head" || ok=1
  [ "$(jq -c . <<<"$body" 2>/dev/null)" = '{"detail":"too many connections"}' ] || ok=1
  [ "$ok" = 0 ] || { echo "schemathesis:   expected 503 {\"detail\":\"too many connections\"} with X-Request-ID, got:" >&2; echo "$raw" >&2; }
  return "$ok"
}

# A hook that signs POST /webhook bodies after serialisation (a requests auth object sees the exact bytes).
cat >"$work/hooks.py" <<'PY'
import hashlib
import hmac
import os
import re

import requests
import schemathesis

WELL_FORMED = re.compile(r"(sha256=)?([0-9a-fA-F]{64})")
# Per signed route: the header, the secret, and the prefix before the hex.
SIGNED = {
    "/webhook": ("X-Signature", os.environ["WEBHOOK_SECRET"].encode(), ""),
    "/webhook/whatsapp": ("X-Hub-Signature-256", os.environ["WHATSAPP_APP_SECRET"].encode(), "sha256="),
}


class Sign(requests.auth.AuthBase):
    def __init__(self, route, upper):
        self.header, self.secret, self.prefix = SIGNED[route]
        self.upper = upper

    def __call__(self, request):
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode()
        digest = hmac.new(self.secret, body, hashlib.sha256).hexdigest()
        request.headers[self.header] = self.prefix + (digest.upper() if self.upper else digest)
        return request


@schemathesis.hook
def before_call(context, case, kwargs):
    path, method = case.operation.path, case.method.upper()
    if path == "/webhook/whatsapp" and method == "GET":
        token = (case.query or {}).get("hub.verify_token")
        if isinstance(token, str) and token[:1].isdigit():
            case.query["hub.verify_token"] = os.environ["WHATSAPP_VERIFY_TOKEN"]
        return
    if path not in SIGNED or method != "POST":
        return
    header, _, prefix = SIGNED[path]
    generated = (case.headers or {}).get(header)
    # Malformed signatures, and the well-formed but wrong 64 zeros, go out as generated: those must be 401.
    match = WELL_FORMED.fullmatch(generated) if isinstance(generated, str) else None
    if match and (match.group(1) or "") == prefix and match.group(2).strip("0"):
        kwargs["auth"] = Sign(path, upper=match.group(2) != match.group(2).lower())
PY

# Invalid requests (negative_data_rejection) must be refused with one of the statuses this API uses for bad
# input; the default list would also accept 404, 405, 409, ... and would not accept 413.
cat >"$work/schemathesis.toml" <<'TOML'
[checks.negative_data_rejection]
expected-statuses = [400, 401, 403, 413, 422]
TOML

# run_schemathesis NAME [ARGS...]
# HEAD operations are documented (so the Allow and unsupported-method checks expect them) but not generated:
# their answers have no body to check against a schema; tests/service.rs checks them against GET's.
run_schemathesis() {
  local name=$1; shift
  echo "schemathesis: [$name] schemathesis run, $MAX_EXAMPLES examples per operation, seed $SEED"
  (
    cd "$work"
    SCHEMATHESIS_HOOKS="$work/hooks.py" "$ST" --config-file "$work/schemathesis.toml" run "$ROOT/openapi.yaml" \
      --url "$URL" \
      --checks "$CHECKS" \
      --exclude-method HEAD \
      --phases examples,coverage,fuzzing \
      --max-examples "$MAX_EXAMPLES" \
      --seed "$SEED" \
      --generation-database none \
      --workers 1 \
      --request-timeout 10 \
      --no-color \
      "$@" "${EXTRA_ARGS[@]}"
  )
}

# after_run NAME: the server must have survived, kept stdout to JSON lines, and must exit 0 on SIGTERM.
after_run() {
  local name=$1 status=0
  kill -0 "$pid" 2>/dev/null || { echo "schemathesis: [$name] the server died" >&2; tail -n 20 "$LOG" >&2; status=1; }
  kill -TERM "$pid" 2>/dev/null || true
  local code=0
  wait "$pid" || code=$?
  pid=""
  [ "$code" = 0 ] || { echo "schemathesis: [$name] server exited $code after SIGTERM" >&2; status=1; }
  if ! jq -e . >/dev/null <"$LOG"; then
    echo "schemathesis: [$name] the server's stdout is not only JSON lines" >&2; status=1
  fi
  local server_errors
  server_errors=$(jq -c 'select(.status? >= 500)' <"$LOG" | head -n 5)
  if [ -n "$server_errors" ]; then
    echo "schemathesis: [$name] 5xx answers in the server log:" >&2; echo "$server_errors" >&2; status=1
  fi
  [ -s "$work/$name.stderr" ] && { echo "schemathesis: [$name] stderr not empty:" >&2; head -n 20 "$work/$name.stderr" >&2; status=1; }
  record "[$name] server survived, no 5xx logged, clean SIGTERM exit" "$status"
}

started=$SECONDS
for mode in $MODES; do
  case $mode in
    open)
      AUTH=()
      if ! start_server open; then record "[open] server start" 1; continue; fi
      status=0; seed || status=$?; record "[open] seeding 8 signed deliveries (one duplicate, one WhatsApp)" "$status"
      if [ "$CHECK_SERVED_SPEC" = 1 ]; then
        status=0
        ctype=$(curl -s -o "$work/served.yaml" -w '%{content_type}' "$URL/openapi.yaml")
        [ "$ctype" = application/yaml ] || { echo "schemathesis:   /openapi.yaml content type: '$ctype'" >&2; status=1; }
        cmp -s "$work/served.yaml" openapi.yaml ||
          { echo "schemathesis:   GET /openapi.yaml differs from openapi.yaml (rebuild the binary)" >&2; status=1; }
        record "[open] GET /openapi.yaml serves openapi.yaml as application/yaml" "$status"
      fi
      status=0; run_schemathesis open || status=$?
      record "[open] schemathesis: no 5xx, every answer as documented" "$status"
      after_run open
      ;;
    token)
      TOKEN=$(openssl rand -hex 24)
      AUTH=(-H "Authorization: Bearer $TOKEN")
      if ! start_server token READ_API_TOKEN="$TOKEN" MAX_BODY_BYTES=2048; then record "[token] server start" 1; continue; fi
      status=0; seed || status=$?; record "[token] seeding 8 signed deliveries (one duplicate, one WhatsApp)" "$status"
      status=0
      for path in /messages /stats /metrics; do
        for auth in "" "Bearer wrong-$TOKEN" "Basic $TOKEN"; do
          sent=()
          [ -z "$auth" ] || sent=(-H "Authorization: $auth")
          answer=$(curl -s -D "$work/headers" "${sent[@]}" -w '\n%{http_code}' "$URL$path")
          if [ "$(tail -n 1 <<<"$answer")" != 401 ] ||
            [ "$(head -n 1 <<<"$answer" | jq -r .detail)" != "missing or invalid bearer token" ] ||
            ! grep -qi '^www-authenticate: *bearer' "$work/headers"; then
            echo "schemathesis:   GET $path with '${auth:-no Authorization}': $answer" >&2; status=1
          fi
        done
        code=$(curl -s -o /dev/null -w '%{http_code}' "${AUTH[@]}" "$URL$path")
        [ "$code" = 200 ] || { echo "schemathesis:   GET $path with the token: $code" >&2; status=1; }
      done
      for path in /health/live /health/ready /openapi.yaml; do
        code=$(curl -s -o /dev/null -w '%{http_code}' "$URL$path")
        [ "$code" = 200 ] || { echo "schemathesis:   GET $path without a token: $code" >&2; status=1; }
      done
      record "[token] read endpoints 401 without the token, 200 with it; health and /openapi.yaml open" "$status"
      status=0; run_schemathesis token "${AUTH[@]}" || status=$?
      record "[token] schemathesis (with the bearer token): no 5xx, every answer as documented" "$status"
      after_run token
      ;;
    limits)
      AUTH=()
      if ! start_server limits MAX_CONNECTIONS=2; then record "[limits] server start" 1; continue; fi
      pads=()
      for i in $(seq 80); do pads+=(-H "X-Pad-$i: x"); done
      status=0; expect_error 431 "request headers too large" "${pads[@]}" "$URL/health/live" || status=1
      long=$(printf 'a%.0s' $(seq 20000))
      expect_error 431 "request headers too large" "$URL/messages?q=$long" || status=1
      expect_error 431 "request headers too large" "${pads[@]}" "$URL/no/such/path" || status=1
      record "[limits] 431 JSON for 80 header fields and for a 20 KiB request target" "$status"
      status=0; expect_too_many_connections 2 || status=1
      ok=1
      for _ in $(seq 50); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/health/live")" = 200 ] && { ok=0; break; }
        sleep 0.1
      done
      [ "$ok" = 0 ] || { echo "schemathesis:   no service after the held connections closed" >&2; status=1; }
      record "[limits] 503 JSON 'too many connections' at MAX_CONNECTIONS, service again after" "$status"
      after_run limits
      ;;
    *) echo "schemathesis: unknown mode '$mode' (open, token, limits)" >&2; exit 2 ;;
  esac
done

summary
echo "schemathesis: took $((SECONDS - started)) s"
[ "$failed" -eq 0 ]
