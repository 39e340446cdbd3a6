"""Paper A.2 post-processing rules, each on crafted extractor outputs."""
import json

import pytest

from curation.entities.rules import REASONS, apply_rules, apply_rules_batch, word_span


def out(background=(), subject=(), object=()):
    return json.dumps({"background": list(background), "subject": list(subject),
                       "object": list(object)})


def kept(result):
    return [(e.word, e.type) for e in result.entities]


def test_a_valid_answer_keeps_typed_entities_with_caption_spans():
    caption = "A woman in a mask and coat, with long brown hair, shows a bottle on the beach."
    r = apply_rules(caption, out(["beach"], ["woman"], ["mask", "coat", "long brown hair", "bottle"]))
    assert r.reason is None
    assert kept(r) == [("woman", "subject"), ("mask", "object"), ("coat", "object"),
                       ("long brown hair", "object"), ("bottle", "object"), ("beach", "background")]
    for e in r.entities:
        assert caption[e.char_start:e.char_end] == e.word


def test_invalid_dict_rejects_invalid_output():
    r = apply_rules("A dog.", "{'subject': ['dog']")
    assert r.reason == "invalid_output" and r.entities == []
    assert "output:" in r.detail


def test_an_entity_not_in_the_caption_rejects_the_whole_sample():
    r = apply_rules("A dog runs on the beach.", out(["beach"], ["dog"], ["frisbee"]))
    assert r.reason == "entity_not_in_caption" and "frisbee" in r.detail
    # the substring test is exact (Figure 7 rule 2): a changed case or inflection fails it
    assert apply_rules("A dog runs.", out([], ["Dog"])).reason == "entity_not_in_caption"


def test_substring_only_inside_a_longer_word_is_not_in_the_caption():
    r = apply_rules("A woman walks on the beach.", out(["beach"], ["man"]))
    assert r.reason == "entity_not_in_caption" and "inside a longer word" in r.detail


def test_span_is_the_first_whole_word_occurrence():
    caption = "A woman and a man talk; the man laughs."
    r = apply_rules(caption, out([], ["woman", "man"]))
    spans = {e.word: (e.char_start, e.char_end) for e in r.entities}
    assert spans["man"] == (14, 17) and spans["woman"] == (2, 7)
    assert word_span("green-capped bottle!", "green-capped bottle") == (0, 19)
    assert word_span("a manhole", "man") is None


def test_leading_articles_are_dropped_from_entity_words():
    r = apply_rules("A dog chases the ball.", out([], ["A dog"], ["the ball"]))
    assert kept(r) == [("dog", "subject"), ("ball", "object")]


@pytest.mark.parametrize("word, caption", [
    ("cloud", "A bird flies past a cloud."),
    ("cloudy sky", "A bird flies under a cloudy sky."),
    ("sea", "A boy swims in the sea."),
    ("living room", "A cat sleeps in the living room."),
])
def test_scene_words_are_reclassified_as_background(word, caption):
    subject = caption.split()[1]
    r = apply_rules(caption, out([], [subject], [word]))
    assert (word, "background") in kept(r)
    assert (word, "object", "background") in r.reclassified


def test_an_acting_person_or_animal_listed_as_object_becomes_a_subject_but_a_toy_does_not():
    r = apply_rules("A kitten sits next to a teddy bear.", out([], [], ["teddy bear", "kitten"]))
    assert r.reason is None
    assert kept(r) == [("kitten", "subject"), ("teddy bear", "object")]
    r = apply_rules("A teddy bear sits on a bed.", out([], [], ["teddy bear", "bed"]))
    assert r.reason == "no_subject"


def test_an_animal_acted_on_stays_an_object():
    # eval/README.md: only actors are subjects; "pigeons" are fed, so a plural object is fine
    r = apply_rules("An elderly man feeds pigeons in a park.", out(["park"], ["elderly man"], ["pigeons"]))
    assert r.reason is None
    assert kept(r) == [("elderly man", "subject"), ("pigeons", "object"), ("park", "background")]


def test_no_subject_rejects_the_sample():
    r = apply_rules("A red car is parked on a mountain road.", out(["mountain road"], [], ["red car"]))
    assert r.reason == "no_subject"
    # background-only answers, after reclassification, have no subject either
    assert apply_rules("Waves roll onto the beach.", out([], ["beach"])).reason == "no_subject"


@pytest.mark.parametrize("caption, subject", [
    ("A group of people walk on the beach.", "people"),
    ("Dogs are barking at the gate.", "Dogs"),
    ("Dogs bark.", "Dogs"),  # tagged NNP by the small model: the lexical backstop
    ("Three puppies sleep.", "puppies"),
    ("Wolves howl at night.", "Wolves"),
    ("Two men are playing chess.", "men"),
    ("Two men are playing chess.", "Two men"),
    ("A group of tourists take photos.", "group"),
    ("A herd of cattle grazes.", "cattle"),
    ("Several children run in a park.", "children"),
    ("A crowd cheers at a concert.", "crowd"),
])
def test_plural_subjects_reject_the_sample(caption, subject):
    r = apply_rules(caption, out([], [subject]))
    assert r.reason == "plural_subject", (caption, r)
    assert subject in r.detail


@pytest.mark.parametrize("caption, subject", [
    ("A man walks his dog.", "man"),
    ("A woman reads a book.", "woman"),
    ("A boss talks to a client.", "boss"),
    ("A child plays with two balls.", "child"),
    ("A sheep grazes on a hill.", "sheep"),
])
def test_singular_subjects_pass(caption, subject):
    r = apply_rules(caption, out([], [subject]))
    assert r.reason is None, r


def test_duplicates_keep_the_first_by_type_priority():
    r = apply_rules("A dog on the beach.", out(["beach"], ["dog"], ["the beach", "dog"]))
    assert kept(r) == [("dog", "subject"), ("beach", "background")]


def test_rules_run_in_the_paper_order():
    # not-in-caption is checked before no-subject and plural
    assert apply_rules("Dogs bark.", out([], [], ["cat"])).reason == "entity_not_in_caption"
    # no-subject before plural (no subject at all here, so plural cannot apply)
    assert apply_rules("Cars are parked.", out([], [], ["Cars"])).reason == "no_subject"


def test_batch_matches_single_calls_and_every_reason_is_documented():
    captions = ["A dog on the beach.", "Dogs bark.", "A car.", "A dog."]
    raws = [out(["beach"], ["dog"]), out([], ["Dogs"]), out([], [], ["car"]), "garbage"]
    batch = apply_rules_batch(captions, raws)
    assert [r.reason for r in batch] == [None, "plural_subject", "no_subject", "invalid_output"]
    assert batch == [apply_rules(c, r) for c, r in zip(captions, raws)]
    assert {r.reason for r in batch if r.reason} <= set(REASONS)
