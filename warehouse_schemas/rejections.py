"""`rejections`: every input, clip, entity or background that did not make it, and why."""
import pyarrow as pa

from warehouse_schemas._common import key, versioned

LEVELS = ("input", "clip", "entity", "background")

V1 = versioned(
    [
        key("key"),  # input key, clip key, or a child key "<clip key>/<entity>[/frame<k>]"
        pa.field("input_key", pa.string(), nullable=False),
        pa.field("clip_key", pa.string()),  # null for input-level rejections
        pa.field("level", pa.string(), nullable=False),  # one of LEVELS
        pa.field("stage", pa.string(), nullable=False),
        pa.field("reason", pa.string(), nullable=False),  # machine-readable code
        pa.field("detail", pa.string()),  # one human-readable line
        pa.field("entity", pa.string()),
        pa.field("frame_index", pa.int8()),
    ],
    1,
    "rejections",
)
V2 = versioned(
    [
        *V1,
        # What the rejecting stage needs to re-apply its rule without recomputing, e.g. the
        # LLM's raw output for an entities rejection (issue 4). Null for most stages.
        pa.field("payload", pa.string()),
    ],
    2,
    "rejections",
)
VERSIONS = [V1, V2]
