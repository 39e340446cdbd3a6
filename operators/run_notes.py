"""Put a run's counts and its report link where a person looks in the UI: the notes.

The task SDK cannot write notes, so the `commit` task writes them through Airflow's public
REST API with the `alchemist_api` connection (the service creates it; without it, e.g. under
`airflow dags test`, the notes are skipped and the same text stays in the commit's summary).
"""
from __future__ import annotations

import json
import logging
import urllib.parse
import urllib.request

API_CONN_ID = "alchemist_api"
NOTE_LIMIT = 1000  # characters: the API's limit on a note
HTTP_TIMEOUT_S = 30

log = logging.getLogger("alchemist.operators")


def run_note(summary: dict) -> str:
    """Markdown for the DAG run: the report link first, then totals."""
    counts = ", ".join(f"{k} {v}" for k, v in sorted(summary["counts"].items()))
    return (f"**[Run report]({summary['report']})**\n\n{summary['shards']} shards, profile "
            f"{summary['profile']}: {counts}\n\ndataset `{summary['location']}`")[:NOTE_LIMIT]


def shard_note(funnel: dict) -> str:
    lines = [f"rows in {funnel['rows_in']}, accepted {funnel['accepted']}", "", "rejected:"]
    lines += [f"- {k}: {n}" for k, n in funnel["rejected"].items()] or ["- none"]
    return "\n".join(lines)[:NOTE_LIMIT]


def _api():
    """(base URL, login, password) of the `alchemist_api` connection, or None."""
    try:
        from airflow.sdk import BaseHook

        conn = BaseHook.get_connection(API_CONN_ID)
    except Exception:  # not configured: notes are optional
        return None
    return f"http://{conn.host}:{conn.port}", conn.login, conn.password


def _request(method: str, url: str, body: dict, token: str | None = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(url, json.dumps(body).encode(), headers, method=method)
    with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as response:
        return json.loads(response.read() or b"{}")


def write_notes(dag_id: str, run_id: str, summary: dict, shard_funnels: dict[int, dict],
                shard_task: str = "run_shard") -> bool:
    """Write the run's note and every shard task instance's note; False when not configured."""
    api = _api()
    if api is None:
        log.info("no %r connection: run notes skipped", API_CONN_ID)
        return False
    base, login, password = api
    token = _request("POST", f"{base}/auth/token", {"username": login, "password": password})["access_token"]
    run = f"{base}/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run_id, safe='')}"
    _request("PATCH", run, {"note": run_note(summary)}, token)
    for map_index, funnel in shard_funnels.items():
        _request("PATCH", f"{run}/taskInstances/{shard_task}/{map_index}", {"note": shard_note(funnel)}, token)
    return True
