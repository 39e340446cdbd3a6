import pyarrow as pa
import pytest

from curation.keys import child_key, clip_key, video_id
from warehouse_schemas import registry
from warehouse_schemas._common import versioned


@pytest.mark.parametrize("name", list(registry.TABLES))
def test_every_table_is_versioned_and_keyed(name):
    schema = registry.schema(name)
    assert int(schema.metadata[b"schema_version"]) == len(registry.VERSIONS[name])
    assert schema.metadata[b"table"].decode() == name
    assert "clip_key" in schema.names or name == "videos"
    key_field = schema.field(0)
    assert key_field.type == pa.string() and not key_field.nullable


@pytest.mark.parametrize("name", list(registry.TABLES))
def test_each_version_only_adds_nullable_columns(name):
    versions = registry.VERSIONS[name]
    for old, new in zip(versions, versions[1:]):
        assert registry.evolution_errors(old, new) == []


def test_evolution_check_rejects_a_non_nullable_addition():
    v1 = versioned([pa.field("k", pa.string(), nullable=False)], 1, "t")
    bad = versioned([pa.field("k", pa.string(), nullable=False),
                     pa.field("score", pa.float32(), nullable=False)], 2, "t")
    good = versioned([pa.field("k", pa.string(), nullable=False), pa.field("score", pa.float32())], 2, "t")
    assert registry.evolution_errors(v1, good) == []
    assert registry.evolution_errors(v1, bad) == ["new column 'score' must be nullable"]


def test_evolution_check_rejects_removed_or_retyped_columns():
    v1 = versioned([pa.field("k", pa.string(), nullable=False), pa.field("x", pa.int32())], 1, "t")
    removed = versioned([pa.field("k", pa.string(), nullable=False)], 2, "t")
    retyped = versioned([pa.field("k", pa.string(), nullable=False), pa.field("x", pa.int64())], 2, "t")
    assert registry.evolution_errors(v1, removed) == ["column 'x' was removed"]
    assert "changed from int32 to int64" in registry.evolution_errors(v1, retyped)[0]


def test_unknown_table_names_the_known_ones():
    with pytest.raises(KeyError, match="known tables: videos"):
        registry.schema("clipz")


def test_keys_are_stable_and_extend_the_clip_key():
    vid = video_id(None, "/data/a.mp4")
    assert vid == video_id("", "/data/a.mp4") and len(vid) == 12
    assert video_id("abc", "/data/a.mp4") == "abc"
    key = clip_key("abc", 1.2346, 5.0)
    assert key == "abc:1235-5000"
    assert child_key(key, "long brown hair", "frame2") == "abc:1235-5000/long_brown_hair/frame2"
