"""The DiT: shapes, 3D RoPE, windowed attention, masking, dropout masks, self-conditioning."""
import pytest
import torch

from model.config import DIT_CONFIGS, dit_config
from model.dit import DiT, Rope3D, SelfAttention, apply_rope, rope_axis_dims, window_mask
from model.personalization import Conditioning

TINY = DIT_CONFIGS["dit-tiny"]


@pytest.fixture(scope="module")
def model(randomize):
    return randomize(DiT(TINY)).eval()


@pytest.mark.parametrize("latent", [(1, 2, 2), (3, 4, 6), (5, 8, 4), (2, 6, 10)])
def test_forward_shapes(model, latent, make_cond):
    x = torch.randn(2, TINY.in_channels, *latent)
    v = model(x, torch.rand(2), make_cond())
    assert v.shape == x.shape
    assert torch.isfinite(v).all()


def test_odd_latent_size_is_rejected(model, make_cond):
    with pytest.raises(ValueError, match="patch size"):
        model(torch.randn(1, TINY.in_channels, 1, 3, 4), torch.rand(1), make_cond(batch=1))


def test_rope_is_relative():
    """q·k after RoPE depends on position differences only: shifting all positions keeps scores."""
    g = torch.Generator().manual_seed(0)
    head_dim = 24
    rope = Rope3D(head_dim, 10000.0)
    q, k = torch.randn(2, 3, 10, head_dim, generator=g), torch.randn(2, 3, 10, head_dim, generator=g)
    pos = torch.randint(0, 8, (10, 3), generator=g).float()
    scores = lambda p: apply_rope(q, rope.angles(p)) @ apply_rope(k, rope.angles(p)).transpose(-1, -2)
    shifted = pos + torch.tensor([3.0, 5.0, 7.0])
    assert torch.allclose(scores(pos), scores(shifted), atol=1e-4)
    # ...and it is not the identity: moving one token changes its scores.
    moved = pos.clone()
    moved[0] += torch.tensor([0.0, 2.0, 0.0])
    assert not torch.allclose(scores(pos), scores(moved), atol=1e-3)


def test_rope_splits_head_over_three_axes():
    assert sum(rope_axis_dims(32)) == 32
    assert all(d % 2 == 0 and d > 0 for d in rope_axis_dims(32))


def test_window_attention_is_local():
    torch.manual_seed(0)
    attn = SelfAttention(16, 2)
    n, window = 12, 4
    x = torch.randn(1, n, 16)
    angles = Rope3D(8, 10000.0)((1, 1, n), "cpu")
    mask = window_mask(n, window, "cpu")
    far, near = x.clone(), x.clone()
    far[0, 9] += 5.0  # |9 - 0| > window / 2
    near[0, 2] += 5.0  # |2 - 0| <= window / 2
    out = attn(x, angles, mask)
    assert torch.allclose(attn(far, angles, mask)[0, 0], out[0, 0], atol=1e-6)
    assert not torch.allclose(attn(near, angles, mask)[0, 0], out[0, 0], atol=1e-4)
    assert not torch.allclose(attn(far, angles, None)[0, 0], out[0, 0], atol=1e-4)
    assert window_mask(n, 6144, "cpu") is None  # a window wider than the clip is full attention


def test_self_conditioning_changes_output(model, make_cond):
    x = torch.randn(1, TINY.in_channels, 2, 4, 4)
    cond, t = make_cond(batch=1), torch.tensor([0.7])
    v0 = model(x, t, cond, self_cond=None)
    assert torch.equal(v0, model(x, t, cond, self_cond=torch.zeros_like(x)))
    assert not torch.allclose(v0, model(x, t, cond, self_cond=torch.randn_like(x)), atol=1e-4)


def test_padded_text_tokens_and_slots_change_nothing(model, make_cond):
    x, t = torch.randn(1, TINY.in_channels, 2, 4, 4), torch.tensor([0.4])
    cond = make_cond(batch=1, refs=2, text_len=6)
    base = model(x, t, cond)
    padded = make_cond(batch=1, refs=3, text_len=9, seed=7)
    padded.text[:, :6], padded.text_mask[:, 6:] = cond.text, False
    padded.ref_tokens[:, :2], padded.ref_mask[:, 2] = cond.ref_tokens, False
    padded.word_index[:, :2] = cond.word_index
    assert torch.allclose(model(x, t, padded), base, atol=1e-5)


def test_keep_masks_drop_text_and_all_of_f(model, make_cond):
    x, t = torch.randn(2, TINY.in_channels, 2, 4, 4), torch.tensor([0.5, 0.5])
    a, b = make_cond(seed=1), make_cond(seed=2)
    zero, one = torch.zeros(2), torch.ones(2)
    # Image dropped: the references (tokens and words) no longer matter.
    b_words = make_cond(seed=1)
    b_words.ref_tokens, b_words.word_index = b.ref_tokens, b.word_index
    assert torch.allclose(model(x, t, a, one, zero), model(x, t, b_words, one, zero), atol=1e-6)
    assert not torch.allclose(model(x, t, a, one, one), model(x, t, b_words, one, one), atol=1e-4)
    # Both dropped: nothing of the condition matters.
    assert torch.allclose(model(x, t, a, zero, zero), model(x, t, b, zero, zero), atol=1e-6)
    # Per sample: dropping sample 0's image leaves sample 1 untouched.
    mixed = model(x, t, a, one, torch.tensor([0.0, 1.0]))
    assert torch.allclose(mixed[1], model(x, t, a, one, one)[1], atol=1e-6)


def test_no_references_at_all_is_finite(model, make_cond):
    cond = make_cond(batch=1)
    cond.ref_mask[:] = False
    v = model(torch.randn(1, TINY.in_channels, 1, 2, 2), torch.tensor([0.3]), cond)
    assert torch.isfinite(v).all()
    # A prompt without any reference image behaves like one whose slots are all padding.
    empty = Conditioning(cond.text, cond.text_mask, cond.ref_tokens[:, :0], cond.ref_mask[:, :0],
                         cond.word_index[:, :0])
    assert torch.allclose(model(torch.zeros(1, TINY.in_channels, 1, 2, 2), torch.tensor([0.3]), empty),
                          model(torch.zeros(1, TINY.in_channels, 1, 2, 2), torch.tensor([0.3]), cond))


def test_windowed_model_matches_full_when_window_covers_clip(make_cond, randomize):
    torch.manual_seed(0)
    full = randomize(DiT(dit_config("dit-tiny", window_size=None)))
    windowed = DiT(dit_config("dit-tiny", window_size=4))
    windowed.load_state_dict(full.state_dict())
    x, cond, t = torch.randn(1, TINY.in_channels, 1, 2, 2), make_cond(batch=1), torch.tensor([0.5])
    assert torch.allclose(full(x, t, cond), windowed(x, t, cond), atol=1e-6)  # 1 token
    x = torch.randn(1, TINY.in_channels, 3, 4, 4)  # 12 tokens > window
    assert not torch.allclose(full(x, t, cond), windowed(x, t, cond), atol=1e-4)


def test_dropped_text_leaves_no_trace_in_f(model, make_cond):
    """keep_text=0, keep_image=1: only the prompt differs, so the output must not change (the
    word tokens of f come from the prompt, and a dropped prompt is zeros)."""
    x, t = torch.randn(2, TINY.in_channels, 2, 4, 4), torch.tensor([0.5, 0.5])
    a, b = make_cond(seed=1), make_cond(seed=1)
    b.text = make_cond(seed=3).text  # same references and word positions, another prompt
    zero, one = torch.zeros(2), torch.ones(2)
    assert torch.equal(model(x, t, a, zero, one), model(x, t, b, zero, one))
    assert not torch.allclose(model(x, t, a, one, one), model(x, t, b, one, one), atol=1e-4)


def test_reference_path_gets_gradient_with_the_backbone_frozen(make_cond):
    """Stage II (paper B.2) freezes the backbone, adaLN included: every reference-path
    parameter (the sublayer's own modulation, its attention, f, its projection) still gets a
    gradient from a freshly initialised model, and none flows anywhere else."""
    from model.dit import is_reference_path

    torch.manual_seed(0)
    model = DiT(TINY)
    with torch.no_grad():  # a stage-I-trained backbone: nonzero adaLN and output layer
        for name, p in model.named_parameters():
            if not is_reference_path(name) and (".ada." in name or name.startswith("final.")):
                p.normal_(std=0.1)
    for name, p in model.named_parameters():
        p.requires_grad_(is_reference_path(name))
    x = torch.randn(2, TINY.in_channels, 2, 4, 4)
    model(x, torch.tensor([0.3, 0.7]), make_cond()).pow(2).mean().backward()
    ref = {n: p.grad for n, p in model.named_parameters() if is_reference_path(n)}
    assert {n.split(".")[2] for n in ref if n.startswith("blocks.")} == {"ref_attn", "ref_ada"}
    assert all(g is not None and g.abs().sum() > 0 for g in ref.values()), \
        [n for n, g in ref.items() if g is None or g.abs().sum() == 0]
    assert all(p.grad is None for n, p in model.named_parameters() if not is_reference_path(n))
