#!/usr/bin/env bash
# Sends a sample WhatsApp Cloud API delivery (a text message, and the sent and delivered statuses of the
# business's reply to it) to a running service, signed as Meta signs it
# (X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the exact body, keyed by the app secret>), and prints the answer.
# Usage: scripts/send-whatsapp.sh ['<json body>']   (URL defaults to http://127.0.0.1:8000)
set -euo pipefail
: "${WHATSAPP_APP_SECRET:?set WHATSAPP_APP_SECRET to the app secret the service uses}"
URL=${URL:-http://127.0.0.1:8000}
id="wamid.demo-$(date +%s%N)"
BODY=${1:-"{\"object\":\"whatsapp_business_account\",\"entry\":[{\"id\":\"102290129340398\",\"changes\":[{\"field\":\"messages\",\"value\":{\"messaging_product\":\"whatsapp\",\"metadata\":{\"display_phone_number\":\"15550001234\",\"phone_number_id\":\"123456\"},\"contacts\":[{\"profile\":{\"name\":\"Kerry Fisher\"},\"wa_id\":\"16315551234\"}],\"messages\":[{\"from\":\"16315551234\",\"id\":\"$id\",\"timestamp\":\"$(date +%s)\",\"type\":\"text\",\"text\":{\"body\":\"Hello from scripts/send-whatsapp.sh\"}}],\"statuses\":[{\"id\":\"$id.reply\",\"status\":\"sent\",\"timestamp\":\"$(date +%s)\",\"recipient_id\":\"16315551234\"},{\"id\":\"$id.reply\",\"status\":\"delivered\",\"timestamp\":\"$(date +%s)\",\"recipient_id\":\"16315551234\"}]}}]}]}"}
SIG="sha256=$(printf '%s' "$BODY" | openssl dgst -sha256 -hmac "$WHATSAPP_APP_SECRET" -r | cut -d' ' -f1)"
echo "POST $URL/webhook/whatsapp  X-Hub-Signature-256: $SIG" >&2
curl -sS -w '\nHTTP %{http_code}\n' -H 'Content-Type: application/json' -H "X-Hub-Signature-256: $SIG" \
  --data-binary "$BODY" "$URL/webhook/whatsapp"
