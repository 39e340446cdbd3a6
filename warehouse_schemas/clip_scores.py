"""`clip_scores`: every score of every candidate clip, accepted or not, in long form.

Long form (one row per clip, stage and score name) so that a new stage's scores need no
schema change and thresholds can be re-tuned with a query instead of a re-run.
"""
import pyarrow as pa

from warehouse_schemas._common import versioned

V1 = versioned(
    [
        pa.field("clip_key", pa.string(), nullable=False),
        pa.field("stage", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("value", pa.float64()),
    ],
    1,
    "clip_scores",
)
VERSIONS = [V1]
