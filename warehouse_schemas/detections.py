"""`detections`: every candidate box of the grounding stage above a low floor (paper 3.1).

References keep one box per word and frame; this table keeps the runners-up too, with both
scores, so box/text thresholds can be re-tuned with a query instead of re-running the models.
"""
import pyarrow as pa

from warehouse_schemas._common import BOX, key, versioned

V1 = versioned(
    [
        key("det_key"),  # "<clip key>/<word>/frame<k>/<rank>"
        pa.field("clip_key", pa.string(), nullable=False),
        pa.field("entity_key", pa.string(), nullable=False),
        pa.field("word", pa.string(), nullable=False),
        pa.field("frame_index", pa.int8(), nullable=False),
        pa.field("rank", pa.int16(), nullable=False),  # 0 = this word's best box in this frame
        pa.field("box_xyxy", BOX, nullable=False),  # frame pixels, clipped to the frame
        pa.field("score", pa.float32(), nullable=False),  # box score (max token prob for GroundingDINO)
        pa.field("text_score", pa.float32()),  # mean token prob of the phrase; null for non-text detectors
        pa.field("selected", pa.bool_(), nullable=False),  # became this word's reference in this run
        pa.field("detector", pa.string(), nullable=False),
        pa.field("prompt", pa.string()),  # the text prompt the box was scored against, if any
    ],
    1,
    "detections",
)
VERSIONS = [V1]
