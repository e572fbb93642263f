#!/usr/bin/env bash
# compose.yaml uses `include`, which Docker Compose understands from 2.20 on; an older Compose stops with a
# parse error that does not say so. The Makefile's compose targets run this first.
set -euo pipefail
required=2.20.0
if ! version=$(docker compose version --short 2>/dev/null); then
    echo "make: Docker Compose $required or newer is needed (the 'docker compose' plugin; the standalone docker-compose v1 does not read compose.yaml's include)" >&2
    exit 1
fi
version=${version#v}
if [ "$(printf '%s\n' "$required" "$version" | sort -V | head -n 1)" != "$required" ]; then
    echo "make: Docker Compose $version is too old: compose.yaml uses 'include', which needs Compose $required or newer" >&2
    exit 1
fi
