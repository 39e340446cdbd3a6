"""The entity-retrieval prompt: paper Figure 7 verbatim, plus the few-shot examples it elides.

Every backend builds its input from `build_prompt` / `build_chat` only, so all of them send
byte-identical prompts; `prompt_hash()` identifies the template and is stored on every
entities row. Change anything below (instruction, examples, layout) and bump PROMPT_VERSION:
the hash changes by itself, the version is for humans.
"""
from __future__ import annotations

import hashlib

PROMPT_VERSION = "2"  # 2: subjects are actors (a walked dog is an object, a driving car a subject)

# Figure 7, verbatim (line breaks as in the figure; its bold/italic is typography only).
INSTRUCTION = """\
Given an image caption, please retrieve the word tags that indicate background, subject, and visually separable objects.
[Definition of background] the background spaces that appear in most of the image area.
[Definition of subject] human or animal subjects that appear in the image
[Definition of object] the entities that appear in part of the image and can be visually separated with each other.
All of the word tags need to strictly follow two rules below:
1) word tag is a noun without any quantifier.
2) word tag is an exact subset of the caption. Do not modify any characters, word and symbols.
Here are some examples, follow this format to output the results:"""

# (caption, output) pairs. The first is Figure 7's own example; the paper elides the rest
# ("(More examples)"), so these are ours. Each one teaches a rule the post-processing relies
# on (curation/entities/eval/README.md): an animal that is acted on is an object, a vehicle
# that moves itself is a subject, several singular subjects, a plural subject written without
# its quantifier, scene words (including A.2's "cloud" case) as background, no subject at
# all, and [''] for an empty list exactly as in Figure 7.
EXAMPLES: tuple[tuple[str, str], ...] = (
    ("A woman in a mask and coat, with long brown hair, shows a small green-capped bottle to the camera.",
     "{'background': [''], 'subject': ['woman'], 'object': ['mask', 'coat', 'long brown hair', 'green-capped bottle']}"),
    ("A man in a red jacket walks his dog along a snowy street at dusk.",
     "{'background': ['snowy street'], 'subject': ['man'], 'object': ['red jacket', 'dog']}"),
    ("Two young girls are building a sandcastle with plastic buckets on the beach.",
     "{'background': ['beach'], 'subject': ['girls'], 'object': ['sandcastle', 'plastic buckets']}"),
    ("A red car drives along a mountain road under a cloudy sky.",
     "{'background': ['mountain road', 'cloudy sky'], 'subject': ['red car'], 'object': ['']}"),
    ("A white van is parked in front of a house.",
     "{'background': [''], 'subject': [''], 'object': ['white van', 'house']}"),
    ("A gray cat sleeps on a blue sofa while a man reads a newspaper in the living room.",
     "{'background': ['living room'], 'subject': ['gray cat', 'man'], 'object': ['blue sofa', 'newspaper']}"),
    ("A group of people dance around a bonfire in the forest at night.",
     "{'background': ['forest'], 'subject': ['people'], 'object': ['bonfire']}"),
)

CAPTION_PREFIX, OUTPUT_PREFIX = "### Caption: ", "### Output:"


def _shot(caption: str, output: str | None) -> str:
    tail = f" {output}" if output is not None else ""
    return f"{CAPTION_PREFIX}{caption}\n{OUTPUT_PREFIX}{tail}"


TEMPLATE = "\n".join([INSTRUCTION, *(_shot(c, o) for c, o in EXAMPLES), _shot("{caption}", None)])


def clean_caption(caption: str) -> str:
    """The caption as placed in the prompt: one line (a newline would break the layout)."""
    return caption.replace("\r", " ").replace("\n", " ").strip()


def build_prompt(caption: str) -> str:
    """The full prompt text for one caption; it ends with "### Output:"."""
    return TEMPLATE.replace("{caption}", clean_caption(caption))


def build_chat(caption: str) -> list[dict[str, str]]:
    """The same prompt as one user turn, for models with a chat template."""
    return [{"role": "user", "content": build_prompt(caption)}]


def prompt_hash() -> str:
    """First 16 hex digits of the template's SHA-256: which prompt produced a row."""
    return hashlib.sha256(TEMPLATE.encode("utf-8")).hexdigest()[:16]
