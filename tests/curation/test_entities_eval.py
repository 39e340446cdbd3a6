"""The labelled caption set, its scoring, `alchemist eval-entities`, and the offline rules it
measures (issue 11): vehicles as subjects, coordination, acted-on animals, places."""
import json
import re

import pytest

from curation.cli import main
from curation.entities.evaluate import (PARTS, VERDICTS, Labelled, evaluate, load_part, matches,
                                        verdict_of)
from curation.entities.prompt import EXAMPLES
from curation.entities.rules import apply_rules
from curation.entities.spacy_backend import SpacyExtractor


@pytest.fixture(scope="module")
def spacy_extractor():
    ex = SpacyExtractor()
    ex.setup()
    return ex


def offline(ex, caption):
    result = apply_rules(caption, ex.extract([caption])[0])
    return verdict_of(result), {(e.word, e.type) for e in result.typed}


# ------------------------------------------------------------------ the issue's captions


@pytest.mark.parametrize("caption, verdict, entities", [
    ("A red sports car drives along a mountain road.", "kept",
     {("red sports car", "subject"), ("mountain road", "background")}),
    ("An elderly man feeds pigeons in a park.", "kept",
     {("elderly man", "subject"), ("pigeons", "object"), ("park", "background")}),
    ("A woman and a man dance in a ballroom.", "kept",
     {("woman", "subject"), ("man", "subject"), ("ballroom", "background")}),
    ("A man sings on a stage.", "kept", {("man", "subject"), ("stage", "background")}),
    ("A chef cooks pasta in a kitchen.", "kept",
     {("chef", "subject"), ("pasta", "object"), ("kitchen", "background")}),
])
def test_issue_captions_get_the_expected_entities_and_verdicts(spacy_extractor, caption, verdict,
                                                               entities):
    assert offline(spacy_extractor, caption) == (verdict, entities)


@pytest.mark.parametrize("caption, verdict, entities", [
    # a thing is a subject only when it moves itself; parked, it is an object
    ("A white van is parked in front of a house.", "no_subject",
     {("white van", "object"), ("house", "object")}),
    # plural movers are plural subjects; a base-form verb read as a noun is repaired
    ("Two trucks drive along a highway.", "plural_subject",
     {("trucks", "subject"), ("highway", "background")}),
    ("Two ladybugs crawl across the ground.", "plural_subject",
     {("ladybugs", "subject"), ("ground", "background")}),
    ("A coffee cup.", "no_subject", {("coffee cup", "object")}),
    # time words are not entities; scene words stay background even when they move
    ("Clouds drift across the sky at sunset.", "no_subject",
     {("Clouds", "background"), ("sky", "background")}),
    # the possessor acts through its body part; the body part is an object
    ("A chef's hands sprinkle salt over a steak.", "kept",
     {("chef", "subject"), ("hands", "object"), ("salt", "object"), ("steak", "object")}),
    # a pronoun is not a noun (Figure 7 rule 1)
    ("Someone is chopping onions.", "no_subject", {("onions", "object")}),
    # a named place is background; a table is an object whatever the preposition
    ("A man fishes on a lake in Canada.", "kept",
     {("man", "subject"), ("lake", "background"), ("Canada", "background")}),
])
def test_offline_rules_follow_the_labelling_conventions(spacy_extractor, caption, verdict, entities):
    assert offline(spacy_extractor, caption) == (verdict, entities)


def test_prompt_examples_are_fixed_points_of_the_rules():
    # what the LLM is taught is what the rules keep: nothing in an example is reclassified
    for caption, output in EXAMPLES:
        assert apply_rules(caption, output).reclassified == [], caption


# ------------------------------------------------------------------ the labelled set


def test_labelled_parts_are_well_formed_and_disjoint():
    seen_ids, captions = set(), {}
    for part in PARTS:
        rows = load_part(part)
        assert len(rows) >= 100
        captions[part] = {r.caption for r in rows}
        for r in rows:
            assert r.id not in seen_ids and r.verdict in VERDICTS
            seen_ids.add(r.id)
            assert (r.verdict == "no_subject") == (not r.words["subject"]), r.id
            for words in r.words.values():
                for w in words:  # Figure 7 rule 2: an exact, whole-word part of the caption
                    assert re.search(rf"(?<!\w){re.escape(w)}(?!\w)", r.caption), (r.id, w)
    assert not captions["train"] & captions["heldout"]


def test_heldout_targets_of_issue_11(spacy_extractor):
    rates = evaluate(spacy_extractor, load_part("heldout")).rates()
    assert rates["verdict_accuracy"] >= 0.90 and rates["subject_recall"] >= 0.90, rates


# ------------------------------------------------------------------ scoring


def test_a_prediction_matches_a_label_ending_with_its_words():
    assert matches("red sports car", "sports car") and matches("Teddy Bear", "teddy bear")
    assert not matches("car", "sports car") and not matches("man dance", "man")


class Answers:
    """An extractor with fixed raw answers (the interface every backend shares)."""

    id, prompt_hash = "fixed", None

    def __init__(self, raws):
        self.raws = raws

    def setup(self):
        pass

    def extract(self, captions):
        return [self.raws[c] for c in captions]


def test_scores_count_types_verdicts_and_disagreements():
    items = [Labelled("a", "A man feeds pigeons in a park.",
                      {"background": ["park"], "subject": ["man"], "object": ["pigeons"]}, "kept"),
             Labelled("b", "A red car is parked on a street.",
                      {"background": ["street"], "subject": [], "object": ["car"]}, "no_subject"),
             Labelled("c", "A dog.", {"background": [], "subject": ["dog"], "object": []}, "kept")]
    raws = {items[0].caption: json.dumps({"background": ["park"], "subject": ["man", "pigeons"],
                                          "object": []}),  # an LLM naming the fed pigeons
            items[1].caption: json.dumps({"background": ["street"], "subject": [],
                                          "object": ["red car"]}),
            items[2].caption: "not a dict"}
    s = evaluate(Answers(raws), items)
    r = s.rates()
    assert r["verdict_accuracy"] == pytest.approx(1 / 3)  # only b: a is plural, c invalid
    assert (r["subject_precision"], r["subject_recall"]) == (0.5, 0.5)  # 1 of man/pigeons; dog missed
    assert (r["object_precision"], r["object_recall"]) == (1.0, 0.5)  # "red car" is "car"
    assert (r["background_precision"], r["background_recall"]) == (1.0, 1.0)
    got = {d["id"]: d for d in s.disagreements}
    assert set(got) == {"a", "c"}
    assert got["a"]["got"] == "plural_subject" and got["a"]["words"]["subject"]["extra"] == ["pigeons"]
    assert got["c"]["got"] == "invalid_output" and got["c"]["words"]["subject"]["missed"] == ["dog"]


def test_cli_prints_and_writes_scores_per_part(tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["eval-entities", "--part", "train", "--limit", "8", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "verdict_acc" in printed and "train" in printed and "heldout" not in printed
    doc = json.loads(out.read_text())
    (scores,) = doc.values()
    assert scores["train"]["n"] == 8 and 0 <= scores["train"]["verdict_accuracy"] <= 1
    assert main(["eval-entities", "--limit", "0"]) == 2
    assert "--limit" in capsys.readouterr().err
