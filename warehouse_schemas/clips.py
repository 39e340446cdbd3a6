"""`clips`: the final accepted set, after every clip-level filter of the run."""
import pyarrow as pa

from warehouse_schemas._common import key, versioned

V1 = versioned(
    [
        key("clip_key"),  # "<video id>:<start ms>-<end ms>"
        pa.field("video_id", pa.string(), nullable=False),
        pa.field("input_key", pa.string(), nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("caption", pa.string(), nullable=False),
        pa.field("start_s", pa.float64(), nullable=False),
        pa.field("end_s", pa.float64(), nullable=False),
        pa.field("fps", pa.float64()),
        pa.field("width", pa.int32()),
        pa.field("height", pa.int32()),
        pa.field("shot_score", pa.float32()),  # max TransNetV2 boundary probability inside the clip
        pa.field("motion_residual", pa.float32()),  # flow left after one global camera motion
        pa.field("motion_raw", pa.float32()),  # raw mean flow magnitude
        pa.field("undesirable_filter", pa.string()),  # which undesirable-clip filter ran
    ],
    1,
    "clips",
)
VERSIONS = [V1]
