"""Entity prompt (Figure 7) and output parsing: JSON, literal-only Python dicts, type checks."""
import pytest

from curation.entities import prompt
from curation.entities.parse import MAX_SPAN_CHARS, find_dict_span, parse_output

FIG7_CAPTION = ("A woman in a mask and coat, with long brown hair, shows a small green-capped "
                "bottle to the camera.")
FIG7_OUTPUT = ("{'background': [''], 'subject': ['woman'], 'object': ['mask', 'coat', "
               "'long brown hair', 'green-capped bottle']}")


def test_prompt_holds_figure_7_verbatim_and_ends_with_the_caption():
    p = prompt.build_prompt("A dog runs on the beach.")
    for line in (
        "Given an image caption, please retrieve the word tags that indicate background, "
        "subject, and visually separable objects.",
        "[Definition of background] the background spaces that appear in most of the image area.",
        "[Definition of subject] human or animal subjects that appear in the image",
        "[Definition of object] the entities that appear in part of the image and can be "
        "visually separated with each other.",
        "All of the word tags need to strictly follow two rules below:",
        "1) word tag is a noun without any quantifier.",
        "2) word tag is an exact subset of the caption. Do not modify any characters, word and symbols.",
        "Here are some examples, follow this format to output the results:",
        f"### Caption: {FIG7_CAPTION}\n### Output: {FIG7_OUTPUT}",
    ):
        assert line in p
    assert p.endswith("### Caption: A dog runs on the beach.\n### Output:")
    assert p.index(FIG7_CAPTION) < p.index("A man in a red jacket")  # the paper's example first


def test_few_shot_examples_are_valid_and_obey_figure_7_rule_2():
    assert len(prompt.EXAMPLES) >= 5
    for caption, output in prompt.EXAMPLES:
        parsed = parse_output(output)
        assert parsed.ok, output
        for words in parsed.lists.values():
            assert all(w in caption for w in words), (caption, words)
    kinds = {k: sum(bool(parse_output(o).lists[k]) for _, o in prompt.EXAMPLES)
             for k in ("background", "subject", "object")}
    assert min(kinds.values()) >= 3  # every list is demonstrated, and empty ones too
    assert any(not parse_output(o).lists["subject"] for _, o in prompt.EXAMPLES)


def test_prompt_hash_is_stable_and_tracks_the_template(monkeypatch):
    h = prompt.prompt_hash()
    assert len(h) == 16 and h == prompt.prompt_hash()
    monkeypatch.setattr(prompt, "TEMPLATE", prompt.TEMPLATE + " ")
    assert prompt.prompt_hash() != h


def test_chat_is_one_user_turn_with_the_identical_prompt():
    caption = "A man\nrides a horse."
    chat = prompt.build_chat(caption)
    assert chat == [{"role": "user", "content": prompt.build_prompt(caption)}]
    assert "A man rides a horse.\n### Output:" in chat[0]["content"]  # one line per caption


@pytest.mark.parametrize("raw", [
    '{"background": ["beach"], "subject": ["dog"], "object": ["ball"]}',
    "{'background': ['beach'], 'subject': ['dog'], 'object': ['ball']}",
    " Sure! Here it is:\n{'background': ['beach'], 'subject': ['dog'], 'object': ['ball']}\n### Caption: x",
    "{'background': ['', 'beach'], 'subject': [' dog '], 'object': ['ball', '']}",
])
def test_json_python_dicts_and_chatter_parse_to_the_same_lists(raw):
    parsed = parse_output(raw)
    assert parsed.lists == {"background": ["beach"], "subject": ["dog"], "object": ["ball"]}


def test_figure_7_output_drops_empty_strings():
    assert parse_output(FIG7_OUTPUT).lists == {
        "background": [], "subject": ["woman"],
        "object": ["mask", "coat", "long brown hair", "green-capped bottle"]}


@pytest.mark.parametrize("raw, why", [
    (None, "no output"),
    ("the subject is a dog", "no {"),
    ("{'background': ['beach'], 'subject': ['dog']}", "keys must be"),
    ("{'background': [], 'subject': [], 'object': [], 'extra': []}", "keys must be"),
    ("{'background': 'beach', 'subject': [], 'object': []}", "list of strings"),
    ("{'background': [1], 'subject': [], 'object': []}", "list of strings"),
    ("{'background': [], 'subject': [], 'object': [", "no {...}"),
    ("{__import__('os').system('echo pwned'): 1}", "neither JSON nor a Python literal"),
    ("{'background': [x], 'subject': [], 'object': []}", "neither JSON nor a Python literal"),
    ("[{'background': []}]", "keys must be"),
])
def test_invalid_outputs_are_reported_never_evaluated(raw, why, capfd):
    parsed = parse_output(raw)
    assert not parsed.ok and why in parsed.error
    assert "pwned" not in capfd.readouterr().out


def test_python_literal_parse_is_size_capped_but_json_is_not():
    words = ", ".join(f"'w{i}'" for i in range(MAX_SPAN_CHARS // 5))
    big_python = "{'background': [], 'subject': [], 'object': [" + words + "]}"
    assert len(big_python) > MAX_SPAN_CHARS
    parsed = parse_output(big_python)
    assert not parsed.ok and "cap" in parsed.error
    assert parse_output(big_python.replace("'", '"')).ok


def test_dict_span_honours_quotes_and_skips_unbalanced_braces():
    assert find_dict_span("x {'a': '}'} y") == "{'a': '}'}"
    assert find_dict_span("{ it's broken } then {'a': 1}") == "{'a': 1}"
    assert find_dict_span('{"a": "\\"}"}') == '{"a": "\\"}"}'
    assert find_dict_span("no dict") is None
