"""The personalization embedding f (paper 3.2): binding, padding, index embeddings, ablation."""
import pytest
import torch

from model.config import dit_config
from model.personalization import Conditioning, PersonalizationEmbedder, word_index_tensor

CFG = dit_config("dit-tiny", text_dim=3, image_dim=5, word_tokens=3, max_refs=4)


def known_cond():
    """Text token i is the constant vector i + 1; slot r's image tokens are 100 * (r + 1)."""
    text = torch.arange(1.0, 8.0)[None, :, None].expand(1, 7, CFG.text_dim).clone()  # (1, 7, 3)
    refs = torch.stack([torch.full((4, CFG.image_dim), 100.0 * (r + 1)) for r in range(2)])[None]
    # Slot 0 is bound to tokens 2 and 3 (a two-token word), slot 1 to token 5.
    word_index = word_index_tensor([[[2, 3], [5]]], CFG.word_tokens)
    return Conditioning(text, torch.ones(1, 7, dtype=torch.bool), refs,
                        torch.ones(1, 2, dtype=torch.bool), word_index)


def test_binding_puts_each_words_tokens_next_to_its_image():
    emb = PersonalizationEmbedder(CFG)
    bound = emb.bind(known_cond())  # (1, R, l, c + K*Dt)
    assert bound.shape == (1, 2, 4, CFG.image_dim + CFG.word_tokens * CFG.text_dim)
    image, words = bound[..., : CFG.image_dim], bound[..., CFG.image_dim :]
    assert torch.all(image[0, 0] == 100.0) and torch.all(image[0, 1] == 200.0)
    words = words.reshape(1, 2, 4, CFG.word_tokens, CFG.text_dim)[..., 0]  # first channel
    for token in range(4):  # repeated for every image token
        assert words[0, 0, token].tolist() == [3.0, 4.0, 0.0]  # tokens 2, 3, zero pad
        assert words[0, 1, token].tolist() == [6.0, 0.0, 0.0]  # token 5, zero pad


def test_word_index_crops_and_pads():
    index = word_index_tensor([[[1, 2, 3, 4, 5], [7]], [[0]]], k=3)
    assert index.tolist() == [[[1, 2, 3], [7, -1, -1]], [[0, -1, -1], [-1, -1, -1]]]


def test_embedding_is_residual_projection_plus_index():
    torch.manual_seed(0)
    emb = PersonalizationEmbedder(CFG)
    cond = known_cond()
    f, mask = emb(cond)
    expected = cond.ref_tokens + emb.proj(emb.bind(cond)) + emb.index[:2][None, :, None]
    assert torch.allclose(f, expected.reshape(1, 8, CFG.image_dim))
    assert mask.all() and f.shape == (1, 8, CFG.image_dim)


def test_index_embedding_tells_identical_references_apart():
    torch.manual_seed(0)
    emb = PersonalizationEmbedder(CFG)
    cond = known_cond()
    cond.ref_tokens[:, 1] = cond.ref_tokens[:, 0]
    cond.word_index[:, 1] = cond.word_index[:, 0]
    f, _ = emb(cond)
    assert not torch.allclose(f[0, :4], f[0, 4:])
    assert torch.allclose(f[0, :4] - emb.index[0], f[0, 4:] - emb.index[1], atol=1e-5)


def test_padded_slots_and_padded_text_tokens_change_nothing():
    torch.manual_seed(0)
    emb = PersonalizationEmbedder(CFG)
    cond = known_cond()
    f, _ = emb(cond)
    padded = Conditioning(
        text=torch.cat([cond.text, torch.randn(1, 4, CFG.text_dim)], 1),
        text_mask=torch.cat([cond.text_mask, torch.zeros(1, 4, dtype=torch.bool)], 1),
        ref_tokens=torch.cat([cond.ref_tokens, torch.randn(1, 1, 4, CFG.image_dim)], 1),
        ref_mask=torch.tensor([[True, True, False]]),
        word_index=torch.cat([cond.word_index, torch.tensor([[[8, 9, 10]]])], 1),
    )
    f_pad, mask = emb(padded)
    assert torch.allclose(f_pad[:, :8], f)
    assert torch.all(f_pad[:, 8:] == 0) and not mask[:, 8:].any()


def test_binding_none_ignores_the_words():
    torch.manual_seed(0)
    emb = PersonalizationEmbedder(dit_config("dit-tiny", text_dim=3, image_dim=5, binding="none"))
    cond = known_cond()
    other = known_cond()
    other.text = torch.randn_like(other.text)
    assert torch.equal(emb(cond)[0], emb(other)[0])
    assert emb.bind(cond).shape[-1] == 5


def test_too_many_references_fail_clearly():
    emb = PersonalizationEmbedder(CFG)
    cond = known_cond()
    many = Conditioning(cond.text, cond.text_mask, cond.ref_tokens.repeat(1, 3, 1, 1),
                        torch.ones(1, 6, dtype=torch.bool), cond.word_index.repeat(1, 3, 1))
    with pytest.raises(ValueError, match="max_refs=4"):
        emb(many)
