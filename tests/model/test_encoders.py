"""Frozen encoders loaded from tiny real checkpoints, and entity word -> token mapping."""
import pytest
import torch

from model.encoders import (
    ImageEncoder, ImageEncoderConfig, TextEncoder, TextEncoderConfig, find_word, word_token_positions,
    WordTokenError,
)
from model.tiny import TINY_IMAGE_SIZE


def test_find_word_is_whole_word_and_first_occurrence():
    prompt = "a woman and a man, and another man"
    assert find_word(prompt, "man") == (14, 17)  # never inside "woman"
    assert find_word(prompt, "woman") == (2, 7)
    assert find_word("a woman walks", "man") is None
    assert find_word("a manly man", "man") == (8, 11)
    assert find_word("Man walks", "man") == (0, 3)  # case-insensitive fallback
    assert find_word("long brown hair in wind", "long brown hair") == (0, 15)


@pytest.fixture(scope="module")
def text_encoder(tiny_checkpoints):
    return TextEncoder(TextEncoderConfig(spec=tiny_checkpoints["t5"], max_length=24))


def test_word_tokens_spell_the_word(text_encoder):
    prompt = "a woman and a man walk a dog"
    emb = text_encoder([prompt])
    tok = text_encoder.tokenizer
    ids = tok(prompt)["input_ids"]
    for word in ("man", "woman", "dog"):
        pos = word_token_positions(prompt, word, emb.offsets[0])
        pieces = "".join(tok.convert_ids_to_tokens([ids[i] for i in pos])).replace("\u2581", "")
        assert pieces == word
    assert set(word_token_positions(prompt, "man", emb.offsets[0])).isdisjoint(
        word_token_positions(prompt, "woman", emb.offsets[0]))
    with pytest.raises(ValueError, match="'cat' does not occur"):
        word_token_positions(prompt, "cat", emb.offsets[0])


def test_text_embedding_padding_is_masked_and_zero(text_encoder):
    emb = text_encoder(["a man", "a woman and a man walk a dog on the beach"])
    assert emb.tokens.shape == (2, 24, 32)
    assert emb.mask[0].sum() < emb.mask[1].sum()
    assert torch.all(emb.tokens[~emb.mask] == 0)
    assert emb.tokens[emb.mask].abs().sum(-1).min() > 0


def image_encoder(ckpts, kind, **kw):
    return ImageEncoder(ImageEncoderConfig(kind=kind, spec=ckpts[kind], image_size=TINY_IMAGE_SIZE[kind], **kw))


def reference_outputs(enc, images):
    return enc.model(pixel_values=enc.preprocess(images), output_hidden_states=True)


def test_clip_uses_second_to_last_block_patch_tokens(tiny_checkpoints):
    enc = image_encoder(tiny_checkpoints, "clip")
    images = torch.rand(2, 3, 40, 30)
    ref = reference_outputs(enc, images)
    tokens = enc(images)
    assert tokens.shape == (2, 4, 32)  # (28 / 14)^2 patches, no class token
    assert enc.block == enc.num_layers - 1
    assert torch.allclose(tokens, ref.hidden_states[-2][:, 1:])
    assert not torch.allclose(tokens, ref.hidden_states[-1][:, 1:])


def test_dinov2_uses_last_block_normed_patch_tokens(tiny_checkpoints):
    enc = image_encoder(tiny_checkpoints, "dinov2")
    images = torch.rand(2, 3, 28, 28)
    ref = reference_outputs(enc, images)
    tokens = enc(images)
    assert enc.block == enc.num_layers
    assert torch.allclose(tokens, ref.last_hidden_state[:, 1:])
    assert not torch.allclose(tokens, ref.last_hidden_state[:, :-1])  # the class token is out


def test_class_token_switch(tiny_checkpoints):
    images = torch.rand(1, 3, 28, 28)
    cls = image_encoder(tiny_checkpoints, "dinov2", tokens="class")(images)
    both = image_encoder(tiny_checkpoints, "dinov2", tokens="all")(images)
    patches = image_encoder(tiny_checkpoints, "dinov2")(images)
    assert cls.shape == (1, 1, 32) and both.shape == (1, 5, 32)
    assert torch.allclose(both[:, :1], cls) and torch.allclose(both[:, 1:], patches)


def test_mae_keeps_every_patch_in_order(tiny_checkpoints):
    enc = image_encoder(tiny_checkpoints, "mae")
    images = torch.rand(2, 3, 32, 32)
    first, second = enc(images), enc(images)
    assert first.shape == (2, 4, 32)  # (32 / 16)^2: none masked away
    assert torch.equal(first, second)  # no random shuffling
    # The noise the encoder passes keeps the patches in raster order.
    _, _, restore = enc.model.embeddings(enc.preprocess(images), noise=torch.arange(4.0).expand(2, 4))
    assert torch.equal(restore, torch.arange(4).expand(2, 4))


def test_preprocess_pads_to_square(tiny_checkpoints):
    enc = image_encoder(tiny_checkpoints, "dinov2")
    tall = torch.ones(1, 3, 40, 20)
    pixels = enc.preprocess(tall)
    assert pixels.shape == (1, 3, 28, 28)
    black = (0 - enc.mean) / enc.std
    assert torch.allclose(pixels[0, :, 14, 0], black[0, :, 0, 0], atol=1e-3)  # left pad
    assert torch.allclose(pixels[0, :, 14, 14], ((1 - enc.mean) / enc.std)[0, :, 0, 0], atol=1e-3)


def test_unknown_encoder_kind():
    with pytest.raises(ValueError, match="unknown image encoder"):
        ImageEncoder(ImageEncoderConfig(kind="siglip"))


def test_word_beyond_the_token_limit_is_an_error_not_an_empty_binding(text_encoder):
    prompt = "a dog " + "runs and jumps " * 20 + "past a cat"
    emb = text_encoder([prompt])  # max_length 24: "cat" is cut off
    assert word_token_positions(prompt, "dog", emb.offsets[0])
    with pytest.raises(WordTokenError, match="beyond the text encoder's 24-token limit") as err:
        word_token_positions(prompt, "cat", emb.offsets[0])
    assert err.value.reason == "word_beyond_token_limit"
