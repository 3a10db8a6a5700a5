"""The Docker Compose file and the Kubernetes manifests say things that hold.

Neither Docker nor a cluster runs here, so the manifests are checked as data:
- Kubernetes objects against the API's own OpenAPI schemas, strictly (unknown fields are
  errors), with the schemas the `kubernetes-validate` package ships;
- the Compose file against the Compose Specification's JSON schema, as vendored by the
  `check-jsonschema` package;
- then what no schema knows: probes on the paths and ports Cairn serves, Services and the
  autoscaler pointing at workloads that exist, every command parsing with `cairn`'s own
  parser, every CAIRN_* variable being a setting Cairn reads, and the Dockerfile copying
  what exists.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from services.cli import build_parser
from services.settings import AdapterSettings, Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose" / "compose.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"
KUBERNETES_VERSION = "1.30.0"  # the oldest minor still common in managed clusters
KUSTOMIZATION = "kustomization.yaml"
ROLES = ("ingest", "processors", "api")
CAIRN_PORT = 8000


def _k8s_files() -> list[Path]:
    return sorted(p for p in K8S.glob("*.yaml") if p.name != KUSTOMIZATION)


def _k8s_objects() -> list[tuple[str, dict[str, Any]]]:
    objects = []
    for path in _k8s_files():
        for document in yaml.safe_load_all(path.read_text()):
            if document is not None:
                objects.append((path.name, document))
    return objects


def _of_kind(kind: str) -> list[dict[str, Any]]:
    return [obj for _, obj in _k8s_objects() if obj.get("kind") == kind]


def _named(kind: str, name: str) -> dict[str, Any]:
    [found] = [obj for obj in _of_kind(kind) if obj["metadata"]["name"] == name]
    return found


def _compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())
    assert isinstance(loaded, dict)
    return loaded


def _setting_names() -> set[str]:
    """Every CAIRN_* environment variable some settings class reads."""
    names: set[str] = set()
    for part in dataclasses.fields(Settings):
        settings_class = part.type if isinstance(part.type, type) else None
        if settings_class is None:  # postponed annotations: look the class up by name
            import services.settings as module

            settings_class = getattr(module, str(part.type))
        names |= {f"CAIRN_{field.upper()}" for field in settings_class.model_fields}
    return names


def _parses_as_a_cairn_command(args: list[str]) -> None:
    parser = build_parser()
    try:
        parsed = parser.parse_args(args)
    except SystemExit:
        pytest.fail(f"`cairn {shlex.join(args)}` is not a command `cairn` accepts")
    assert args[0] in parser.format_help(), f"`cairn {args[0]}` is not in `cairn --help`"
    assert callable(parsed.func)


# --- Kubernetes -----------------------------------------------------------------------


def test_every_kubernetes_object_is_valid_for_the_kubernetes_api() -> None:
    objects = _k8s_objects()
    assert objects, f"no manifests under {K8S}"
    for filename, obj in objects:
        for field in ("apiVersion", "kind"):
            assert obj.get(field), f"{filename}: an object has no {field}"
        assert obj.get("metadata", {}).get("name"), f"{filename}: a {obj['kind']} has no name"
        problem = None
        try:
            kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        except jsonschema.ValidationError as error:
            where = "/".join(str(part) for part in error.absolute_path)
            problem = f"{obj['kind']} {obj['metadata']['name']}: {where}: {error.message}"
        if problem:  # reported outside the except: the schema dump is thousands of lines
            pytest.fail(f"{filename}: {problem}", pytrace=False)


def test_the_kustomization_lists_every_manifest_once() -> None:
    kustomization = yaml.safe_load((K8S / KUSTOMIZATION).read_text())
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == [p.name for p in _k8s_files()]


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return container


def _port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    [number] = [p["containerPort"] for p in container.get("ports", []) if p.get("name") == port]
    return int(number)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_is_a_deployment_probed_on_readyz_and_healthz_where_it_listens(
    role: str,
) -> None:
    deployment = _named("Deployment", f"cairn-{role}")
    container = _container(deployment)
    assert container["command"] == ["cairn"]
    args = container["args"]
    assert args[0] == role
    _parses_as_a_cairn_command(args)
    listens = int(args[args.index("--port") + 1])
    assert args[args.index("--host") + 1] == "0.0.0.0"
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/healthz")):
        check = container[probe]["httpGet"]
        assert check["path"] == path, f"{role}: {probe} asks {check['path']}"
        assert _port_number(container, check["port"]) == listens, f"{role}: {probe} port"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert deployment["spec"]["selector"]["matchLabels"].items() <= labels.items()


def test_services_select_the_pods_of_a_deployment_and_reach_their_port() -> None:
    services = _of_kind("Service")
    assert {s["metadata"]["name"] for s in services} == {"cairn-ingest", "cairn-api"}
    for service in services:
        selector = service["spec"]["selector"]
        targets = [
            d
            for d in _of_kind("Deployment")
            if selector.items() <= d["spec"]["template"]["metadata"]["labels"].items()
        ]
        assert len(targets) == 1, f"Service {service['metadata']['name']} selects {targets}"
        container = _container(targets[0])
        for port in service["spec"]["ports"]:
            assert _port_number(container, port["targetPort"]) == CAIRN_PORT


def test_the_processors_scale_out_within_the_partition_count() -> None:
    processors = _named("Deployment", "cairn-processors")
    assert processors["spec"]["replicas"] >= 2
    pod = processors["spec"]["template"]["spec"]
    assert not any(p.get("hostPort") for c in pod["containers"] for p in c.get("ports", []))
    assert all("persistentVolumeClaim" not in v for v in pod.get("volumes", []))
    [autoscaler] = _of_kind("HorizontalPodAutoscaler")
    target = autoscaler["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", "cairn-processors")
    partitions = int(_named("ConfigMap", "cairn-config")["data"]["CAIRN_TOPIC_PARTITIONS"])
    assert autoscaler["spec"]["minReplicas"] <= autoscaler["spec"]["maxReplicas"] <= partitions


def test_jobs_create_the_topics_and_migrate_the_database() -> None:
    commands = []
    for job in _of_kind("Job"):
        [container] = job["spec"]["template"]["spec"]["containers"]
        assert container["command"] == ["cairn"]
        _parses_as_a_cairn_command(container["args"])
        commands.append(container["args"])
    assert sorted(commands) == [["db", "upgrade"], ["topics"]]


def test_every_workload_reads_settings_cairn_knows_from_objects_that_exist() -> None:
    known = _setting_names()
    config = _named("ConfigMap", "cairn-config")
    secret = _named("Secret", "cairn-secrets")
    keys = set(config["data"]) | set(secret["stringData"])
    assert keys <= known, f"not Cairn settings: {sorted(keys - known)}"
    assert "CAIRN_DATABASE_URL" in secret["stringData"]
    for kind in ("Deployment", "Job"):
        for workload in _of_kind(kind):
            for container in workload["spec"]["template"]["spec"]["containers"]:
                sources = container["envFrom"]
                assert {s["configMapRef"]["name"] for s in sources if "configMapRef" in s} == {
                    "cairn-config"
                }
                assert {s["secretRef"]["name"] for s in sources if "secretRef" in s} == {
                    "cairn-secrets"
                }
                assert {e["name"] for e in container.get("env", [])} <= known


# --- Docker Compose -------------------------------------------------------------------


def test_the_compose_file_follows_the_compose_specification() -> None:
    spec = resources.files("check_jsonschema") / "builtin_schemas/vendor/compose-spec.json"
    schema = json.loads(spec.read_text())
    errors = sorted(
        jsonschema.Draft7Validator(schema).iter_errors(_compose()), key=lambda e: e.path
    )
    assert not errors, "\n".join(
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors
    )


def test_compose_runs_the_services_and_every_cairn_role_from_one_image() -> None:
    services = _compose()["services"]
    assert {"kafka", "postgres", "opensearch"} <= set(services)
    cairn = {name: s for name, s in services.items() if "build" in s}
    assert set(cairn) == {*ROLES, "topics", "migrate"}
    assert len({s["image"] for s in cairn.values()}) == 1
    for name, service in cairn.items():
        build = service["build"]
        assert (COMPOSE.parent / build["context"] / build["dockerfile"]).resolve() == DOCKERFILE
        _parses_as_a_cairn_command(service["command"])
        for dependency in service.get("depends_on", {}):
            assert dependency in services, f"{name} depends on unknown {dependency}"
    assert cairn["topics"]["command"] == ["topics"]
    assert cairn["migrate"]["command"] == ["db", "upgrade"]
    for role in ROLES:
        assert cairn[role]["command"][0] == role
        for job in ("topics", "migrate"):
            condition = cairn[role]["depends_on"][job]["condition"]
            assert condition == "service_completed_successfully"
        assert "/readyz" in " ".join(cairn[role]["healthcheck"]["test"])
    processors = cairn["processors"]
    assert processors["deploy"]["replicas"] >= 2
    assert "ports" not in processors  # fixed host ports would stop it scaling


def test_compose_points_cairn_at_its_services_with_settings_cairn_reads() -> None:
    compose = _compose()
    environment = compose["x-cairn"]["environment"]
    assert set(environment) <= _setting_names()
    services = compose["services"]
    hosts = {
        "CAIRN_KAFKA_BOOTSTRAP": "kafka",
        "CAIRN_DATABASE_URL": "postgres",
        "CAIRN_OPENSEARCH_URL": "opensearch",
    }
    for variable, service in hosts.items():
        assert f"{service}:" in environment[variable] and service in services
    assert environment["CAIRN_DATABASE_URL"].startswith("postgresql+psycopg://")
    partitions = int(environment["CAIRN_TOPIC_PARTITIONS"])
    assert partitions == AdapterSettings().topic_partitions


# --- the image ------------------------------------------------------------------------


def test_the_dockerfile_copies_what_exists_and_runs_cairn() -> None:
    lines = [line.strip() for line in DOCKERFILE.read_text().splitlines()]
    copies = [line.split()[1:-1] for line in lines if line.startswith("COPY ")]
    assert copies, "the Dockerfile copies nothing"
    for sources in copies:
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
    packages = {p.split("*")[0] for p in _packaged()}
    copied = {source for sources in copies for source in sources}
    assert packages <= copied, f"packages not copied into the image: {packages - copied}"
    assert 'ENTRYPOINT ["cairn"]' in lines
    assert any("git" in line.split() for line in lines if "apt-get install" in line)


def _packaged() -> list[str]:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    return list(project["tool"]["setuptools"]["packages"]["find"]["include"])
