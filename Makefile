# webhook-ingest
#   make run    serve on 127.0.0.1:8000 (local listener, ./data/app.db, development secrets)
#   make test   every test: lints, unit + integration + Lambda-event tests, crash safety on the release
#               binary, the graders' script, the OpenAPI document fuzzed against the server, a bounded fuzzing
#               run, the event corpus replayed through cargo lambda, the SAM template and container files
#               checked, the alert rules unit-tested and the live /metrics linted, the arm64 Lambda zip built
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
PYTHON ?= python3
# Test and packaging tools (cargo-lambda with zig, cfn-lint, hadolint), pinned, installed here.
VENV := .venv
TOOLS := $(VENV)/.installed
# aws-sam-cli, only for regenerating events/.
SAM_VENV := .venv-sam
# Only `make run` supplies this, and says so; the binary itself has no default secret.
DEV_SECRET := dev-secret-do-not-use-in-production
DEV_WHATSAPP_SECRET := dev-whatsapp-app-secret-do-not-use-in-production
DEV_VERIFY_TOKEN := dev-verify-token
ZIP := target/lambda/webhook-ingest/bootstrap.zip
# cargo-fuzz, pinned, built into .tools/. It runs on the stable toolchain with --sanitizer none.
CARGO_FUZZ := .tools/bin/cargo-fuzz
CARGO_FUZZ_VERSION := 0.13.2
FUZZ_TARGETS := webhook query_params whatsapp whatsapp_statuses lambda_event
FUZZ_SECONDS ?= 20
SOAK_SECONDS ?= 120
# promtool, from Debian's prometheus package at this version, unpacked into .tools/ (make promtool).
# The upstream version is pinned; Debian's revision of it (security rebuilds replace one another in the archive)
# is whichever the apt lists offer.
PROMETHEUS_VERSION := 2.42.0
PROMTOOL := .tools/promtool-$(PROMETHEUS_VERSION)/promtool
# Debian's Chromium, for the browser tests of the inbox page: a browser is used as Debian's security updates keep it.
CHROMIUM ?= /usr/bin/chromium

.PHONY: help run send send-whatsapp test tools check-tools lint unit remote-test server-test crash graders openapi browser fuzz release bench bench-remote bench-fleet bench-smoke soak lambda-e2e \
	lint-template lint-container lint-ops promtool package events check-compose up up-libsql up-monitoring down logs

help:
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

run: ## Serve on 127.0.0.1:8000 with ./data/app.db (WEBHOOK_SECRET, WHATSAPP_*, DATABASE_URL, LISTEN_ADDR override)
	@if [ -z "$${WEBHOOK_SECRET:-}" ]; then echo "make run: WEBHOOK_SECRET is unset; using the development secret '$(DEV_SECRET)'" >&2; fi
	@if [ -z "$${WHATSAPP_APP_SECRET:-}" ]; then echo "make run: WHATSAPP_APP_SECRET is unset; using the development secret '$(DEV_WHATSAPP_SECRET)'" >&2; fi
	@if [ -z "$${WHATSAPP_VERIFY_TOKEN:-}" ]; then echo "make run: WHATSAPP_VERIFY_TOKEN is unset; using the development token '$(DEV_VERIFY_TOKEN)'" >&2; fi
	WEBHOOK_SECRET="$${WEBHOOK_SECRET:-$(DEV_SECRET)}" \
	WHATSAPP_APP_SECRET="$${WHATSAPP_APP_SECRET:-$(DEV_WHATSAPP_SECRET)}" \
	WHATSAPP_VERIFY_TOKEN="$${WHATSAPP_VERIFY_TOKEN:-$(DEV_VERIFY_TOKEN)}" \
	DATABASE_URL="$${DATABASE_URL:-sqlite:///data/app.db}" \
	$(CARGO) run --release --features local

send: ## Send one signed message to a running `make run` (BODY='{"message_id":...}' to choose it)
	WEBHOOK_SECRET="$${WEBHOOK_SECRET:-$(DEV_SECRET)}" scripts/send.sh $(if $(BODY),'$(BODY)')

send-whatsapp: ## Send a sample signed WhatsApp Cloud API delivery to a running `make run` (BODY='{"object":...}' or FILE=path to choose it)
	WHATSAPP_APP_SECRET="$${WHATSAPP_APP_SECRET:-$(DEV_WHATSAPP_SECRET)}" scripts/send-whatsapp.sh $(if $(FILE),"$$(cat $(FILE))",$(if $(BODY),'$(BODY)'))

test: check-tools lint unit crash graders openapi browser fuzz bench-smoke lambda-e2e lint-template lint-container lint-ops package ## Run every test

check-tools:
	@for tool in curl jq openssl $(PYTHON); do command -v $$tool >/dev/null || { echo "make: '$$tool' is needed by the tests (apt-get install $$tool)" >&2; exit 1; }; done

tools: $(TOOLS) ## Install the pinned test and packaging tools into .venv/ (cargo-lambda, cfn-lint, hadolint)

$(TOOLS): tools/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tools/requirements.txt
	touch $@

lint: ## Formatting and clippy, for the Lambda build and the local one
	$(CARGO) fmt --check
	$(CARGO) fmt --check --manifest-path fuzz/Cargo.toml
	$(CARGO) clippy --all-targets -- -D warnings
	$(CARGO) clippy --all-targets --features local -- -D warnings
	$(CARGO) clippy --all-targets --no-default-features --features local -- -D warnings
	$(CARGO) clippy -p webhook-bench -- -D warnings

unit: ## Unit, integration, Lambda-event and corpus-replay tests (`cargo test --features local NAME` for one)
	@if [ -z "$${LIBSQL_TEST_URL:-}" ]; then echo "unit: LIBSQL_TEST_URL is not set: every test stores in local files, and the tests that need a real libSQL server are reported ignored (make server-test SQLD=path/to/sqld runs them)"; fi
	$(CARGO) test --features local
	@if [ "$$(id -u)" = 0 ]; then $(CARGO) test --features local --test faults -- --ignored a_full_disk; \
	else echo "unit: not root: the full-disk test, which mounts a tmpfs, was not run (it is reported ignored)"; fi

remote-test: ## The integration suite and the graders on the libSQL server in LIBSQL_TEST_URL, directly and through replicas
	@[ -n "$${LIBSQL_TEST_URL:-}$(ON_SERVER)" ] || { echo "remote-test: set LIBSQL_TEST_URL to a libSQL server, e.g. http://127.0.0.1:8080" >&2; exit 2; }
	for mode in remote replica; do \
		echo "remote-test: LIBSQL_TEST_MODE=$$mode"; \
		for test in $(INTEGRATION_TESTS); do \
			LIBSQL_TEST_MODE=$$mode $(ON_SERVER) $(CARGO) test --features local --test $$test -- --include-ignored --skip a_full_disk --nocapture || exit 1; \
		done; \
		LIBSQL_TEST_MODE=$$mode $(ON_SERVER) $(MAKE) graders || exit 1; \
	done

# The integration test binaries, which remote-test runs one at a time.
INTEGRATION_TESTS := $(basename $(notdir $(wildcard tests/*.rs)))
# A command remote-test runs each test binary and the graders under; server-test gives each a fresh sqld, so
# no replica's first sync copies the history of the tests before it.
ON_SERVER ?=

# A libSQL server binary (sqld) for server-test and bench-fleet: SQLD=path/to/sqld. None is installed here.
SQLD ?=
# How those start every sqld: sqld 0.24.32 and later can stop committing for good under concurrent writers
# with its default frame-count checkpoints, and periodic ones avoid it (docs/storage.md: "sqld under
# concurrent writers"). SQLD_ARGS= runs it as it comes.
SQLD_ARGS ?= --checkpoint-interval-s 10
export SQLD_ARGS
FLEET ?= 8x1,16x1,64x1,4x32
FLEET_SECONDS ?= 60

server-test: release ## On fresh sqld servers (SQLD=path): remote-test, each test binary and the graders on a server of its own, then a 20 s fleet of 16 instances
	@[ -x "$(SQLD)" ] || { echo "server-test: set SQLD to a sqld binary (libSQL server), e.g. SQLD=/usr/local/bin/sqld" >&2; exit 2; }
	$(MAKE) remote-test ON_SERVER="scripts/with-sqld.sh $(SQLD)"
	$(MAKE) bench-fleet FLEET=16x1 FLEET_SECONDS=20

release: ## The local-listener release binary
	$(CARGO) build --release --features local

crash: release ## SIGKILL and SIGTERM under concurrent ingest, against the release binary
	WEBHOOK_INGEST_BIN=target/release/webhook-ingest $(CARGO) test --features local --test crash

graders: release ## SPEC §9 line by line against the release binary on a fresh database
	tests/graders.sh

openapi: release $(TOOLS) ## schemathesis drives openapi.yaml against the server: no 5xx, no answer outside the document
	VENV=$(VENV) tests/schemathesis.sh

browser: release $(TOOLS) ## The inbox page driven in headless Chromium (Debian's chromium: see the README); SCREENSHOTS=dir to keep PNGs
	@command -v $(CHROMIUM) >/dev/null || { echo "browser: $(CHROMIUM) is missing: apt-get install chromium (the README's set-up step)" >&2; exit 1; }
	CHROMIUM=$(CHROMIUM) $(VENV)/bin/python tests/browser.py

$(CARGO_FUZZ):
	$(CARGO) install cargo-fuzz --version $(CARGO_FUZZ_VERSION) --locked --root .tools

fuzz: $(CARGO_FUZZ) ## Each fuzz target (webhook pipeline, query parameters, WhatsApp pipeline, WhatsApp statuses, Lambda events) for FUZZ_SECONDS (default 20)
	for target in $(FUZZ_TARGETS); do \
		mkdir -p target/fuzz-corpus/$$target; \
		seeds=fuzz/seeds/$$target; [ "$$target" != lambda_event ] || seeds=events; \
		$(CARGO_FUZZ) run --sanitizer none $$target target/fuzz-corpus/$$target $$seeds \
			-- -max_total_time=$(FUZZ_SECONDS); \
	done

BENCH := taskset -c 1 target/release/webhook-bench --server-cpu 0

bench: release ## Throughput, latency and bytes per message at 100k and 1M messages (server on cpu 0, load generator on cpu 1), and what each part of a write costs
	$(CARGO) build --release -p webhook-bench
	$(BENCH) --write-costs
	$(BENCH) --messages 100000 --seconds 10
	$(BENCH) --messages 1000000 --seconds 10

bench-remote: release ## Round trips and latency per endpoint on the libSQL server in LIBSQL_BENCH_URL after MESSAGES (default 10000), DELAY_MS (default 10) added per trip
	@[ -n "$${LIBSQL_BENCH_URL:-}" ] || { echo "bench-remote: set LIBSQL_BENCH_URL to a libSQL server, e.g. http://127.0.0.1:8080" >&2; exit 2; }
	$(CARGO) build --release -p webhook-bench
	$(BENCH) --remote "$$LIBSQL_BENCH_URL" --delay-ms $${DELAY_MS:-10} --messages $${MESSAGES:-10000}

bench-fleet: release ## FLEET shapes (INSTANCESxCONNECTIONS, default 8x1,16x1,64x1,4x32), FLEET_SECONDS each (60), on fresh sqld servers (SQLD=path), against plain one-row inserts
	@[ -x "$(SQLD)" ] || { echo "bench-fleet: set SQLD to a sqld binary (libSQL server)" >&2; exit 2; }
	$(CARGO) build --release -p webhook-bench
	taskset -c 1 target/release/webhook-bench --fleet $(FLEET) --seconds $(FLEET_SECONDS) --sqld $(SQLD) \
		$(foreach arg,$(SQLD_ARGS),--sqld-arg=$(arg))

bench-smoke: release ## The benchmark on a tiny load: it runs, and every request succeeds (nothing timed)
	$(CARGO) build --release -p webhook-bench
	$(BENCH) --messages 2000 --seconds 1

soak: release ## Mixed load (ingest, duplicates, reads, bad requests) for SOAK_SECONDS (default 120): errors and RSS
	$(CARGO) build --release -p webhook-bench
	$(BENCH) --messages 100000 --soak $(SOAK_SECONDS)

lambda-e2e: $(TOOLS) ## events/ replayed through `cargo lambda watch` + `cargo lambda invoke`
	VENV=$(VENV) tests/lambda-watch.sh

TEMPLATES := template.yaml template-authorizer.yaml

lint-template: $(TOOLS) ## cfn-lint on the SAM templates (the default one and the API Gateway authorizer variant)
	$(VENV)/bin/cfn-lint $(TEMPLATES)
	@echo "cfn-lint: $(TEMPLATES) passed"

lint-container: $(TOOLS) ## hadolint on the Dockerfile; compose files and Dockerfile checked without Docker
	$(VENV)/bin/hadolint local/Dockerfile
	$(VENV)/bin/python tests/check-container.py

promtool: $(PROMTOOL) ## promtool from Debian's prometheus package (pinned), into .tools/; needs current apt lists

# apt-get download needs no root and installs nothing: only promtool is kept, not the Prometheus server.
$(PROMTOOL):
	rm -rf $(@D) && mkdir -p $(@D)
	cd $(@D) && apt-get download prometheus || { \
		echo "make: Debian's prometheus package is not in the apt lists: run 'apt-get update' as root." >&2; exit 1; }
	case "$$(dpkg-deb -f $(@D)/prometheus_*.deb Version)" in $(PROMETHEUS_VERSION)+*) ;; *) \
		echo "make: the apt lists offer prometheus $$(dpkg-deb -f $(@D)/prometheus_*.deb Version), not $(PROMETHEUS_VERSION);" \
			"set PROMETHEUS_VERSION to it once the alert tests pass with it" >&2; exit 1;; esac
	dpkg --fsys-tarfile $(@D)/prometheus_*.deb | tar -x -O ./usr/bin/promtool > $@.part
	chmod +x $@.part && mv $@.part $@ && rm $(@D)/prometheus_*.deb
	$@ --version

lint-ops: release $(TOOLS) $(PROMTOOL) ## Alert rules unit-tested, Prometheus config checked, the live /metrics linted and matched by every alert and panel
	$(PROMTOOL) check config monitoring/prometheus.yml
	$(PROMTOOL) test rules monitoring/alerts.test.yml
	PROMTOOL=$(PROMTOOL) $(VENV)/bin/python tests/check-metrics.py

package: $(TOOLS) ## The deployable arm64 Lambda zip (cargo lambda build --release --arm64 --output-format zip)
	rustup target add aarch64-unknown-linux-gnu
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(CARGO) lambda build --release --arm64 --output-format zip --bin webhook-ingest
	@echo "package: $(ZIP) is $$(stat -c %s $(ZIP)) bytes"

events: ## Regenerate and re-sign events/ from `sam local generate-event`
	[ -x $(SAM_VENV)/bin/sam ] || { $(PYTHON) -m venv $(SAM_VENV) && $(SAM_VENV)/bin/pip install --quiet -r tools/sam-requirements.txt; }
	SAM=$(SAM_VENV)/bin/sam scripts/make-events.py

check-compose:
	@scripts/check-compose.sh

up: check-compose ## Build and start the container on localhost:8000 (needs Docker Compose 2.20 or newer)
	docker compose up -d --build

up-libsql: check-compose ## The container storing on a libSQL server container (the compose profile libsql; needs Docker)
	DATABASE_URL=http://libsql:8080 docker compose --profile libsql up -d --build

up-monitoring: check-compose ## The container with Prometheus (alerts), Grafana (dashboard) on localhost:9090 and :3000
	docker compose --profile monitoring up -d --build

down: check-compose ## Stop the container and delete its volume (after up-libsql: docker compose --profile libsql down -v)
	docker compose down -v

logs: check-compose ## Follow the container's logs
	docker compose logs -f api
