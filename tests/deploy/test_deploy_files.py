"""Files that cannot run here (no Docker daemon, no Kubernetes) checked in Python: the
compose file, the KubeRay RayCluster, the Dockerfiles' pinned bases, and the constraints."""
from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}
SECRET_VARS = re.compile(r"(PASSWORD|SECRET|SECRET_KEY|FERNET_KEY|SQL_ALCHEMY_CONN)$")
# Read by our code but set elsewhere on purpose: the manifest of a one-off `curate` run, the
# fallback Ray address (the connection wins), and the report URL of the local service.
NOT_IN_COMPOSE = {"ALCHEMIST_MANIFEST", "ALCHEMIST_RAY_ADDRESS", "ALCHEMIST_REPORT_URL", "ALCHEMIST_SERVICE_DIR",
                  "ALCHEMIST_UI_PORT", "ALCHEMIST_RAY_PORT", "ALCHEMIST_REPORT_PORT", "ALCHEMIST_RAY_CPUS",
                  "ALCHEMIST_GPU_SLOTS"}


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


def _env_read_by(folders: tuple[str, ...]) -> set[str]:
    names = set()
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            names.update(re.findall(r"environ(?:\.get\(|\[)\"(ALCHEMIST_[A-Z_]+)\"", path.read_text()))
    return names


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()  # PEP 503


def test_every_image_base_is_pinned_by_digest(compose):
    bases = [line.split()[1] for f in DOCKER.glob("Dockerfile*") for line in f.read_text().splitlines()
             if line.startswith("FROM ")]
    pulled = [s["image"] for s in compose["services"].values() if "build" not in s]
    assert len(bases) == 2 and pulled == [compose["services"]["postgres"]["image"]]
    for image in bases + pulled:
        assert DIGEST.search(image), f"{image} is not pinned by digest"


def test_compose_has_the_cluster_services_built_from_our_dockerfiles(compose):
    services = compose["services"]
    assert AIRFLOW_SERVICES | {"postgres", "airflow-init", "ray-head", "ray-worker"} == set(services)
    for name, service in services.items():
        if "build" in service:
            assert (REPO / service["build"]["dockerfile"]).exists(), name
    assert {services[s]["command"][0] for s in AIRFLOW_SERVICES} == {"api-server", "scheduler", "dag-processor",
                                                                     "triggerer"}
    assert services["ray-worker"]["command"][1] == "--address=ray-head:6379"
    assert "gpu" in services["ray-worker"]["deploy"]["resources"]["reservations"]["devices"][0]["capabilities"]


def test_airflow_settings_are_real_options_and_the_database_is_postgres(compose):
    from airflow.configuration import conf

    options = conf.configuration_description  # every documented option, defaults or not
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        for var in (v for v in env if v.startswith("AIRFLOW__")):
            _, section, key = var.split("__", 2)
            assert key.lower() in options[section.lower()]["options"], f"{name}: {var} is not an Airflow option"
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://")
        assert env["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS"] == "False"


def test_environment_matches_what_the_code_reads(compose):
    from operators.curation_tasks import RAY_CONN_ID
    from operators.policy import GPU_POOL

    scheduler = compose["services"]["airflow-scheduler"]["environment"]
    set_here = {v for v in scheduler if v.startswith("ALCHEMIST_")}
    read = _env_read_by(("curation", "operators", "dags"))
    assert set_here <= read, f"set but never read: {set_here - read}"
    assert read - NOT_IN_COMPOSE <= set_here, f"read but not set: {read - NOT_IN_COMPOSE - set_here}"
    conn = json.loads(scheduler[f"AIRFLOW_CONN_{RAY_CONN_ID.upper()}"])
    assert (conn["host"], conn["port"]) == ("ray-head", 6379)
    assert scheduler["ALCHEMIST_GPU_POOL"] == GPU_POOL
    assert GPU_POOL in compose["services"]["airflow-init"]["command"][0]


def test_no_secret_is_written_in_the_repo(compose):
    for name, service in compose["services"].items():
        for var, value in service.get("environment", {}).items():
            if SECRET_VARS.search(var):
                assert "${" in str(value) and ":?" in str(value), f"{name}.{var} must come from the environment"
    example = dict(line.split("=", 1) for line in (DOCKER / "env.example").read_text().splitlines()
                   if line and not line.startswith("#"))
    assert all(example[k] == "" for k in example if any(w in k for w in ("PASSWORD", "SECRET", "KEY"))), example
    assert "docker/.env" in (REPO / ".gitignore").read_text()


def test_kuberay_cluster_has_the_fields_kuberay_requires():
    """Required by the RayCluster CRD (ray.io/v1): spec.headGroupSpec.template; per worker
    group groupName, minReplicas, maxReplicas, template; and every container a name and image."""
    import ray

    cluster = yaml.safe_load((DOCKER / "kuberay" / "raycluster.yaml").read_text())
    assert (cluster["apiVersion"], cluster["kind"]) == ("ray.io/v1", "RayCluster") and cluster["metadata"]["name"]
    spec = cluster["spec"]
    assert spec["rayVersion"] == ray.__version__
    groups = [spec["headGroupSpec"], *spec["workerGroupSpecs"]]
    for group in spec["workerGroupSpecs"]:
        assert group["groupName"] and group["minReplicas"] <= group.get("replicas", 0) <= group["maxReplicas"]
    for group in groups:
        for container in group["template"]["spec"]["containers"]:
            assert container["name"] and container["image"]
    head = spec["headGroupSpec"]["template"]["spec"]["containers"][0]
    assert {"gcs": 6379, "client": 10001} == {p["name"]: p["containerPort"] for p in head["ports"]
                                              if p["name"] in ("gcs", "client")}
    worker = spec["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"]["nvidia.com/gpu"] == "1" and worker["image"] == "alchemist:gpu"


def test_kuberay_connection_points_shard_tasks_at_the_head_service(monkeypatch):
    from operators.curation_tasks import RAY_CONN_ID, ray_address

    name = yaml.safe_load((DOCKER / "kuberay" / "raycluster.yaml").read_text())["metadata"]["name"]
    line = next(l for l in (DOCKER / "kuberay" / "airflow-connection.env").read_text().splitlines()
                if l.startswith("AIRFLOW_CONN_"))
    var, value = line.split("=", 1)
    assert var == f"AIRFLOW_CONN_{RAY_CONN_ID.upper()}"
    monkeypatch.setenv(var, value)
    monkeypatch.delenv("ALCHEMIST_RAY_ADDRESS", raising=False)
    assert ray_address() == f"ray://{name}-head-svc:10001"


def test_constraints_pin_every_dependency_and_are_used_everywhere():
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    files = sorted((REPO / "constraints").glob("constraints-*.txt"))
    assert [f.name for f in files] == ["constraints-3.11.txt"]  # requires-python allows 3.11 only
    pins = dict(line.split("==") for line in files[0].read_text().splitlines() if line and not line.startswith("#"))
    pins = {_normalized(k): v for k, v in pins.items()}
    for spec in project["dependencies"] + project["optional-dependencies"]["test"]:
        req = Requirement(spec)
        name = _normalized(req.name)
        assert name in pins, f"{name} is not in {files[0].name}: run `make constraints`"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} violates {spec}"
    assert "-c $(CONSTRAINTS)" in (REPO / "Makefile").read_text()
    for dockerfile in DOCKER.glob("Dockerfile*"):
        assert "-c constraints/constraints-3.11.txt" in dockerfile.read_text(), dockerfile.name
