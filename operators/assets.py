"""The assets that chain our DAGs: `curate` emits `alchemist_curated` (extra: the dataset's
location and counts), which schedules `train`; `train` emits `alchemist_model` (extra: the
checkpoint path and final metrics). Cheap to import: DAG files use it at parse time."""
from airflow.sdk import Asset

CURATED = Asset("alchemist_curated")
MODEL = Asset("alchemist_model")
