"""Offline default extractor: spaCy noun chunks typed by lexical rules, no LLM.

It answers in the LLM's format (a dict string), so its output goes through exactly the same
parse + A.2 rules as the LLM backends and is stored the same way. Per noun chunk:

  - leading determiners, numerals, possessives and quantifiers are dropped (Figure 7 rule 1:
    "a noun without any quantifier"); adjectives stay ("long brown hair", as in Figure 7);
  - pronoun and non-visual chunks ("the camera", "the video", "the left") are skipped;
  - time, activity and measure words are skipped ("at night", "does yoga", "a piece of");
  - background: a place (roles.is_place: the head is a scene noun, or a named place);
  - subject: an actor (roles.py) that is a person or animal (lexicon.py, or spaCy NER says
    PERSON), or a thing that is the grammatical subject of a motion verb; a person or animal
    that is acted on ("feeds pigeons") is an object;
  - a collective head followed by "of" ("a group of") is skipped: the noun after "of" carries
    the subject ("people"), and the plural rule rejects it; alone ("a crowd") it is typed
    like a person;
  - a possessor is its own entity ("A woman's hands" -> woman, hands);
  - object: any other concrete noun chunk.
"""
from __future__ import annotations

import json

from curation.entities import lexicon, roles
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


def _phrase(toks: list, root) -> tuple[str, object] | None:
    """The tokens' text without leading determiners/quantifiers, and the head token."""
    while toks and toks[0] != root and (toks[0].dep_ in _DROP_DEPS or toks[0].pos_ in _DROP_POS
                                        or toks[0].lower_ in lexicon.PLURAL_QUANTIFIERS):
        toks = toks[1:]
    if not toks or root.pos_ == "PRON":
        return None
    return root.doc.text[toks[0].idx:toks[-1].idx + len(toks[-1])], root


def _conjunct_verb(tok, chunk) -> bool:
    """ "A woman and a man dance", "Two ladybugs crawl": the verb, in its base form, parsed
    as the noun heading the phrase ("a man dance"), the real noun its compound. At the root
    the noun before it must be a person or animal ("A coffee cup." stays one noun)."""
    prev = tok.doc[tok.i - 1]
    if not (tok.i == chunk.end - 1 and tok.i > chunk.start and prev.dep_ == "compound"
            and prev.head == tok):
        return False
    living = lexicon.is_living(prev.text, prev.lemma_.lower())
    return (tok.dep_ == "conj" or (tok.dep_ == "ROOT" and living)) and roles.looks_like_verb(tok)


def _swallowed_verb(tok, chunk) -> bool:
    """The small parser's commonest caption error: with no verb found, "A boy in a blue shirt
    runs along the beach" reads "a blue shirt runs" as one noun phrase, and "A dog chases
    tennis balls" reads "dog chases tennis balls" as one. An -s word after a noun, in a
    sentence whose root is not a verb, is taken as the verb when it ends the phrase before a
    preposition/determiner, or sits inside it tagged VBZ or right after a person/animal noun."""
    doc = tok.doc
    if not (tok.lower_.endswith("s") and tok.tag_ in ("NNS", "VBZ") and tok.i > chunk.start
            and doc[tok.i - 1].pos_ in ("NOUN", "PROPN")
            and tok.sent.root.pos_ not in ("VERB", "AUX")):
        return False
    if tok.i == chunk.end - 1:
        nxt = doc[tok.i + 1] if tok.i + 1 < len(doc) else None
        return doc[tok.i - 1].dep_ == "compound" and nxt is not None and \
            nxt.pos_ in ("ADP", "DET", "ADV", "PUNCT", "CCONJ", "PART")
    prev = doc[tok.i - 1]
    return tok.tag_ == "VBZ" or lexicon.is_living(prev.text, prev.lemma_.lower())


def _segments(chunk):
    """The chunk split at swallowed verbs: (tokens, head) per noun phrase."""
    segments, current, split = [], [], False
    for tok in chunk:
        if not split and tok.i > chunk.start and (_swallowed_verb(tok, chunk)
                                                  or _conjunct_verb(tok, chunk)):
            segments.append(current)
            current, split = [], True  # one verb per phrase: the rest is its object
        else:
            current.append(tok)
    segments.append(current)
    return [(seg, chunk.root if chunk.root in seg else seg[-1]) for seg in segments if seg]


def noun_groups(doc):
    """(text, head token) of each noun phrase, repairing swallowed verbs."""
    for chunk in doc.noun_chunks:
        for toks, root in _segments(chunk):
            found = _phrase(toks, root)
            if found is not None:
                yield found
        yield from _possessors(chunk)
    for tok in doc:
        # "a red hat walks", "A red sports car drives": a VERB with a determiner and a compound
        # noun as children heads what is really a noun phrase, so there is no chunk at all
        prev = doc[tok.i - 1] if tok.i > 0 else None
        if tok.pos_ == "VERB" and prev is not None and prev.dep_ == "compound" and \
                prev.head == tok and any(c.dep_ == "det" for c in tok.lefts):
            found = _phrase([t for t in tok.subtree if t.i < tok.i], prev)
            if found is not None:
                yield found


def _possessors(chunk):
    """ "A woman's hands": the possessor noun as its own phrase (a possessive pronoun is not)."""
    for tok in chunk:
        if tok.dep_ == "poss" and tok.pos_ in ("NOUN", "PROPN") and tok.i < chunk.root.i:
            found = _phrase([t for t in tok.subtree if t.i <= tok.i], tok)
            if found is not None:
                yield found


_SKIPPED = (lexicon.NON_VISUAL_NOUNS, lexicon.ACTIVITY_NOUNS, lexicon.MEASURE_NOUNS,
            lexicon.TIME_NOUNS)
_NUMERIC_ENTITIES = ("DATE", "TIME", "CARDINAL", "ORDINAL", "QUANTITY", "PERCENT", "MONEY")


def classify(text: str, head) -> str | None:
    """subject / object / background for a chunk (its text and head token), or None to skip."""
    lemma = head.lemma_.lower()
    if any(lemma in words or head.lower_ in words for words in _SKIPPED):
        return None
    if lemma in lexicon.COLLECTIVE_NOUNS:
        if any(c.dep_ == "prep" and c.lower_ == "of" for c in head.children):
            return None
        return "subject" if roles.is_actor(head) else "object"
    if roles.is_place(text, head):
        return "background"
    living = lexicon.is_living(text, lemma) or lexicon.is_living(text, head.lower_)
    if living or head.ent_type_ == "PERSON":
        return "subject" if roles.is_actor(head) else "object"
    if head.pos_ not in ("NOUN", "PROPN") or head.ent_type_ in _NUMERIC_ENTITIES:
        return None
    return "subject" if roles.is_mover(head) else "object"


def extract_doc(doc) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"background": [], "subject": [], "object": []}
    for text, head in noun_groups(doc):
        kind = None if text.lower() in lexicon.NON_VISUAL_NOUNS else classify(text, head)
        if kind is not None and text not in out[kind]:
            out[kind].append(text)
    return out
