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

# V2 (issue 4): what produced each row, so the A.2 rules can be re-applied and prompts
# compared without re-running a model. `raw_output` is per clip and repeated on each of the
# clip's rows (parquet dictionary-encodes the repeats); null prompt_hash = no prompt (spaCy).
V2 = versioned(
    [
        *V1,
        pa.field("prompt_hash", pa.string()),  # curation.entities.prompt.prompt_hash()
        pa.field("raw_output", pa.string()),  # the extractor's raw answer for the caption
    ],
    2,
    "entities",
)
VERSIONS = [V1, V2]
