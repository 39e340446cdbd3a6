"""Task policies shared by every DAG: retry back-off, shard timeouts, the GPU pool, and
operator mistakes failing at once.

A retry helps a flaky worker or a lost Ray node, never a bad config or a missing file, so
an `OperatorError` becomes `AirflowFailException` (no retries) in every task.
Cheap to import: DAG files use it at parse time.
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from datetime import timedelta

from airflow.sdk import Param
from airflow.sdk.exceptions import AirflowFailException

GPU_POOL = os.environ.get("ALCHEMIST_GPU_POOL", "alchemist_gpu")  # created by `make up`
SHARD_TIMEOUT = timedelta(seconds=int(os.environ.get("ALCHEMIST_SHARD_TIMEOUT_S", "7200")))

DEFAULT_ARGS = {
    "retries": 2,
    "retry_delay": timedelta(seconds=30),
    "retry_exponential_backoff": 2.0,  # the delay doubles: 30 s, 60 s, ... capped below
    "max_retry_delay": timedelta(minutes=10),
}


@contextmanager
def operator_errors_fail():
    """Re-raise an operator mistake as a failure that Airflow does not retry."""
    from curation.errors import OperatorError

    try:
        yield
    except OperatorError as e:
        raise AirflowFailException(str(e)) from None


def run_params(dataset: str) -> dict:
    """The run settings every curation DAG takes: dataset name, profile, config, shard size."""
    return {
        "dataset": Param(dataset, type="string", description="dataset name under the warehouse"),
        "profile": Param("offline", enum=["offline", "lite", "full"]),
        "config": Param("", type="string", description="optional YAML run config"),
        "shard_size": Param(0, type="integer", minimum=0, description="rows per shard; 0: the config's"),
    }
