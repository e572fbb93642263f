#!/usr/bin/env bash
# Sends one correctly signed message to a running service and prints the answer.
# Usage: scripts/send.sh ['<json body>']   (URL defaults to http://127.0.0.1:8000)
set -euo pipefail
: "${WEBHOOK_SECRET:?set WEBHOOK_SECRET to the secret the service uses}"
URL=${URL:-http://127.0.0.1:8000}
BODY=${1:-"{\"message_id\":\"demo-$(date +%s%N)\",\"from\":\"+919876543210\",\"to\":\"+14155550100\",\"ts\":\"$(date -u +%Y-%m-%dT%H:%M:%SZ)\",\"text\":\"Hello from scripts/send.sh\"}"}
SIG=$("$(dirname "$0")/sign.sh" "$BODY")
echo "POST $URL/webhook  X-Signature: $SIG" >&2
curl -sS -w '\nHTTP %{http_code}\n' -H 'Content-Type: application/json' -H "X-Signature: $SIG" -d "$BODY" "$URL/webhook"
