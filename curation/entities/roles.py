"""Who acts in a caption: the grammatical roles behind the subject rules (eval/README.md).

A noun phrase's head token is an *actor* when it is the grammatical subject of a clause (or a
conjunct, possessor or "of"-member of one), the agent of a passive, the pivot of "there is",
or the head of a verbless caption. Only actors become subjects: a person or animal that is
acted on ("feeds pigeons") stays an object, and a thing becomes a subject only when it is the
grammatical subject of a verb of self-motion ("A red sports car drives").

The small English pipeline misparses short captions in known ways, repaired here rather than
in every caller: "A red sports car drives" (the car a compound of the verb), "A chef cooks"
(the verb a plural noun), "A woman and a man dance" (the verb a noun conjunct). A token is
taken as a verb when the tagger calls it one in a neutral probe sentence (`looks_like_verb`).
"""
from __future__ import annotations

import functools

from curation.entities import lexicon

_SUBJECT_DEPS = ("nsubj", "nsubjpass", "csubj")
# Dependencies of a noun argument: a token attached so is not a clause's verb, even if tagged
# as one ("a red dress walks" as the object of "wearing").
_NOMINAL_DEPS = frozenset({"dobj", "pobj", "iobj", "attr", "appos", "compound", "poss", "nsubj",
                           "nsubjpass", "oprd", "dative", "npadvmod"})
_PROBES = ("It {} there.", "They {} there.")  # third person -s form, base form
_MAX_HOPS = 4  # conj -> appos -> poss -> "of" member: real chains are shorter


@functools.lru_cache(maxsize=4096)
def _probe(word: str) -> tuple[bool, str]:
    from curation.entities.rules import spacy_pipeline

    nlp = spacy_pipeline()
    for probe in _PROBES:
        tok = nlp(probe.format(word))[1]
        if tok.pos_ == "VERB" and tok.tag_ in ("VBZ", "VBP", "VBD", "VBG"):
            return True, tok.lemma_.lower()
    return False, word


def looks_like_verb(tok) -> bool:
    """The tagger reads this word as a finite verb in a probe sentence."""
    return tok.pos_ in ("VERB", "AUX") or _probe(tok.lower_)[0]


def verb_lemma(tok) -> str:
    return tok.lemma_.lower() if tok.pos_ in ("VERB", "AUX") else _probe(tok.lower_)[1]


def _swallowed_verb(tok) -> bool:
    """An -s verb read as a compound of the root noun ("collie herds sheep", "chef cooks")."""
    return (tok.dep_ == "compound" and tok.head.dep_ == "ROOT" and tok.tag_ in ("NNS", "VBZ")
            and tok.lower_.endswith("s") and tok.i > 0 and
            tok.doc[tok.i - 1].pos_ in ("NOUN", "PROPN") and looks_like_verb(tok))


def _first_conjunct(tok):
    while tok.dep_ == "conj" and tok.head != tok:
        tok = tok.head
    return tok


def _verb_of_root_noun(tok):
    """A noun at the root of a misparsed clause: its conjunct that is really the verb."""
    return next((c for c in tok.children if c.dep_ == "conj" and c.pos_ != "PROPN" and
                 looks_like_verb(c) and c.tag_ not in ("NNS",)), None)


def actor_verb(tok, depth: int = 0) -> tuple[bool, object]:
    """(is the token an actor, the verb token it is the subject of or None)."""
    if depth > _MAX_HOPS:
        return False, None
    dep, head = tok.dep_, tok.head
    if dep in _SUBJECT_DEPS:
        return True, head
    if dep == "compound" and head.i == tok.i + 1 and looks_like_verb(head) and (
            head.dep_ not in _NOMINAL_DEPS or _swallowed_verb(head)):
        return True, head  # "A red sports car drives", "A chef cooks", "a man dance"
    if dep == "conj":
        return actor_verb(_first_conjunct(tok), depth + 1)
    if dep == "appos":  # "A girl, a boy and a dog run"
        return actor_verb(head, depth + 1)
    if dep == "ROOT" and tok.pos_ in ("NOUN", "PROPN"):
        if any(_swallowed_verb(t) for t in tok.lefts):
            return False, None  # "A border collie herds sheep": "sheep" is the object
        return True, _verb_of_root_noun(tok)  # verbless caption, or "A woman and a man dance"
    if dep == "poss" or (dep == "pobj" and head.lower_ == "of" and _carries_member(head.head)):
        return actor_verb(head if dep == "poss" else head.head, depth + 1)
    if dep == "pobj" and head.dep_ == "agent":
        return True, head.head  # "kicked by a boy"
    if dep == "attr" and any(c.dep_ == "expl" for c in head.children):
        return True, head  # "There is a woman singing"
    return False, None


def _carries_member(tok) -> bool:
    """A noun whose "of" member is the real entity: "a group of", "a close-up of"."""
    lemma = tok.lemma_.lower()
    word = tok.doc[tok.left_edge.i:tok.i + 1].text.lower().split()[-1]  # "close-up" is 3 tokens
    if word in lexicon.NON_VISUAL_NOUNS:
        return True
    return lemma in lexicon.COLLECTIVE_NOUNS or lemma in lexicon.MEASURE_NOUNS or \
        lemma in lexicon.NON_VISUAL_NOUNS


def _living_possessor(tok) -> bool:
    """ "A man's shoes walk": the possessor moves, its belonging is an object."""
    return any(c.dep_ == "poss" and lexicon.is_living(c.text, c.lemma_.lower()) for c in tok.children)


def is_actor(tok) -> bool:
    return actor_verb(tok)[0]


def is_mover(tok) -> bool:
    """The token is the grammatical subject of a verb of self-motion (lexicon.MOTION_VERBS)."""
    actor, verb = actor_verb(tok)
    if not actor or verb is None or _living_possessor(tok):
        return False
    lemma = verb_lemma(verb)
    if lemma in lexicon.PARTICLE_MOTION_VERBS:  # "takes off", "pulls away"
        return any(c.dep_ == "prt" and c.lower_ in lexicon.PARTICLE_MOTION_VERBS[lemma]
                   for c in verb.children)
    return lemma in lexicon.MOTION_VERBS


def is_place(text: str, head) -> bool:
    """The documented background rule: the head noun names a place or an expanse
    (lexicon.BACKGROUND_NOUNS, or the phrase ends with one of lexicon.BACKGROUND_PHRASES), or
    spaCy's NER calls it a named place. Prepositions play no part: "on a table" is an object,
    "on a stage" background, because of the noun."""
    lemma = head.lemma_.lower()
    return (lemma in lexicon.BACKGROUND_NOUNS or head.lower_ in lexicon.BACKGROUND_NOUNS
            or " ".join(text.lower().split()[-2:]) in lexicon.BACKGROUND_PHRASES
            or head.ent_type_ in lexicon.PLACE_ENTITY_LABELS)


def is_time(head) -> bool:
    """A time word ("at night", "at sunset"): never an entity."""
    return head.lemma_.lower() in lexicon.TIME_NOUNS or head.lower_ in lexicon.TIME_NOUNS


def promoted_to_subject(text: str, head) -> bool:
    """An actor that is a person or animal, or a thing that moves itself."""
    living = lexicon.is_living(text, head.lemma_.lower()) or lexicon.is_living(text, head.lower_)
    return (living and is_actor(head)) or is_mover(head)
