"""Offline default extractor: spaCy noun chunks typed by lexical rules, no LLM.

It answers in the LLM's format (a dict string), so its output goes through exactly the same
parse + A.2 rules as the LLM backends and is stored the same way. Per noun chunk:

  - leading determiners, numerals, possessives and quantifiers are dropped (Figure 7 rule 1:
    "a noun without any quantifier"); adjectives stay ("long brown hair", as in Figure 7);
  - pronoun and non-visual chunks ("the camera", "the video", "the left") are skipped;
  - subject: the head is a person or animal noun (lexicon.py), or spaCy NER says PERSON;
  - background: the head is a scene noun (room, beach, field, street, sky, ...);
  - collective heads ("a group", "a crowd") are skipped: the noun after "of" carries the
    subject ("people"), and the plural rule rejects it;
  - object: any other concrete noun chunk.
"""
from __future__ import annotations

import json

from curation.entities import lexicon
from curation.entities.rules import spacy_id, spacy_pipeline

_DROP_DEPS = {"det", "predet", "nummod", "poss", "quantmod", "case"}
_DROP_POS = {"DET", "NUM", "PRON", "PUNCT", "CCONJ", "ADP", "PART"}


class SpacyExtractor:
    """`extract(captions) -> raw dict strings`, the interface every backend shares."""

    prompt_hash = None  # no prompt: the rows' prompt_hash stays null

    def __init__(self) -> None:
        self.nlp = None
        self.id = "spacy"

    def setup(self) -> None:
        self.nlp = spacy_pipeline()
        self.id = f"spacy:{spacy_id(self.nlp)}"

    def extract(self, captions: list[str]) -> list[str]:
        if self.nlp is None:
            self.setup()
        return [json.dumps(extract_doc(doc)) for doc in self.nlp.pipe(captions)]


def _phrase(chunk) -> tuple[str, object] | None:
    """The chunk's text without leading determiners/quantifiers, and its head token."""
    toks = list(chunk)
    while toks and toks[0] != chunk.root and (toks[0].dep_ in _DROP_DEPS or toks[0].pos_ in _DROP_POS
                                              or toks[0].lower_ in lexicon.PLURAL_QUANTIFIERS):
        toks = toks[1:]
    if not toks or chunk.root.pos_ == "PRON":
        return None
    doc = chunk.doc
    return doc.text[toks[0].idx:chunk.end_char], chunk.root


def classify(text: str, head) -> str | None:
    """subject / object / background for a chunk (its text and head token), or None to skip."""
    lemma = head.lemma_.lower()
    if lemma in lexicon.NON_VISUAL_NOUNS or lemma in lexicon.COLLECTIVE_NOUNS:
        return None
    if lexicon.is_living(text, lemma) or lexicon.is_living(text, head.lower_) or head.ent_type_ == "PERSON":
        return "subject"
    if lemma in lexicon.BACKGROUND_NOUNS:
        return "background"
    if head.pos_ not in ("NOUN", "PROPN") or head.ent_type_ in ("DATE", "TIME", "CARDINAL", "ORDINAL",
                                                                 "QUANTITY", "PERCENT", "MONEY"):
        return None
    return "object"


def extract_doc(doc) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"background": [], "subject": [], "object": []}
    for chunk in doc.noun_chunks:
        found = _phrase(chunk)
        if found is None:
            continue
        text, head = found
        kind = None if text.lower() in lexicon.NON_VISUAL_NOUNS else classify(text, head)
        if kind is not None and text not in out[kind]:
            out[kind].append(text)
    return out
