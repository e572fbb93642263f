#!/usr/bin/env python3
"""Checks the container files without a Docker engine: compose.yaml and local/docker-compose.yml parse and
define what SPEC §7 and the Makefile rely on, and local/Dockerfile builds the local listener as a non-root,
healthchecked image serving 0.0.0.0:8000 with its database on /data. (hadolint lints the Dockerfile
separately; the container's runtime behaviour is tested on the binary itself in tests/service.rs.)"""
import pathlib
import re
import sys
import tomllib

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
check("LIBSQL_AUTH_TOKEN passed through", env.get("LIBSQL_AUTH_TOKEN") == "${LIBSQL_AUTH_TOKEN:-}")
libsql = compose.get("services", {}).get("libsql", {})
check("profile libsql: a libSQL server, off unless asked for", libsql.get("profiles") == ["libsql"])
image = str(libsql.get("image", ""))
check("libSQL server image pinned to a release", image.startswith("ghcr.io/tursodatabase/libsql-server:v"))
check("libSQL server data on a named volume", "libsql:/var/lib/sqld" in libsql.get("volumes", []))
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

# What cargo needs from the build context before it builds anything: the manifests of the workspace members
# and the files of the declared test targets (cargo refuses a manifest naming targets it cannot find), and
# every file the sources compile in.
copied = {path.rstrip("/") for source in re.findall(r"^COPY\s+(?!--from)(.+?)\s+\S+$", dockerfile, re.M)
          for path in source.split()}
manifest = tomllib.loads((ROOT / "Cargo.toml").read_text())
for member in manifest.get("workspace", {}).get("members", []):
    if member != ".":
        check(f"workspace member {member}: its manifest is copied", f"{member}/Cargo.toml" in copied)
if manifest.get("test"):
    check("declared test targets: tests/ is copied", "tests" in copied)
for included in sorted(set(re.findall(r'include_str!\("\.\./([^"]+)"\)', "".join(
        p.read_text() for p in (ROOT / "src").rglob("*.rs"))))):
    check(f"{included}, compiled in by the sources, is copied", included in copied)

makefile = (ROOT / "Makefile").read_text()
for target, command in [("up", "docker compose up -d --build"), ("down", "docker compose down -v"),
                        ("logs", "docker compose logs -f api"),
                        ("up-libsql", "DATABASE_URL=http://libsql:8080 docker compose --profile libsql up -d --build")]:
    check(f"make {target} runs `{command}`", re.search(rf"^{target}:.*\n\t{re.escape(command)}$", makefile, re.M) is not None)

print(f"container: {passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
