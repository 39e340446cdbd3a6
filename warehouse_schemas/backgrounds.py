"""`backgrounds`: one clean background per accepted clip, from its middle frame (paper 3.1)."""
import pyarrow as pa

from warehouse_schemas._common import key, versioned

V1 = versioned(
    [
        key("background_key"),  # "<clip key>/background"
        pa.field("clip_key", pa.string(), nullable=False),
        pa.field("word", pa.string()),  # background entity word used as prompt, if any
        pa.field("png", pa.binary(), nullable=False),
        pa.field("mask_png", pa.binary(), nullable=False),  # dilated, hole-filled mask inpainted
        pa.field("inpainter", pa.string(), nullable=False),
        pa.field("prompt", pa.string()),
        pa.field("negative_prompt", pa.string()),
    ],
    1,
    "backgrounds",
)
VERSIONS = [V1]
