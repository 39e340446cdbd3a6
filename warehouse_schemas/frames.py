"""`frames`: the 5/50/95% frames of each accepted clip (paper 3.1), PNG-encoded."""
import pyarrow as pa

from warehouse_schemas._common import key, versioned

V1 = versioned(
    [
        key("frame_key"),  # "<clip key>/frame<k>", k = 1, 2, 3
        pa.field("clip_key", pa.string(), nullable=False),
        pa.field("frame_index", pa.int8(), nullable=False),  # 1, 2, 3 as in the benchmark's frameK
        pa.field("percentile", pa.float32(), nullable=False),  # 0.05, 0.50, 0.95
        pa.field("target_s", pa.float64(), nullable=False),  # start + p * (end - start)
        pa.field("timestamp_s", pa.float64(), nullable=False),  # pts of the nearest decoded frame
        pa.field("width", pa.int32(), nullable=False),
        pa.field("height", pa.int32(), nullable=False),
        pa.field("png", pa.binary(), nullable=False),
    ],
    1,
    "frames",
)
VERSIONS = [V1]
