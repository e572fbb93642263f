#!/usr/bin/env python3
"""Checks the container files without a Docker engine: compose.yaml and local/docker-compose.yml parse and
define what SPEC §7 and the Makefile rely on, and local/Dockerfile builds the local listener as a non-root,
healthchecked image serving 0.0.0.0:8000 with its database on /data. (hadolint lints the Dockerfile
separately; the container's runtime behaviour is tested on the binary itself in tests/service.rs.)"""
import pathlib
import re
import sys

import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
passed = 0
failed = []


def check(name, condition):
    global passed
    if condition:
        passed += 1
        print(f"container: ok   {name}")
    else:
        failed.append(name)
        print(f"container: FAIL {name}", file=sys.stderr)


root_compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
check("compose.yaml includes local/docker-compose.yml", root_compose.get("include") == ["local/docker-compose.yml"])
check("compose.yaml names the project", root_compose.get("name") == "webhook-ingest")

compose_path = ROOT / "local" / "docker-compose.yml"
compose = yaml.safe_load(compose_path.read_text())
api = compose.get("services", {}).get("api", {})
check("service api exists", bool(api))
build = api.get("build", {})
context = (compose_path.parent / build.get("context", "")).resolve()
check("build context is the repository root", context == ROOT and (context / "Cargo.toml").exists())
check("build uses local/Dockerfile", (context / build.get("dockerfile", "")).resolve() == ROOT / "local" / "Dockerfile")
check("port 8000 published on localhost:8000", "8000:8000" in [str(p) for p in api.get("ports", [])])
check("named volume mounted at /data", "data:/data" in api.get("volumes", []) and "data" in (compose.get("volumes") or {}))
env = api.get("environment", {})
check("WEBHOOK_SECRET passed through", env.get("WEBHOOK_SECRET") == "${WEBHOOK_SECRET:-}")
check("DATABASE_URL passed through, default sqlite:////data/app.db",
      env.get("DATABASE_URL") == "${DATABASE_URL:-sqlite:////data/app.db}")
check("LOG_LEVEL passed through", str(env.get("LOG_LEVEL", "")).startswith("${LOG_LEVEL"))
grace = str(api.get("stop_grace_period", "0s"))
check("stop grace period covers the 30 s drain", grace.endswith("s") and int(grace[:-1]) > 30)

dockerfile = (ROOT / "local" / "Dockerfile").read_text()
stages = re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile, re.M)
check("multi-stage: builder on the official Rust image", len(stages) == 2 and stages[0][0].startswith("rust:"))
check("small runtime image", stages[-1][0].startswith("gcr.io/distroless/cc"))
check("built with --features local and the lock file", "--locked --features local" in dockerfile)
user = re.findall(r"^USER\s+(\S+)", dockerfile, re.M)
check("runs as a non-root user", bool(user) and user[-1].split(":")[0] not in ("0", "root"))
check("listens on 0.0.0.0:8000", "LISTEN_ADDR=0.0.0.0:8000" in dockerfile and re.search(r"^EXPOSE 8000$", dockerfile, re.M))
check("database at /data/app.db on a volume",
      "DATABASE_URL=sqlite:////data/app.db" in dockerfile and 'VOLUME ["/data"]' in dockerfile)
check("HEALTHCHECK uses the binary's healthcheck", re.search(r'HEALTHCHECK .*\n?.*"healthcheck"\]', dockerfile) is not None)
for source in re.findall(r"^COPY\s+(?!--from)(.+?)\s+\S+$", dockerfile, re.M):
    for path in source.split():
        check(f"COPY source {path} exists", (ROOT / path).exists())

makefile = (ROOT / "Makefile").read_text()
for target, command in [("up", "docker compose up -d --build"), ("down", "docker compose down -v"),
                        ("logs", "docker compose logs -f api")]:
    check(f"make {target} runs `{command}`", re.search(rf"^{target}:.*\n\t{re.escape(command)}$", makefile, re.M) is not None)

print(f"container: {passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
