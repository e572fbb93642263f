#!/usr/bin/env python3
"""Checks the container files without a Docker engine: compose.yaml and local/docker-compose.yml parse and
define what SPEC §7 and the Makefile rely on, local/Dockerfile builds the local listener as a non-root,
healthchecked image serving 0.0.0.0:8000 with its database on /data, and the profile monitoring
(monitoring/compose.yaml) runs Prometheus and Grafana with the files that make lint-ops checks. (hadolint lints the Dockerfile
separately; the container's runtime behaviour is tested on the binary itself in tests/service.rs.)"""
import fnmatch
import json
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
check("compose.yaml includes local/docker-compose.yml and monitoring/compose.yaml",
      root_compose.get("include") == ["local/docker-compose.yml", "monitoring/compose.yaml"])
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
# Every variable the README's configuration table lists reaches the container, unset when unset in the
# shell; but LISTEN_ADDR, which the image fixes at 0.0.0.0:8000 (the port compose publishes).
readme = (ROOT / "README.md").read_text()
table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
listed = re.findall(r"^\| `([A-Z_]+)` \|", table, flags=re.MULTILINE)
check("the README's configuration table lists the variables", len(listed) >= 10 and "READ_API_TOKEN" in listed)
for var in listed:
    if var in ("LISTEN_ADDR", "DATABASE_URL", "LOG_LEVEL"):
        continue
    check(f"{var} passed through", env.get(var) == "${%s:-}" % var)
check("LISTEN_ADDR fixed by the image, not passed through", "LISTEN_ADDR" not in env)
libsql = compose.get("services", {}).get("libsql", {})
check("profile libsql: a libSQL server, off unless asked for", libsql.get("profiles") == ["libsql"])
image = str(libsql.get("image", ""))
check("libSQL server image pinned to a release", image.startswith("ghcr.io/tursodatabase/libsql-server:v"))
check("libSQL server data on a named volume", "libsql:/var/lib/sqld" in libsql.get("volumes", []))
check("libSQL server checkpoints on a timer (frame-count checkpoints can stall it; docs/storage.md)",
      str(libsql.get("environment", {}).get("SQLD_CHECKPOINT_INTERVAL_S", "")).isdigit())
grace = str(api.get("stop_grace_period", "0s"))
check("stop grace period covers the 30 s drain", grace.endswith("s") and int(grace[:-1]) > 30)


def mounts(service, base):
    """A service's bind mounts: {path in the container: file on the host}."""
    found = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith("."):
            found[target] = (base / source).resolve()
    return found


monitoring_path = ROOT / "monitoring" / "compose.yaml"
monitoring = yaml.safe_load(monitoring_path.read_text()).get("services", {})
check("profile monitoring: Prometheus, Grafana and a blackbox exporter, off unless asked for",
      set(monitoring) == {"prometheus", "grafana", "blackbox"}
      and all(s.get("profiles") == ["monitoring"] for s in monitoring.values()))
for name, service in monitoring.items():
    check(f"monitoring: {name} image pinned to a release", re.search(r":v?\d+\.\d+\.\d+$", str(service.get("image", ""))))
    check(f"monitoring: {name} publishes ports on localhost only",
          all(str(p).startswith("127.0.0.1:") for p in service.get("ports", [])))
    for target, source in mounts(service, monitoring_path.parent).items():
        check(f"monitoring: {name} mounts {source.relative_to(ROOT)}, which exists", source.is_file())
prometheus_mounts = mounts(monitoring.get("prometheus", {}), monitoring_path.parent)
prometheus_config = yaml.safe_load((ROOT / "monitoring" / "prometheus.yml").read_text())
check("monitoring: Prometheus gets monitoring/prometheus.yml as its configuration",
      prometheus_mounts.get("/etc/prometheus/prometheus.yml") == ROOT / "monitoring" / "prometheus.yml")
for rule_file in prometheus_config.get("rule_files", []):
    check(f"monitoring: rule file {rule_file} is mounted beside the configuration",
          prometheus_mounts.get(f"/etc/prometheus/{rule_file}") == ROOT / "monitoring" / rule_file)
jobs = {job["job_name"]: job for job in prometheus_config.get("scrape_configs", [])}
check("monitoring: Prometheus scrapes the service api:8000 as job webhook-ingest (the alerts' job)",
      jobs.get("webhook-ingest", {}).get("static_configs", [{}])[0].get("targets") == ["api:8000"])
ready_probe = jobs.get("webhook-ingest-ready", {})
check("monitoring: the blackbox exporter probes /health/ready",
      ready_probe.get("static_configs", [{}])[0].get("targets") == ["http://api:8000/health/ready"]
      and any(r.get("replacement") == "blackbox:9115" for r in ready_probe.get("relabel_configs", [])))
grafana_mounts = mounts(monitoring.get("grafana", {}), monitoring_path.parent)
datasources = yaml.safe_load((ROOT / "monitoring" / "grafana" / "datasource.yml").read_text())["datasources"]
providers = yaml.safe_load((ROOT / "monitoring" / "grafana" / "dashboards.yml").read_text())["providers"]
dashboard = json.loads((ROOT / "monitoring" / "grafana" / "webhook-ingest.json").read_text())
check("monitoring: Grafana's data source is the compose Prometheus",
      [d.get("url") for d in datasources] == ["http://prometheus:9090"])
check("monitoring: Grafana provisions its data source and dashboard provider",
      any(t.startswith("/etc/grafana/provisioning/datasources/") for t in grafana_mounts)
      and any(t.startswith("/etc/grafana/provisioning/dashboards/") for t in grafana_mounts))
dashboard_dirs = {p["options"]["path"] for p in providers}
check("monitoring: the dashboard is mounted where the provider loads dashboards from",
      any(pathlib.PurePosixPath(t).parent.as_posix() in dashboard_dirs and s.name == "webhook-ingest.json"
          for t, s in grafana_mounts.items()))
panel_sources = {t["datasource"]["uid"] for p in dashboard["panels"] for t in p["targets"]} | \
    {p["datasource"]["uid"] for p in dashboard["panels"]}
check("monitoring: every dashboard panel queries the provisioned data source",
      panel_sources == {d["uid"] for d in datasources})
check("monitoring: dashboard panels have unique ids and a query each",
      len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
      and all(t.get("expr") for p in dashboard["panels"] for t in p["targets"]))

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

check("make up-monitoring runs `docker compose --profile monitoring up -d --build`",
      re.search(r"^up-monitoring:.*\n\tdocker compose --profile monitoring up -d --build$", makefile, re.M) is not None)
for target in ["up", "up-libsql", "up-monitoring", "down", "logs"]:
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
