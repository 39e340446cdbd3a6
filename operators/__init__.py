"""Airflow-facing glue: the DAGs' task bodies as plain functions, and the task policies."""
