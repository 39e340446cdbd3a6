"""Rectified flow: time convention and shift, timestep sampling, dropout rates, targets."""
import math
from types import SimpleNamespace

import pytest
import torch

from model.config import FlowConfig
from model.rectified_flow import RectifiedFlow, resolution_shift, time_grid, time_shift


def test_time_shift_closed_form():
    assert time_shift(0.5, 3.0) == pytest.approx(0.75)
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    for s in (0.5, 1.0, 3.0):
        shifted = time_shift(t, s)
        assert torch.allclose(shifted, s * t / (1 + (s - 1) * t))
        assert shifted[0] == 0 and shifted[-1] == 1 and torch.all(shifted.diff() > 0)
    assert torch.equal(time_shift(t, 1.0), t)


def test_resolution_dependent_shift():
    rf = RectifiedFlow(FlowConfig(base_tokens=432))
    assert rf.shift_for((32, 3, 18, 32), (1, 2, 2)) == pytest.approx(1.0)  # 17 frames, 512x288
    assert rf.shift_for((32, 3, 36, 64), (1, 2, 2)) == pytest.approx(2.0)  # 4x the tokens
    assert resolution_shift(4 * 432, 432) == 2.0
    assert RectifiedFlow(FlowConfig(shift=3.0)).shift_for((32, 3, 36, 64), (1, 2, 2)) == 3.0


def test_time_grid_runs_from_noise_to_data():
    grid = time_grid(4, 3.0)
    assert grid[0] == 1 and grid[-1] == 0 and len(grid) == 5
    assert grid[2] == pytest.approx(0.75)


def test_interpolation_convention():
    x0, noise = torch.randn(2, 3, 1, 2, 2), torch.randn(2, 3, 1, 2, 2)
    assert torch.equal(RectifiedFlow.interpolate(x0, noise, torch.zeros(2)), x0)  # t = 0 is data
    assert torch.equal(RectifiedFlow.interpolate(x0, noise, torch.ones(2)), noise)  # t = 1 noise


@pytest.mark.parametrize("sampling", ["uniform", "logit_normal"])
def test_timestep_sampling(sampling):
    rf = RectifiedFlow(FlowConfig(timestep_sampling=sampling))
    g = torch.Generator().manual_seed(0)
    t = rf.sample_t(20000, generator=g)
    assert 0 < t.min() and t.max() < 1
    assert t.median() == pytest.approx(0.5, abs=0.02)
    tails = ((t < 0.1) | (t > 0.9)).float().mean().item()
    assert tails == pytest.approx(0.2 if sampling == "uniform" else 0.028, abs=0.015)
    shifted = rf.sample_t(20000, shift=3.0, generator=torch.Generator().manual_seed(0))
    assert shifted.median() == pytest.approx(0.75, abs=0.02)


def test_conditioning_dropout_rates_over_10000_draws():
    """Each condition is dropped with probability 0.1, independently (paper B.2).

    Tolerance: 5 binomial standard deviations, sqrt(0.1 * 0.9 / 10000) = 0.003 each.
    """
    n, tol = 10_000, 5 * math.sqrt(0.1 * 0.9 / 10_000)
    keep_text, keep_image = RectifiedFlow().drop_masks(n, generator=torch.Generator().manual_seed(0))
    assert set(keep_text.unique().tolist()) <= {0.0, 1.0}
    assert (1 - keep_text).mean().item() == pytest.approx(0.1, abs=tol)
    assert (1 - keep_image).mean().item() == pytest.approx(0.1, abs=tol)
    both = ((keep_text == 0) & (keep_image == 0)).float().mean().item()
    assert both == pytest.approx(0.01, abs=5 * math.sqrt(0.01 * 0.99 / n))
    other = RectifiedFlow(FlowConfig(drop_text=0.3, drop_image=0.0))
    kt, ki = other.drop_masks(n, generator=torch.Generator().manual_seed(1))
    assert (1 - kt).mean().item() == pytest.approx(0.3, abs=0.025) and ki.all()


class Oracle(torch.nn.Module):
    """Knows the clean sample, so it can return the exact velocity eps - x0 = (x_t - x0) / t."""

    def __init__(self, x0, self_conditioning=False):
        super().__init__()
        self.x0, self.calls = x0, []
        self.cfg = SimpleNamespace(patch_size=(1, 1, 1), self_conditioning=self_conditioning)

    def forward(self, x, t, cond, keep_text=None, keep_image=None, self_cond=None):
        self.calls.append(dict(keep_text=keep_text, keep_image=keep_image, self_cond=self_cond))
        return (x - self.x0) / t.view(-1, 1, 1, 1, 1)


def test_loss_is_zero_for_the_exact_velocity_and_one_for_zero():
    x0 = torch.randn(64, 2, 1, 2, 2)
    rf = RectifiedFlow(FlowConfig(shift=1.0))
    out = rf.training_losses(Oracle(x0), x0, cond=None, generator=torch.Generator().manual_seed(0))
    assert out["loss"].item() < 1e-8 and out["mse"].shape == (64,)
    zero = Oracle(x0)
    zero.forward = lambda x, t, *a, **k: torch.zeros_like(x)
    # With x0 = 0 the target is pure noise: unit variance.
    loss = rf.training_losses(zero, torch.zeros_like(x0), None, torch.Generator().manual_seed(0))["loss"]
    assert loss.item() == pytest.approx(1.0, abs=0.1)


def test_training_passes_dropout_and_self_conditioning_to_the_model():
    x0 = torch.randn(4000, 1, 1, 1, 1)
    model = Oracle(x0, self_conditioning=True)
    RectifiedFlow(FlowConfig(shift=1.0)).training_losses(model, x0, None, torch.Generator().manual_seed(0))
    first, second = model.calls  # a no-grad estimate, then the real pass fed with it
    assert first["self_cond"] is None
    used = (second["self_cond"].flatten(1).abs().sum(1) > 0).float().mean().item()
    assert used == pytest.approx(0.9, abs=0.03)  # paper Table 5
    assert (1 - second["keep_text"]).mean().item() == pytest.approx(0.1, abs=0.03)
    assert torch.equal(first["keep_image"], second["keep_image"])
    # The fed-back estimate is the model's x0 prediction (exact for the oracle).
    rows = second["self_cond"].flatten(1).abs().sum(1) > 0
    assert torch.allclose(second["self_cond"][rows], x0[rows], atol=1e-4)
