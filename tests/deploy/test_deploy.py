"""The deployment files, read by the tools their engines use (no Docker engine or cluster here):
the compose file against the compose specification's schema, the manifests through `kubectl kustomize`,
the Dockerfile through hadolint; and everything they tell the warehouse to run or read checked
against the warehouse itself (its CLI, its settings, its routes, its metrics)."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from storage.config import Settings
from warehouse.cli import build_parser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
BIN = Path(sys.executable).parent
SETTINGS = {f"WAREHOUSE_{name.upper()}" for name in Settings.model_fields}


def tool(name: str) -> str:
    found = shutil.which(name, path=f"{BIN}:/usr/local/bin:/usr/bin:/bin")
    assert found, f"{name} is missing: `make install` installs it"
    return found


def warehouse_command(args: list[str]) -> None:
    """The command parses as the warehouse CLI would (argparse exits on anything it does not know)."""
    try:
        build_parser().parse_args(args)
    except SystemExit as exc:
        raise AssertionError(f"not a warehouse command: {args}") from exc


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    return data


def env_example() -> dict[str, str]:
    lines = (DEPLOY / "warehouse.env.example").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


def test_compose_file_follows_the_compose_specification() -> None:
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", "vendor.compose-spec", str(DEPLOY / "compose.yaml")],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_compose_services_run_warehouse_commands_with_real_settings() -> None:
    spec = compose()
    services: dict[str, Any] = spec["services"]
    declared_volumes = set(spec["volumes"])
    app_services = [n for n, s in services.items() if s.get("image", "").startswith("${WAREHOUSE_IMAGE")]
    assert {"api", "worker", "ocr-worker", "migrate", "seed"} <= set(app_services)
    for name, service in services.items():
        profiles = set(service.get("profiles", []))
        for needed in service.get("depends_on", {}):
            assert needed in services, f"{name} depends on a missing service {needed}"
            if not profiles:  # a default service may not wait for one that only a profile starts
                assert not services[needed].get("profiles"), f"{name} depends on profile-only {needed}"
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                assert source in declared_volumes, f"{name} mounts an undeclared volume {source}"
        for key in service.get("environment", {}):
            if key.startswith("WAREHOUSE_"):
                assert key in SETTINGS, f"{name}: {key} is not a warehouse setting"
        if name in app_services and "entrypoint" not in service:
            warehouse_command(service["command"])
        test = service.get("healthcheck", {}).get("test", [])
        if test[:2] == ["CMD", "warehouse"]:
            warehouse_command(test[2:])
    assert services["api"]["command"] == ["serve"]
    assert services["ocr-worker"]["command"] == ["worker", "--ocr"]
    assert services["minio2"]["profiles"] == ["cluster"] and services["locust-master"]["profiles"] == ["load"]


def test_every_required_secret_is_in_the_example_env_file() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Z0-9_]+):\?", text))
    example = env_example()
    assert required and required <= set(example), f"missing from warehouse.env.example: {required - set(example)}"
    for key in example:
        if key.startswith("WAREHOUSE_"):
            assert key in SETTINGS, f"warehouse.env.example: {key} is not a warehouse setting"


def test_nginx_streams_large_uploads() -> None:
    conf = (DEPLOY / "nginx" / "warehouse.conf").read_text()
    for directive in ("proxy_request_buffering off;", "proxy_buffering off;", "client_max_body_size 0;"):
        assert directive in conf
    timeouts = dict(re.findall(r"(proxy_read_timeout|proxy_send_timeout|client_body_timeout) (\d+)s;", conf))
    assert len(timeouts) == 3 and all(int(v) >= 600 for v in timeouts.values()), timeouts
    # Only the API, the public check, health checks and documentation are passed on; /metrics in no spelling.
    passed = re.findall(r"location\s+(\S+)\s*\{\s*proxy_pass", conf)
    assert sorted(passed) == ["/api/", "/console", "/health/", "/schema", "/verify/"], passed
    assert re.search(r"location\s+/\s*\{\s*return 404;", conf)


def kustomize() -> list[dict[str, Any]]:
    done = subprocess.run(
        [tool("kubectl"), "kustomize", str(DEPLOY / "k8s")], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def test_kustomize_builds_manifests_that_fit_the_warehouse() -> None:
    from warehouse.app import create_app

    docs = kustomize()
    by_kind: dict[str, dict[str, Any]] = {}
    for d in docs:
        by_kind.setdefault(d["kind"], {})[d["metadata"]["name"]] = d
    deployments = by_kind["Deployment"]
    assert {"warehouse-api", "warehouse-worker", "warehouse-ocr-worker"} <= set(deployments)
    config = next(iter(by_kind["ConfigMap"].values()))
    for key in config["data"]:
        assert key in SETTINGS, f"config.env: {key} is not a warehouse setting"

    routes = {route.path for route in create_app(Settings(secret_key="k")).routes}
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        assert (
            deployment["spec"]["selector"]["matchLabels"].items()
            <= deployment["spec"]["template"]["metadata"]["labels"].items()
        )
        for container in pod.get("initContainers", []) + pod["containers"]:
            warehouse_command(container["args"])
            refs = {e.get("configMapRef", {}).get("name") for e in container["envFrom"]}
            assert config["metadata"]["name"] in refs, f"{name} does not read the generated config"
            for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                spec = container.get(probe)
                if spec is None:
                    continue
                if "httpGet" in spec:
                    assert spec["httpGet"]["path"] in routes, f"{name} {probe} asks a path the API lacks"
                else:
                    assert spec["exec"]["command"][0] == "warehouse"
                    warehouse_command(spec["exec"]["command"][1:])
    api = deployments["warehouse-api"]["spec"]["template"]["spec"]["containers"][0]
    assert api["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert api["livenessProbe"]["httpGet"]["path"] == "/health/live"

    hpa = by_kind["HorizontalPodAutoscaler"]["warehouse-api"]
    assert hpa["spec"]["scaleTargetRef"]["name"] in deployments
    service = by_kind["Service"]["warehouse-api"]
    assert service["spec"]["selector"].items() <= api_labels(deployments["warehouse-api"]).items()
    ingress = by_kind["Ingress"]["warehouse"]
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-request-buffering"] == "off"
    assert ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
    routed = {(p["path"], p["pathType"]) for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]}
    assert routed == {
        ("/api", "Prefix"),
        ("/console", "Prefix"),
        ("/verify", "Prefix"),
        ("/health", "Prefix"),
        ("/schema", "Prefix"),
        ("/", "Exact"),
    }, "the Ingress routes nothing else (no /metrics): the front page only at / itself"


def api_labels(deployment: dict[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = deployment["spec"]["template"]["metadata"]["labels"]
    return labels


def test_dockerfile_passes_hadolint_and_runs_the_warehouse_cli() -> None:
    dockerfile = DEPLOY / "Dockerfile"
    done = subprocess.run(
        [tool("hadolint"), "--no-color", "--config", str(DEPLOY / "hadolint.yaml"), str(dockerfile)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = dockerfile.read_text().splitlines()
    instructions = {line.split(" ", 1)[0]: line.split(" ", 1)[1] for line in lines if re.match(r"^[A-Z]+ ", line)}
    assert json.loads(instructions["ENTRYPOINT"]) == ["warehouse"]
    warehouse_command(json.loads(instructions["CMD"]))
    healthcheck = json.loads(instructions["HEALTHCHECK"].split(" CMD ", 1)[1])
    warehouse_command(healthcheck[1:])
    assert "tesseract-ocr-vie" in dockerfile.read_text()
    root = DEPLOY.parent
    for line in lines:
        if line.startswith("COPY "):
            for source in shlex.split(line)[1:-1]:
                assert (root / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"


@pytest.mark.asyncio(loop_scope="session")
async def test_dashboard_asks_only_for_metrics_the_warehouse_exports(api: Any) -> None:
    import workers.metrics  # noqa: F401  (the workers' metrics, in this process's registry)

    await api.client.get("/health/live")  # a request, so the request metrics have a series
    exported = (await api.client.get("/metrics")).text
    from prometheus_client import REGISTRY, generate_latest

    exported += generate_latest(REGISTRY).decode()
    names = set(re.findall(r"^(warehouse_[a-z_]+)", exported, re.MULTILINE))
    names |= set(re.findall(r"^# TYPE (warehouse_[a-z_]+)", exported, re.MULTILINE))
    dashboard = json.loads((DEPLOY / "grafana" / "warehouse-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    assert len(exprs) >= 10
    for expr in exprs:
        for metric in re.findall(r"warehouse_[a-z_]+", expr):
            family = re.sub(r"_(bucket|count|sum)$", "", metric)
            assert metric in names or family in names, f"the dashboard asks for {metric}, which nothing exports"
    wanted = {"warehouse_requests_total", "warehouse_queue_jobs", "warehouse_job_seconds_bucket"}
    assert wanted <= {m for e in exprs for m in re.findall(r"warehouse_[a-z_]+", e)}
