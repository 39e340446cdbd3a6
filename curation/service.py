"""`make up` / `make down`: Airflow 3 and a Ray head on this machine, as one local service.

`up` starts the Airflow api-server (the UI, authentication on), scheduler (LocalExecutor),
dag-processor and triggerer, a Ray head that every shard task joins through the
`alchemist_ray` connection, and a static server for run reports. All state lives in one
git-ignored directory (`.service/`): the metadata DB (SQLite: one machine, and Airflow 3's
LocalExecutor accepts it), the admin password (generated once, printed once), Ray's temp dir
(so nothing lands in /tmp/ray), logs, and the warehouse the DAGs write to.

Every process is started in its own session and carries a marker in its environment, so
`down` finds exactly this service's processes, however deep they forked (LocalExecutor
workers, Ray workers), and nothing else: SIGTERM, then SIGKILL after a grace period, then a
check that nothing is left.
"""
from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from curation.airflow_env import REPO, airflow_env
from curation.errors import OperatorError

MARKER = "ALCHEMIST_SERVICE_ID"  # environment variable every service process inherits
ADMIN = "admin"
STOP_GRACE_S = 20  # SIGTERM first; LocalExecutor workers may ignore it, so SIGKILL after this
START_TIMEOUT_S = 300
POLL_S = 1.0
HTTP_TIMEOUT_S = 5
AIRFLOW_COMPONENTS = ("api-server", "scheduler", "dag-processor", "triggerer")
# Ray puts Unix sockets at <temp dir>/session_<date>_<pid>/sockets/plasma_store (62 more
# characters) and Linux caps a socket path at 107: a longer temp dir kills the head at start.
RAY_TMP_MAX_CHARS = 45


@dataclass(frozen=True)
class Layout:
    """Where the service keeps its state, and the ports it listens on (loopback only)."""

    root: Path
    api_port: int = 8080
    ray_port: int = 6380
    report_port: int = 8794
    ray_cpus: int = 2
    gpu_slots: int = 2  # the `alchemist_gpu` pool: concurrent shard tasks (one per GPU on a cluster)

    @classmethod
    def from_env(cls, root: str | Path | None = None) -> "Layout":
        env = os.environ
        return cls(Path(root or env.get("ALCHEMIST_SERVICE_DIR") or REPO / ".service").resolve(),
                   int(env.get("ALCHEMIST_UI_PORT", cls.api_port)), int(env.get("ALCHEMIST_RAY_PORT", cls.ray_port)),
                   int(env.get("ALCHEMIST_REPORT_PORT", cls.report_port)),
                   int(env.get("ALCHEMIST_RAY_CPUS", cls.ray_cpus)), int(env.get("ALCHEMIST_GPU_SLOTS", cls.gpu_slots)))

    home = property(lambda self: self.root / "airflow")
    ray_tmp = property(lambda self: self.root / "ray")
    logs = property(lambda self: self.root / "logs")
    warehouse = property(lambda self: Path(os.environ.get("ALCHEMIST_WAREHOUSE") or self.root / "warehouse"))
    state_file = property(lambda self: self.root / "service.json")
    passwords = property(lambda self: self.root / "airflow" / "passwords.json")
    url = property(lambda self: f"http://localhost:{self.api_port}")


def free_port(span: int = 1) -> int:
    """A loopback port that is free now, and the `span - 1` after it too (the Ray head takes
    its GCS port and the next one for Ray Client). Ephemeral range: clear of Ray's worker ports."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if all(_refused(port + i) for i in range(1, span)):
            return port


def _refused(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def _secrets(layout: Layout) -> dict[str, str]:
    """The admin password and the keys the Airflow components share; made once, mode 0600."""
    path = layout.root / "secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {"password": secrets.token_urlsafe(12), "jwt_secret": secrets.token_urlsafe(32),
              "api_secret_key": secrets.token_urlsafe(32), "fernet_key": _fernet_key()}
    path.touch(mode=0o600)
    path.write_text(json.dumps(values))
    layout.passwords.parent.mkdir(parents=True, exist_ok=True)
    layout.passwords.touch(mode=0o600)
    layout.passwords.write_text(json.dumps({ADMIN: values["password"]}))
    print(f"Airflow login: {ADMIN} / {values['password']}  (printed once; stored in {layout.passwords})")
    return values


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def service_env(layout: Layout, service_id: str) -> dict[str, str]:
    keys = _secrets(layout)
    return {
        **airflow_env(layout.home),
        MARKER: service_id,
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__FERNET_KEY": keys["fernet_key"],
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(layout.passwords),
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{layout.api_port}/execution/",
        "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__API__PORT": str(layout.api_port),
        "AIRFLOW__API__BASE_URL": layout.url,
        "AIRFLOW__API__SECRET_KEY": keys["api_secret_key"],
        "AIRFLOW__API_AUTH__JWT_SECRET": keys["jwt_secret"],
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",  # new DAG files show up within seconds
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "30",
        "AIRFLOW__SCHEDULER__ENABLE_HEALTH_CHECK": "False",
        "ALCHEMIST_WAREHOUSE": str(layout.warehouse),
        "ALCHEMIST_REPORT_URL": f"http://localhost:{layout.report_port}",
        "ALCHEMIST_INCOMING": os.environ.get("ALCHEMIST_INCOMING") or str(layout.root / "incoming"),
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
    }


def _start(name: str, argv: list[str], env: dict, layout: Layout) -> int:
    """Start one component in its own session, its output in `logs/<name>.log`."""
    log = open(layout.logs / f"{name}.log", "ab")
    proc = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            cwd=layout.root, start_new_session=True)
    log.close()
    return proc.pid


def _provision(layout: Layout, env: dict) -> None:
    """Migrate the DB, then create the GPU pool and the connections the DAGs read."""
    bin_dir = Path(sys.executable).parent
    migrate = subprocess.run([str(bin_dir / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True)
    if migrate.returncode:
        raise OperatorError(f"`airflow db migrate` failed; see {layout.logs}: {migrate.stderr.strip()[-300:]}")
    (layout.logs / "migrate.log").write_text(migrate.stdout + migrate.stderr)
    args = json.dumps({"pool": os.environ.get("ALCHEMIST_GPU_POOL", "alchemist_gpu"), "slots": layout.gpu_slots,
                       "ray_port": layout.ray_port, "api_port": layout.api_port,
                       "password": _secrets(layout)["password"]})
    done = subprocess.run([sys.executable, "-m", "curation.service_provision"], input=args, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise OperatorError(f"provisioning the Airflow pool and connections failed: {done.stderr.strip()[-300:]}")


def _wait_healthy(layout: Layout, pids: dict[str, int]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        dead = [n for n, pid in pids.items() if not _alive(pid)]
        if dead:
            raise OperatorError(f"service component(s) {dead} exited at start; see {layout.logs}/<name>.log")
        try:
            with urllib.request.urlopen(f"{layout.url}/api/v2/monitor/health", timeout=HTTP_TIMEOUT_S) as r:
                health = json.loads(r.read())
            if all(health.get(c, {}).get("status") == "healthy" for c in ("metadatabase", "scheduler")):
                return
        except OSError:
            pass
        time.sleep(POLL_S)
    raise OperatorError(f"the Airflow api-server did not become healthy in {START_TIMEOUT_S}s; see {layout.logs}")


def up(layout: Layout) -> dict:
    """Start every component (a no-op when the service already runs); returns the state."""
    if layout.state_file.exists():
        state = json.loads(layout.state_file.read_text())
        if _service_pids(state, layout.root):
            print(f"service already running: {layout.url}")
            return state
        layout.state_file.unlink()
    if len(str(layout.ray_tmp)) > RAY_TMP_MAX_CHARS:
        raise OperatorError(f"the service directory {layout.root} is too long for Ray's socket paths; "
                            f"set ALCHEMIST_SERVICE_DIR to a path under {RAY_TMP_MAX_CHARS - 4} characters")
    for d in (layout.root, layout.logs, layout.ray_tmp, layout.warehouse, layout.home):
        d.mkdir(parents=True, exist_ok=True)
    service_id = secrets.token_hex(8)
    env = service_env(layout, service_id)
    Path(env["ALCHEMIST_INCOMING"]).mkdir(parents=True, exist_ok=True)
    state = {"id": service_id, "url": layout.url, "ray": f"127.0.0.1:{layout.ray_port}",
             "reports": env["ALCHEMIST_REPORT_URL"], "warehouse": str(layout.warehouse),
             "incoming": env["ALCHEMIST_INCOMING"], "pids": {}}
    layout.state_file.write_text(json.dumps(state, indent=2))  # written first: `down` can always clean up
    try:
        _provision(layout, env)
        bin_dir = Path(sys.executable).parent
        pids = {"ray-head": _start("ray-head", [
            str(bin_dir / "ray"), "start", "--head", "--block", f"--port={layout.ray_port}",
            "--node-ip-address=127.0.0.1", f"--temp-dir={layout.ray_tmp}", f"--num-cpus={layout.ray_cpus}",
            f"--ray-client-server-port={layout.ray_port + 1}", "--include-dashboard=false",
            "--disable-usage-stats"], env, layout)}
        pids["reports"] = _start("reports", [sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                                             "--directory", str(layout.warehouse), str(layout.report_port)], env, layout)
        for component in AIRFLOW_COMPONENTS:
            pids[component] = _start(component, [str(bin_dir / "airflow"), component], env, layout)
        state["pids"] = pids
        layout.state_file.write_text(json.dumps(state, indent=2))
        _wait_healthy(layout, pids)
    except BaseException:
        down(layout)
        raise
    print(f"Airflow UI: {layout.url}  (user {ADMIN}; password in {layout.passwords})\n"
          f"Ray head: {state['ray']}   run reports: {state['reports']}   incoming manifests: {state['incoming']}")
    return state


# --- stopping -----------------------------------------------------------------------------

def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def _session_id(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[4])


def _service_pids(state: dict, root: Path) -> list[int]:
    """Live processes of this service (never our own): in a session we started, or carrying
    our marker in their environment, or working in the state directory. All three are needed:
    the api-server's worker starts its own session, and setproctitle (api-server, LocalExecutor
    workers) overwrites the environment block that /proc shows; every component starts in
    the state directory and Ray's workers run in its temp dir below it."""
    needle = f"{MARKER}={state['id']}".encode()
    sessions = set(state.get("pids", {}).values())
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or int(proc.name) == os.getpid():
            continue
        pid = int(proc.name)
        try:
            ours = (_session_id(pid) in sessions or needle in (proc / "environ").read_bytes().split(b"\0")
                    or Path(os.readlink(proc / "cwd")).is_relative_to(root))
        except OSError:  # exited meanwhile, or not ours to read
            continue
        if ours and _alive(pid):
            found.append(pid)
    return found


def _signal_all(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def down(layout: Layout) -> list[int]:
    """Stop every process of the service; returns those that survived (should be none)."""
    if not layout.state_file.exists():
        print("service not running")
        return []
    state = json.loads(layout.state_file.read_text())
    _signal_all(_service_pids(state, layout.root), signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    while _service_pids(state, layout.root) and time.monotonic() < deadline:
        time.sleep(POLL_S)
    for _ in range(3):  # SIGKILL whatever ignored SIGTERM, including children forked meanwhile
        left = _service_pids(state, layout.root)
        if not left:
            break
        _signal_all(left, signal.SIGKILL)
        time.sleep(POLL_S)
    left = _service_pids(state, layout.root)
    if not left:
        layout.state_file.unlink()
    return left


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m curation.service", description=__doc__.splitlines()[0])
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--dir", help="state directory (default $ALCHEMIST_SERVICE_DIR or .service/)")
    args = p.parse_args(argv)
    layout = Layout.from_env(args.dir)
    try:
        if args.action == "up":
            up(layout)
        elif args.action == "down":
            left = down(layout)
            if left:
                print(f"processes still running after SIGKILL: {left}", file=sys.stderr)
                return 1
            print("service stopped; no process left")
        else:
            state = json.loads(layout.state_file.read_text()) if layout.state_file.exists() else None
            alive = len(_service_pids(state, layout.root)) if state else 0
            print(f"running: {state['url']} ({alive} processes)" if alive else "not running")
    except OperatorError as e:
        print(f"alchemist: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
