"""LLM entity backends (issue 4): a tiny Mistral through the transformers backend, and the
vLLM backend's requests / schema / output handling against a fake engine."""
import shutil
import sys
import types

import pyarrow as pa
import pytest

from curation.entities import prompt
from model.model_registry import torch_threads
from curation.entities.tiny import FIT_PAIRS, fit_tiny_mistral, write_tiny_mistral
from curation.entities.transformers_backend import TransformersExtractor, render
from curation.entities.vllm_backend import ENTITY_SCHEMA, VllmExtractor
from curation.stages.entities import EntitiesStage, reapply

PAIRS = FIT_PAIRS
EXPECTED = [
    [("brown dog", "subject"), ("red ball", "object"), ("beach", "background")],
    [("woman", "subject"), ("yellow raincoat", "object"), ("park", "background")],
    [("little girl", "subject"), ("teddy bear", "object"), ("bedroom", "background")],
]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models run fastest on one thread (see model.model_registry.torch_threads)."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def random_mistral(tmp_path_factory):
    return write_tiny_mistral(tmp_path_factory.mktemp("mistral") / "random")


@pytest.fixture(scope="module")
def fitted_mistral(random_mistral, tmp_path_factory):
    out = tmp_path_factory.mktemp("mistral") / "fitted"
    shutil.copytree(random_mistral, out)
    steps = fit_tiny_mistral(out, PAIRS, max_steps=400)
    assert steps < 400, "the tiny Mistral did not memorise three answers in 400 steps"
    return out


def _batch(captions):
    return pa.table({"clip_key": [f"v{i}:0-1000" for i in range(len(captions))],
                     "caption": captions})


# ------------------------------------------------------------------ transformers backend


@pytest.mark.slow
def test_fitted_tiny_mistral_yields_exactly_its_entities_through_the_stage(fitted_mistral):
    stage = EntitiesStage(backend="transformers", model=str(fitted_mistral), max_new_tokens=48,
                          llm_batch_size=8)
    stage.setup()
    # batch order differs from training order, and lengths differ: left padding is exercised
    order = [2, 0, 1]
    out = stage(_batch([PAIRS[i][0] for i in order])).to_pylist()
    for row, i in zip(out, order):
        assert row["status"] == "ok", row
        assert [(e["word"], e["type"]) for e in row["entities"]] == EXPECTED[i]
        assert row["entities_raw"].strip() == PAIRS[i][1]
        assert row["entities_prompt_hash"] == prompt.prompt_hash()
        assert {e["prompt_hash"] for e in row["entities"]} == {prompt.prompt_hash()}
        assert row["entities_extractor"] == f"transformers:{fitted_mistral}"


@pytest.mark.slow
def test_rules_reapplied_to_stored_raw_outputs_need_no_model(fitted_mistral, monkeypatch):
    stage = EntitiesStage(backend="transformers", model=str(fitted_mistral), max_new_tokens=48)
    out = stage(_batch([c for c, _ in PAIRS])).to_pylist()
    import transformers

    def no_model(*a, **k):
        raise AssertionError("re-applying rules must not load a model")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_model)
    again = reapply([r["clip_key"] for r in out], [r["caption"] for r in out],
                    [r["entities_raw"] for r in out], stage.extractor.id, stage.extractor.prompt_hash)
    assert [rows for rows, _ in again] == [r["entities"] for r in out]
    assert [reason for _, reason in again] == [None, None, None]


def test_random_tiny_mistral_garbage_is_rejected_as_invalid_output(random_mistral):
    stage = EntitiesStage(backend="transformers", model=str(random_mistral), max_new_tokens=24)
    captions = [c for c, _ in PAIRS] + ["A cat."]
    out = stage(_batch(captions)).to_pylist()
    assert [r["reason"] for r in out] == ["invalid_output"] * len(captions)
    assert all(r["entities_raw"] and r["entities"] == [] for r in out)


def test_render_uses_the_chat_template_else_the_plain_prompt(random_mistral):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(random_mistral)
    caption = PAIRS[0][0]
    text, special = render(tok, caption)
    assert text == f"<s>[INST] {prompt.build_prompt(caption)}[/INST]" and special is False
    tok.chat_template = None
    assert render(tok, caption) == (prompt.build_prompt(caption), True)


def test_batched_generation_equals_one_by_one(random_mistral):
    ex = TransformersExtractor(model=str(random_mistral), max_new_tokens=12, batch_size=4)
    captions = ["A dog.", "A woman in a long red coat walks along the river at dawn."]
    assert ex.extract(captions) == [ex.extract([c])[0] for c in captions]


# ------------------------------------------------------------------ vllm backend


class FakeLLM:
    """Stands in for `vllm.LLM`: renders each conversation with a real tokenizer's chat template
    (as vLLM does) and answers from a table keyed by caption."""

    def __init__(self, tokenizer=None, answers=None, **engine_kwargs):
        self.tokenizer, self.answers, self.engine_kwargs = tokenizer, answers or {}, engine_kwargs
        self.calls = []

    def chat(self, messages, sampling_params=None, use_tqdm=True):
        self.calls.append((messages, sampling_params))
        outs = []
        for conv in messages:
            caption = conv[-1]["content"].rsplit(prompt.CAPTION_PREFIX, 1)[1].split("\n")[0]
            text = self.answers.get(caption)
            completions = [] if text is None else [types.SimpleNamespace(text=text)]
            outs.append(types.SimpleNamespace(outputs=completions))
        return outs


@pytest.fixture
def fake_vllm(monkeypatch):
    """A `vllm` module with the current structured-outputs API, recording what it was given."""
    vllm = types.ModuleType("vllm")
    sp = types.ModuleType("vllm.sampling_params")
    vllm.SamplingParams = lambda **kw: types.SimpleNamespace(**kw)
    sp.StructuredOutputsParams = lambda **kw: types.SimpleNamespace(kind="structured", **kw)
    vllm.LLM = FakeLLM
    vllm.sampling_params = sp
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)
    return vllm


def test_vllm_requests_schema_and_outputs(fake_vllm, random_mistral):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(random_mistral)
    answers = {PAIRS[0][0]: '{"background": ["beach"], "subject": ["brown dog"], "object": ["red ball"]}',
               PAIRS[1][0]: "not json at all"}
    llm = FakeLLM(tok, answers)
    ex = VllmExtractor(llm=llm, max_new_tokens=64)
    stage = EntitiesStage(backend="vllm")
    stage.extractor = ex
    out = stage(_batch([PAIRS[0][0], PAIRS[1][0], PAIRS[2][0]])).to_pylist()
    # one chat call for the whole batch, one user turn per caption, Figure 7 prompt verbatim
    (messages, params), = llm.calls
    assert messages == [prompt.build_chat(c) for c, _ in PAIRS]
    assert params.temperature == 0.0 and params.max_tokens == 64
    assert params.structured_outputs.json == ENTITY_SCHEMA
    assert [r["reason"] for r in out] == [None, "invalid_output", "invalid_output"]
    assert [(e["word"], e["type"]) for e in out[0]["entities"]] == EXPECTED[0]
    assert out[0]["entities_extractor"] == "vllm:mistralai/Mistral-7B-Instruct-v0.3"
    assert out[2]["entities_raw"] is None  # no completion at all: stored as null, rejected


def test_vllm_and_transformers_build_byte_identical_prompts(random_mistral):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(random_mistral)
    captions = [c for c, _ in PAIRS]
    via_vllm = [tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
                for conv in VllmExtractor(llm=FakeLLM()).requests(captions)]
    via_transformers = [render(tok, c)[0] for c in captions]
    assert via_vllm == via_transformers


def test_entity_schema_is_the_three_string_lists():
    assert ENTITY_SCHEMA["required"] == ["background", "subject", "object"]
    assert ENTITY_SCHEMA["additionalProperties"] is False
    for key in ENTITY_SCHEMA["required"]:
        assert ENTITY_SCHEMA["properties"][key] == {"type": "array", "items": {"type": "string"}}


def test_vllm_setup_builds_the_engine_from_config(fake_vllm, random_mistral):
    ex = VllmExtractor(model=str(random_mistral), tensor_parallel_size=4, dtype="bfloat16",
                       max_model_len=2048)
    ex.setup()
    kw = ex.llm.engine_kwargs
    assert kw["model"] == str(random_mistral) and kw["tensor_parallel_size"] == 4
    assert kw["dtype"] == "bfloat16" and kw["max_model_len"] == 2048 and kw["seed"] == 0


def test_vllm_falls_back_to_guided_decoding_on_older_vllm(fake_vllm, monkeypatch):
    sp = types.ModuleType("vllm.sampling_params")
    sp.GuidedDecodingParams = lambda **kw: types.SimpleNamespace(kind="guided", **kw)
    monkeypatch.setitem(sys.modules, "vllm.sampling_params", sp)
    params = VllmExtractor(llm=FakeLLM()).sampling_params()
    assert params.guided_decoding.json == ENTITY_SCHEMA
    assert not hasattr(params, "structured_outputs")


def test_vllm_backend_without_vllm_installed_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(RuntimeError, match=r"pip install -e \.\[gpu\]"):
        VllmExtractor().setup()


@pytest.mark.slow
def test_eval_entities_scores_the_transformers_backend(fitted_mistral):
    from curation.entities.evaluate import Labelled, evaluate

    labels = [(["dog"], ["ball"], ["beach"]), (["woman"], ["raincoat"], ["park"]),
              (["girl"], ["teddy bear"], ["bedroom"])]
    items = [Labelled(f"f{i}", caption, dict(subject=s, object=o, background=b), "kept")
             for i, ((caption, _), (s, o, b)) in enumerate(zip(PAIRS, labels))]
    ex = TransformersExtractor(model=str(fitted_mistral), max_new_tokens=48, batch_size=3)
    ex.setup()
    score = evaluate(ex, items)
    assert score.rates() == {k: 1.0 for k in score.rates()} and score.disagreements == []


@pytest.mark.slow
def test_eval_entities_cli_scores_spacy_and_the_given_model(random_mistral, tmp_path, capsys):
    import json

    from curation.cli import main

    out = tmp_path / "scores.json"
    argv = ["eval-entities", "--part", "heldout", "--limit", "2", "--max-new-tokens", "4",
            "--json", str(out)]
    assert main(argv + ["--model", str(random_mistral)]) == 0
    doc = json.loads(out.read_text())
    assert sorted(k.split(":")[0] for k in doc) == ["spacy", "transformers"]
    llm = doc[f"transformers:{random_mistral}"]["heldout"]
    assert llm["n"] == 2 and len(llm["disagreements"]) == 2  # 4 random tokens are no answer
    assert main(argv + ["--model", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
