"""`videos`: every input video that opened, with what PyAV probed (one row per video id)."""
import pyarrow as pa

from warehouse_schemas._common import key, versioned

V1 = versioned(
    [
        key("video_id"),
        pa.field("source", pa.string(), nullable=False),  # path or URL as given in the manifest
        pa.field("duration_s", pa.float64()),
        pa.field("fps", pa.float64()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("codec", pa.string()),
        pa.field("n_frames", pa.int64()),  # container's count; null when it does not say
        pa.field("size_bytes", pa.int64()),
    ],
    1,
    "videos",
)
VERSIONS = [V1]
