"""The README's reader one-liners on the demo dataset: every reader sees exactly the rows that
`_SUCCESS` counts (issue 9 item 1), and Hugging Face `datasets` decodes PNG columns as images."""
import json

import pytest

from warehouse_schemas import registry

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def counts(dataset):
    return json.loads((dataset / "_SUCCESS").read_text())["counts"]


def test_duckdb_and_polars_read_exactly_the_committed_rows(dataset, counts):
    import duckdb
    import polars as pl

    import pyarrow.parquet as pq

    # the demo has image rows, and shards without rows for some table (schema-only files)
    assert counts["references"] > 0
    assert any(pq.ParquetFile(p).metadata.num_row_groups == 0 for p in dataset.glob("*/part-*.parquet"))
    for name in registry.TABLES:
        glob = f"{dataset}/{name}/*.parquet"
        assert duckdb.sql(f"SELECT count(*) FROM '{glob}'").fetchall() == [(counts[name],)], name
        assert pl.scan_parquet(glob).select(pl.len()).collect().item() == counts[name], name


def test_ray_data_reads_exactly_the_committed_rows(dataset, counts, ray_session):
    import ray.data

    for name in ("clips", "references", "rejections"):
        assert ray.data.read_parquet(str(dataset / name)).count() == counts[name], name


def test_hugging_face_datasets_loads_tables_and_decodes_images(dataset, counts, tmp_path):
    from datasets import load_dataset

    for name in ("clips", "frames", "references"):
        ds = load_dataset("parquet", data_files=f"{dataset}/{name}/*.parquet", split="train",
                          cache_dir=str(tmp_path / "hf"))
        assert ds.num_rows == counts[name], name
    image = ds[0]["rgba_png"]
    assert image.mode == "RGBA" and image.size[0] > 0
    assert ds[0]["mask_png"].mode == "L"
