"""Table name -> schema versions; the one place that lists the warehouse's tables."""
import pyarrow as pa

from warehouse_schemas import (
    backgrounds,
    clip_scores,
    clips,
    detections,
    entities,
    faces,
    frames,
    references,
    rejections,
    videos,
)

_MODULES = {
    "videos": videos,
    "clips": clips,
    "entities": entities,
    "frames": frames,
    "references": references,
    "detections": detections,
    "faces": faces,
    "backgrounds": backgrounds,
    "clip_scores": clip_scores,
    "rejections": rejections,
}
VERSIONS: dict[str, list[pa.Schema]] = {name: m.VERSIONS for name, m in _MODULES.items()}
TABLES: dict[str, pa.Schema] = {name: versions[-1] for name, versions in VERSIONS.items()}
# Tables whose rows must belong to an accepted clip (the contract in README "Tables").
CHILD_TABLES = ("entities", "frames", "references", "faces", "backgrounds")
# Tables kept for every candidate clip, accepted or not, so thresholds can be re-tuned.
CANDIDATE_TABLES = ("detections",)


def schema(table: str) -> pa.Schema:
    try:
        return TABLES[table]
    except KeyError:
        raise KeyError(f"unknown table {table!r}; known tables: {', '.join(TABLES)}") from None


def version_of(table: str) -> int:
    return int(schema(table).metadata[b"schema_version"])


def evolution_errors(old: pa.Schema, new: pa.Schema) -> list[str]:
    """Why `new` is not a safe next version of `old` (empty list: it is).

    A new version may only add nullable columns; existing columns keep name, type and
    nullability, so readers of the old version keep working on new files.
    """
    errors = []
    for f in old:
        if new.get_field_index(f.name) < 0:
            errors.append(f"column {f.name!r} was removed")
            continue
        g = new.field(f.name)
        if g.type != f.type or g.nullable != f.nullable:
            errors.append(f"column {f.name!r} changed from {f.type} to {g.type}")
    for g in new:
        if old.get_field_index(g.name) < 0 and not g.nullable:
            errors.append(f"new column {g.name!r} must be nullable")
    return errors
