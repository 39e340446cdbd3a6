"""`entities`: entity words per accepted clip (paper A.2), typed subject / object / background."""
import pyarrow as pa

from warehouse_schemas._common import key, versioned

ENTITY_TYPES = ("subject", "object", "background")

V1 = versioned(
    [
        key("entity_key"),  # "<clip key>/<word>"
        pa.field("clip_key", pa.string(), nullable=False),
        pa.field("word", pa.string(), nullable=False),
        pa.field("type", pa.string(), nullable=False),  # one of ENTITY_TYPES
        pa.field("char_start", pa.int32(), nullable=False),  # span of the word in the caption
        pa.field("char_end", pa.int32(), nullable=False),
        pa.field("extractor", pa.string(), nullable=False),  # backend id, e.g. "spacy:en_core_web_sm"
    ],
    1,
    "entities",
)
VERSIONS = [V1]
