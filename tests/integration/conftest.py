"""The demo run through Airflow, once per test session, shared by the integration tests."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def demo_manifest(tmp_path_factory):
    from curation.demo_data import build_demo_manifest

    return build_demo_manifest(tmp_path_factory.mktemp("demo_inputs"))


@pytest.fixture(scope="session")
def demo_dag_run(airflow_home, ray_session, demo_manifest, tmp_path_factory):
    """`airflow dags test curate` on the demo manifest, joined to the session's Ray."""
    from curation.airflow_env import dags_test

    dataset = tmp_path_factory.mktemp("demo") / "dataset"
    result = dags_test(airflow_home, "curate", {"manifest": str(demo_manifest), "out": str(dataset),
                                                "profile": "offline", "shard_size": 2})
    return dataset, result


@pytest.fixture(scope="module")
def dataset(demo_dag_run):
    """The demo run's dataset directory, once the DAG run is known to have succeeded."""
    path, result = demo_dag_run
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return path
