"""Shared field builders so every table spells its common columns the same way."""
import pyarrow as pa

BOX = pa.list_(pa.float32(), 4)  # (x0, y0, x1, y1) in source-frame pixels


def key(name: str = "key") -> pa.Field:
    """A stable, non-null row key (see README: key format)."""
    return pa.field(name, pa.string(), nullable=False)


def versioned(fields: list[pa.Field], version: int, table: str) -> pa.Schema:
    return pa.schema(fields, metadata={"schema_version": str(version), "table": table})
