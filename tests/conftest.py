"""Session-wide fixtures: one Ray instance and one Airflow database for the whole test run."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
# Airflow reads its home at import time: point it at a throwaway SQLite home for this session.
_AIRFLOW_HOME = Path(tempfile.mkdtemp(prefix="alchemist-airflow-"))
os.environ.update({k: v for k, v in __import__("curation.airflow_env", fromlist=["airflow_env"])
                   .airflow_env(_AIRFLOW_HOME).items() if k.startswith("AIRFLOW")})


@pytest.fixture(scope="session")
def ray_session():
    """A local Ray with 2 CPUs, as on this machine; its address is exported so that
    subprocesses (the CLI, `airflow dags test`) join it instead of starting their own."""
    import ray

    ctx = ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    address = ctx.address_info["address"]
    os.environ["ALCHEMIST_RAY_ADDRESS"] = address
    yield address
    ray.shutdown()


@pytest.fixture(autouse=True)
def _stop_stage_actors():
    """Warm stage actors outlive a job on purpose; between tests they would only hold CPUs
    that the next test's stages need."""
    yield
    import sys

    if "ray" in sys.modules and sys.modules["ray"].is_initialized():
        from curation.stage_pool import stop_stage_actors

        stop_stage_actors()


@pytest.fixture(scope="session")
def airflow_home():
    """One migrated SQLite Airflow metadata DB shared by every DAG test."""
    from curation.airflow_env import init_db

    init_db(_AIRFLOW_HOME)
    return _AIRFLOW_HOME
