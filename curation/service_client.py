"""A small client of the running service's Airflow REST API (token from the auth manager),
for the end-to-end test and the service benchmark."""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request

HTTP_TIMEOUT_S = 60
POLL_S = 5


class ServiceApi:
    def __init__(self, base: str, password: str, user: str = "admin"):
        self.base, self.token = base, None
        self.token = self.call("POST", "/auth/token", {"username": user, "password": password})["access_token"]

    def call(self, method: str, path: str, body: dict | None = None) -> dict:
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data, headers, method=method)
        with urllib.request.urlopen(req, timeout=HTTP_TIMEOUT_S) as r:
            return json.loads(r.read())

    def wait_for(self, path: str, done, timeout: float) -> dict:
        """GET `path` until `done(answer)`; 404 means not there yet (a DAG not parsed yet), and
        a slow answer on a loaded machine is asked again, until `timeout`."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                got = self.call("GET", path)
                if done(got):
                    return got
            except urllib.error.HTTPError as e:
                if e.code != 404:
                    raise
            except (TimeoutError, urllib.error.URLError):
                pass
            time.sleep(POLL_S)
        raise TimeoutError(f"timed out after {timeout:.0f}s waiting on {path}")

    def run_dag(self, dag_id: str, conf: dict, timeout: float) -> tuple[dict, str]:
        """Trigger `dag_id` once it is parsed and wait for the run to finish; (run, its API path)."""
        self.wait_for(f"/api/v2/dags/{dag_id}", lambda d: d["dag_id"] == dag_id, timeout=timeout)
        run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": conf})
        path = f"/api/v2/dags/{dag_id}/dagRuns/{urllib.parse.quote(run['dag_run_id'], safe='')}"
        return self.wait_for(path, lambda r: r["state"] in ("success", "failed"), timeout=timeout), path
