"""Create the service's Airflow pool and connections (`python -m curation.service_provision`
with its JSON arguments on stdin, so the password never shows in `ps`; run by `make up`
inside the service's environment; idempotent).

  alchemist_gpu   pool: how many shard tasks may hold a GPU (here: Ray's CPU slots) at once
  alchemist_ray   the Ray head every shard task joins (host and GCS port)
  alchemist_api   the public REST API, for the run and shard notes the `commit` task writes
"""
from __future__ import annotations

import json
import sys


def provision(pool: str, slots: int, ray_port: int, api_port: int, password: str) -> None:
    from airflow.models import Connection, Pool
    from airflow.utils.session import create_session

    with create_session() as session:
        Pool.create_or_update_pool(pool, slots, "concurrent GPU shard tasks", include_deferred=False,
                                   session=session)
        wanted = {
            "alchemist_ray": Connection(conn_id="alchemist_ray", conn_type="generic", host="127.0.0.1",
                                        port=ray_port, description="Ray head of the local service"),
            "alchemist_api": Connection(conn_id="alchemist_api", conn_type="http", host="127.0.0.1",
                                        port=api_port, login="admin", password=password,
                                        description="Airflow REST API, for run notes"),
        }
        for conn_id, conn in wanted.items():
            session.query(Connection).filter(Connection.conn_id == conn_id).delete()
            session.add(conn)


if __name__ == "__main__":
    args = json.loads(sys.stdin.read())
    provision(args["pool"], args["slots"], args["ray_port"], args["api_port"], args["password"])
