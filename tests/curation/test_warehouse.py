"""Publication: per-attempt staging, durable order, exact table folders, empty and image files."""
import io
import json
import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from curation import warehouse
from warehouse_schemas import registry


@pytest.fixture
def shard(table_rows):
    def write(root, shard: int, clips: int = 2, refs: int = 1) -> dict:
        tables = {"clips": table_rows("clips", clips, shard), "references": table_rows("references", refs, shard)}
        return warehouse.write_shard(root, shard, tables, {"config": {}})

    return write


def test_every_committed_shard_has_one_file_per_table_and_empty_ones_hold_no_row_group(shard, tmp_path):
    shard(tmp_path, 0, clips=2, refs=0)
    shard(tmp_path, 1, clips=0, refs=1)
    for name in ("clips", "references"):
        assert sorted(p.name for p in (tmp_path / name).iterdir()) == ["part-00000.parquet", "part-00001.parquet"]
    assert pq.ParquetFile(tmp_path / "references" / "part-00000.parquet").metadata.num_row_groups == 0
    assert pq.ParquetFile(tmp_path / "clips" / "part-00001.parquet").metadata.num_row_groups == 0
    assert warehouse.read_table(tmp_path, "clips").num_rows == 2
    refs = warehouse.read_table(tmp_path, "references")
    assert refs.schema.field("rgba_png").type == pa.binary()  # our reader hands back PNG bytes
    assert Image.open(io.BytesIO(refs["rgba_png"][0].as_py())).mode == "RGBA"


def test_png_columns_are_hugging_face_images_on_disk(shard, tmp_path):
    shard(tmp_path, 0)
    schema = pq.read_schema(tmp_path / "references" / "part-00000.parquet")
    assert schema.field("rgba_png").type == warehouse.IMAGE_STORAGE
    features = json.loads(schema.metadata[b"huggingface"])["info"]["features"]
    assert features == {"rgba_png": {"_type": "Image"}, "mask_png": {"_type": "Image"}}


def test_an_attempt_never_touches_another_attempts_staging(shard, tmp_path):
    others = [tmp_path / "_staging" / "part-00000" / "clips.parquet",
              tmp_path / "_staging" / "part-00000.zombie" / "clips.parquet"]
    for f in others:
        f.parent.mkdir(parents=True)
        f.write_bytes(b"still being written")
    shard(tmp_path, 0)
    assert all(f.read_bytes() == b"still being written" for f in others)
    assert sorted(p.name for p in (tmp_path / "_staging").iterdir()) == ["part-00000", "part-00000.zombie"]


def test_files_and_folders_reach_the_disk_before_the_done_marker(shard, tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", os.readlink(f"/proc/self/fd/{fd}")))
        real_fsync(fd)

    def replace(src, dst):
        events.append(("replace", str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    shard(tmp_path, 0)
    marker = [i for i, e in enumerate(events) if e == ("replace", str(tmp_path / "_done" / "part-00000.json"))]
    assert len(marker) == 1
    before = events[:marker[0]]
    for name in ("clips", "references"):
        published = before.index(("replace", str(tmp_path / name / "part-00000.parquet")))
        staged = [i for i, e in enumerate(before) if e[0] == "fsync" and e[1].endswith(f"/{name}.parquet")]
        assert staged and staged[0] < published, f"{name} was renamed before its data was fsynced"
        assert ("fsync", str(tmp_path / name)) in before[published:], f"the rename into {name}/ was not fsynced"
    assert events[marker[0] + 1] == ("fsync", str(tmp_path / "_done"))


def test_commit_removes_files_of_no_committed_shard_and_the_glob_is_exact(shard, tmp_path):
    import duckdb

    shard(tmp_path, 0, clips=3)
    shard(tmp_path, 1, clips=2)
    stray = tmp_path / "clips" / "part-00007.parquet"  # another plan's shard, never committed
    stray.write_bytes((tmp_path / "clips" / "part-00000.parquet").read_bytes())
    success = warehouse.commit(tmp_path, [0, 1], {"config": {}})
    assert not stray.exists()
    for name in ("clips", "references"):
        glob = str(tmp_path / name / "*.parquet")
        assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{glob}')").fetchall() == [(success["counts"][name],)]
    assert success["counts"] == {"clips": 5, "references": 2}
    assert json.loads((tmp_path / "_SUCCESS").read_text()) == success
    assert success["shards"] == [0, 1] and success["schema_versions"]["clips"] == registry.version_of("clips")
    shard(tmp_path, 2)  # published after the commit: `_SUCCESS` still decides what is committed
    assert warehouse.committed_shards(tmp_path) == [0, 1]
    assert warehouse.read_table(tmp_path, "clips").num_rows == 5


def test_a_committed_shard_with_a_missing_file_is_an_error(shard, tmp_path):
    shard(tmp_path, 0)
    shard(tmp_path, 1)
    (tmp_path / "clips" / "part-00001.parquet").unlink()
    with pytest.raises(warehouse.DatasetError, match=r"part-00001.parquet is missing.*delete .*_done/part-00001.json"):
        warehouse.read_table(tmp_path, "clips")
    with pytest.raises(warehouse.DatasetError, match="is missing"):
        warehouse.commit(tmp_path, [0, 1], {"config": {}})
    assert not (tmp_path / "_SUCCESS").exists()


def test_a_file_overwritten_by_another_attempt_after_the_marker_is_detected(shard, tmp_path):
    shard(tmp_path, 0, clips=2)
    marker = warehouse.shard_marker(tmp_path, 0)
    shard(tmp_path, 0, clips=3)  # a zombie attempt republishes the shard ...
    warehouse.write_durable(warehouse.marker_path(tmp_path, 0), json.dumps(marker).encode())  # ... under the old marker
    with pytest.raises(warehouse.DatasetError, match="overwritten by another attempt"):
        warehouse.read_table(tmp_path, "clips")


def test_a_full_disk_is_one_line_naming_the_fix(shard, tmp_path, monkeypatch):
    import errno

    shard(tmp_path, 0)

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", "x.parquet")

    monkeypatch.setattr(warehouse, "_stage_table", no_space)
    with pytest.raises(warehouse.DatasetError, match="No space left on device.*committed shards are kept"):
        shard(tmp_path, 1)
    assert warehouse.committed_shards(tmp_path) == [0]
    assert not list((tmp_path / "_staging").iterdir())


def test_every_table_schema_round_trips_through_the_disk_form(tmp_path):
    for name, schema in registry.TABLES.items():
        stored = warehouse.to_storage(schema.empty_table(), {})
        assert warehouse.conform(stored, name).schema == schema
