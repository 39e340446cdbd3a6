"""Weights load only from safetensors: a pickled checkpoint (pytorch_model.bin) is refused by
the one loader every stage and model class goes through."""
from __future__ import annotations

import pytest
import torch
from transformers import BertConfig, BertModel

TINY = dict(vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
            intermediate_size=16, max_position_embeddings=16)


@pytest.mark.parametrize("safe", [True, False])
def test_pickled_weights_are_refused(tmp_path, safe):
    from model.model_registry import ModelUnavailable, load

    model = BertModel(BertConfig(**TINY))
    if safe:
        model.save_pretrained(tmp_path)
    else:  # what an old or hostile repository ships: a pickle
        model.config.save_pretrained(tmp_path)
        torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    if safe:
        assert isinstance(load(BertModel, str(tmp_path)), BertModel)
    else:
        assert (tmp_path / "pytorch_model.bin").exists()
        with pytest.raises(ModelUnavailable, match="safetensors"):
            load(BertModel, str(tmp_path))


def test_tokenizers_and_processors_are_not_asked_for_weights():
    from transformers import AutoModel, AutoTokenizer, BertTokenizerFast

    from model.model_registry import loads_weights

    assert loads_weights(BertModel) and loads_weights(AutoModel)
    assert not loads_weights(AutoTokenizer) and not loads_weights(BertTokenizerFast)
