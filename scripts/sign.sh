#!/usr/bin/env bash
# Prints the X-Signature of a request body: hex HMAC-SHA256 of the exact bytes, keyed by $WEBHOOK_SECRET.
# Usage: scripts/sign.sh '<body>'   or   printf '%s' '<body>' | scripts/sign.sh
set -euo pipefail
: "${WEBHOOK_SECRET:?set WEBHOOK_SECRET to the secret the service uses}"
if [ $# -gt 0 ]; then
  printf '%s' "$1" | openssl dgst -sha256 -hmac "$WEBHOOK_SECRET" -r | cut -d' ' -f1
else
  openssl dgst -sha256 -hmac "$WEBHOOK_SECRET" -r | cut -d' ' -f1
fi
