#!/usr/bin/env python3
"""Checks the container files without a Docker engine: compose.yaml and local/docker-compose.yml parse and
define what SPEC §7 and the Makefile rely on, and local/Dockerfile builds the local listener as a non-root,
healthchecked image serving 0.0.0.0:8000 with its database on /data. (hadolint lints the Dockerfile
separately; the container's runtime behaviour is tested on the binary itself in tests/service.rs.)"""
import fnmatch
import os
import pathlib
import re
import stat
import subprocess
import sys
import tempfile
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
check("no `# syntax=` line: nothing to fetch from a registry before the build", not re.search(r"^#\s*syntax\s*=", dockerfile, re.M))
cache_mounts = re.findall(r"--mount=type=cache,target=(\S+?)(?:,|\s)", dockerfile)
check("cargo's registry and target/ are cache mounts", {"/usr/local/cargo/registry", "/src/target"} <= set(cache_mounts))
runtime_sources = re.findall(r"^COPY --from=build\s+(?:--\S+\s+)?(\S+)", dockerfile, re.M)
check("the runtime stage copies nothing out of a cache mount (it is not in the build image)",
      runtime_sources and not any(s.startswith(m + "/") for s in runtime_sources for m in cache_mounts))
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



def docker_ignores(path, patterns):
    """Whether .dockerignore keeps `path` out of the build context: the last pattern matching the path or one of
    its parent directories decides, `!` letting it back in (Docker's rule, for the patterns used here)."""
    parts = path.split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        exception = pattern.startswith("!")
        if any(fnmatch.fnmatchcase(prefix, pattern.lstrip("!").rstrip("/")) for prefix in prefixes):
            ignored = not exception
    return ignored


dockerignore = ROOT / ".dockerignore"
check(".dockerignore exists at the build context's root", dockerignore.exists())
patterns = [line.strip() for line in dockerignore.read_text().splitlines() if line.strip() and not line.startswith("#")]
for path in sorted(copied):
    files = [p.relative_to(ROOT).as_posix() for p in (ROOT / path).rglob("*") if p.is_file()] if (ROOT / path).is_dir() else [path]
    check(f"COPY source {path} is in the build context", not any(docker_ignores(f, patterns) for f in files + [path]))
for path in ["target", "target/release/webhook-ingest", ".venv", ".venv-sam", ".tools", "data/app.db", ".git",
             "fuzz/target"]:
    check(f"{path} is kept out of the build context", docker_ignores(path, patterns))

makefile = (ROOT / "Makefile").read_text()
for target, command in [("up", "docker compose up -d --build"), ("down", "docker compose down -v"),
                        ("logs", "docker compose logs -f api"),
                        ("up-libsql", "DATABASE_URL=http://libsql:8080 docker compose --profile libsql up -d --build")]:
    check(f"make {target} runs `{command}`", re.search(rf"^{target}:.*\n\t{re.escape(command)}$", makefile, re.M) is not None)

for target in ["up", "up-libsql", "down", "logs"]:
    check(f"make {target} checks the Compose version first", re.search(rf"^{target}: check-compose\b", makefile, re.M) is not None)


def compose_check(version_output):
    """scripts/check-compose.sh against a stand-in `docker` whose `compose version --short` prints
    version_output (None: no compose plugin)."""
    with tempfile.TemporaryDirectory() as bin_dir:
        docker = pathlib.Path(bin_dir) / "docker"
        reply = f"echo {version_output}" if version_output else "echo \"docker: unknown command: docker compose\" >&2; exit 1"
        docker.write_text(f"#!/bin/sh\n{reply}\n")
        docker.chmod(docker.stat().st_mode | stat.S_IXUSR)
        env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
        return subprocess.run([ROOT / "scripts" / "check-compose.sh"], env=env, capture_output=True, text=True)


for version, accepted in [("2.20.0", True), ("v2.29.1", True), ("2.29.1-desktop.1", True), ("2.19.1", False),
                          ("1.29.2", False), (None, False)]:
    run = compose_check(version)
    says_why = accepted or "2.20" in run.stderr
    check(f"Compose {version or '(no plugin)'}: make up {'goes on' if accepted else 'stops, saying 2.20 is needed'}",
          (run.returncode == 0) == accepted and says_why)

print(f"container: {passed} passed, {len(failed)} failed")
sys.exit(1 if failed else 0)
