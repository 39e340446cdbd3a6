"""`faces`: the best face crop inside each human subject reference (paper 3.1)."""
import pyarrow as pa

from warehouse_schemas._common import BOX, key, versioned

V1 = versioned(
    [
        key("face_key"),  # "<ref key>/face"
        pa.field("clip_key", pa.string(), nullable=False),
        pa.field("ref_key", pa.string(), nullable=False),
        pa.field("word", pa.string(), nullable=False),
        pa.field("frame_index", pa.int8(), nullable=False),
        pa.field("box_xyxy", BOX, nullable=False),  # in frame pixels, before the margin
        pa.field("score", pa.float32(), nullable=False),
        pa.field("png", pa.binary(), nullable=False),  # crop with margin
        pa.field("detector", pa.string(), nullable=False),
    ],
    1,
    "faces",
)

# V2 (issue 8): why the subject was treated as a person (paper 3.1 crops faces of human
# subjects only): "person_word" (the word is in curation/persons.py's person lexicon) or
# "unknown_word" (neither a person nor a known non-human word: tried, and a face was found
# inside its mask). Null in rows written before V2.
V2 = versioned([*V1, pa.field("human_by", pa.string())], 2, "faces")
VERSIONS = [V1, V2]
