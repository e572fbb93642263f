# webhook-ingest
#   make run    serve on 127.0.0.1:8000 (local listener, ./data/app.db, a development secret)
#   make test   every test: format, lints, unit + integration + Lambda-event tests, the graders' script
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
BIN := target/release/webhook-ingest
# Only `make run` supplies this, and says so; the binary itself has no default secret.
DEV_SECRET := dev-secret-do-not-use-in-production

.PHONY: help run test lint unit graders release send tools

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

run: ## Serve on 127.0.0.1:8000 with ./data/app.db (WEBHOOK_SECRET, DATABASE_URL, LISTEN_ADDR override)
	@if [ -z "$${WEBHOOK_SECRET:-}" ]; then echo "make run: WEBHOOK_SECRET is unset; using the development secret '$(DEV_SECRET)'" >&2; fi
	WEBHOOK_SECRET="$${WEBHOOK_SECRET:-$(DEV_SECRET)}" \
	DATABASE_URL="$${DATABASE_URL:-sqlite:///data/app.db}" \
	$(CARGO) run --release --features local

send: ## Send one signed message to a running `make run` (BODY='{"message_id":...}' to choose it)
	WEBHOOK_SECRET="$${WEBHOOK_SECRET:-$(DEV_SECRET)}" scripts/send.sh $(if $(BODY),'$(BODY)')

test: tools lint unit graders ## Run every test

tools:
	@for tool in curl jq openssl; do command -v $$tool >/dev/null || { echo "make: '$$tool' is needed by the tests (apt-get install $$tool)" >&2; exit 1; }; done

lint: ## Formatting and clippy, for the Lambda build and the local one
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --features local -- -D warnings

unit: ## Unit, integration and Lambda-event tests (`cargo test --features local NAME` for one)
	$(CARGO) test --features local

release: ## The local-listener release binary
	$(CARGO) build --release --features local

graders: release ## SPEC §9 line by line against the release binary on a fresh database
	tests/graders.sh
