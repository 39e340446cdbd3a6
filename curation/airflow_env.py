"""An embedded Airflow for the demo and tests: SQLite metadata DB, no examples, our dags/.

Production deployments point AIRFLOW_HOME (or their own airflow.cfg) at a real database and
executor; nothing here is needed there.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from curation.errors import OperatorError

REPO = Path(__file__).resolve().parents[1]


def airflow_env(home: Path) -> dict[str, str]:
    home = Path(home).resolve()
    venv_bin = str(Path(sys.executable).parent)  # `airflow` spawns `airflow` by name
    return {
        **os.environ,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '')}",
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        "PYTHONPATH": f"{REPO}:{os.environ.get('PYTHONPATH', '')}",
    }


def _airflow(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    airflow = str(Path(sys.executable).parent / "airflow")
    return subprocess.run([airflow, *args], env=env, capture_output=True, text=True, timeout=timeout)


def init_db(home: Path) -> dict[str, str]:
    """Create or migrate the SQLite metadata DB once; returns the environment to run Airflow in."""
    env = airflow_env(home)
    Path(home).mkdir(parents=True, exist_ok=True)
    result = _airflow(["db", "migrate"], env, timeout=600)
    if result.returncode != 0:
        raise OperatorError(f"`airflow db migrate` failed in {home}: {result.stderr.strip().splitlines()[-1:]}")
    return env


def dags_test(home: Path, dag_id: str, conf: dict, timeout: float = 1800) -> subprocess.CompletedProcess:
    """`airflow dags test` one run of `dag_id` with `conf`, in-process tasks, SQLite DB."""
    env = init_db(home)
    return _airflow(["dags", "test", dag_id, "--conf", json.dumps(conf)], env, timeout=timeout)


def asset_events(home: Path, asset_name: str) -> list[dict]:
    """The `extra` of every event of one asset, oldest first, from the metadata DB."""
    db = Path(home) / "airflow.db"
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT e.extra FROM asset_event e JOIN asset a ON a.id = e.asset_id "
            "WHERE a.name = ? ORDER BY e.id", (asset_name,)).fetchall()
    return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]
