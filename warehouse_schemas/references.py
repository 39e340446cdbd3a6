"""`references`: one segment image per entity word and frame (paper 3.1, Figure 2)."""
import pyarrow as pa

from warehouse_schemas._common import BOX, key, versioned

V1 = versioned(
    [
        key("ref_key"),  # "<clip key>/<word>/frame<k>"
        pa.field("clip_key", pa.string(), nullable=False),
        pa.field("entity_key", pa.string(), nullable=False),
        pa.field("word", pa.string(), nullable=False),
        pa.field("frame_index", pa.int8(), nullable=False),
        pa.field("box_xyxy", BOX, nullable=False),
        pa.field("rgba_png", pa.binary(), nullable=False),  # box crop, mask as alpha
        pa.field("mask_png", pa.binary(), nullable=False),  # box-sized binary mask
        pa.field("box_score", pa.float32()),
        pa.field("mask_score", pa.float32()),
        pa.field("detector", pa.string(), nullable=False),
        pa.field("segmenter", pa.string(), nullable=False),
    ],
    1,
    "references",
)
VERSIONS = [V1]
