"""Euler sampler with dual classifier-free guidance in an interval (paper B.3)."""
from types import SimpleNamespace

import pytest
import torch

from model.config import SamplerConfig
from model.rectified_flow import RectifiedFlow, time_grid
from model.sampler import (
    branch_keeps, combine, dynamic_threshold, euler_sample, in_interval, naive_guided_sample,
)


class StandIn(torch.nn.Module):
    """v = 0.1 x + A + B * keep_text + C * keep_text * keep_image: known per-branch velocities."""

    def __init__(self, shape, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.a, self.b, self.c = (torch.randn(shape, generator=g) for _ in range(3))
        self.calls = []
        self.cfg = SimpleNamespace(patch_size=(1, 1, 1))

    def forward(self, x, t, cond, keep_text=None, keep_image=None, self_cond=None):
        n = x.shape[0]
        kt = torch.ones(n) if keep_text is None else keep_text
        ki = torch.ones(n) if keep_image is None else keep_image
        self.calls.append(dict(batch=n, t=float(t[0]), self_cond=self_cond.clone(), kt=kt, ki=ki))
        kt, ki = kt.view(-1, 1, 1, 1, 1), ki.view(-1, 1, 1, 1, 1)
        a, b, c = (p.repeat(n // p.shape[0], 1, 1, 1, 1) for p in (self.a, self.b, self.c))
        return 0.1 * x + a + b * kt + c * kt * ki


class FakeCond:
    """The sampler only stacks the condition; the stand-in reads the keep masks."""

    def repeat(self, n):
        return self


def branch(model, x, t, kt, ki):
    b = x.shape[0]
    return model.forward(x, torch.full((b,), t), None, torch.full((b,), kt), torch.full((b,), ki),
                         self_cond=torch.zeros_like(x))


SHAPE = (2, 3, 1, 2, 2)


def exact_field(target):
    """The velocity field of a single data point; guided batches stack it per branch."""

    def velocity(x, t, *args, **kwargs):
        stacked = target.repeat(x.shape[0] // target.shape[0], 1, 1, 1, 1)
        return (x - stacked) / t.view(-1, 1, 1, 1, 1)

    return velocity


@pytest.mark.parametrize("steps", [1, 2, 7, 32])
@pytest.mark.parametrize("shift", [0.5, 1.0, 3.0])
def test_euler_returns_the_single_data_point(steps, shift):
    """With the exact velocity field of one point, (x_t - x*) / t, Euler lands on x*."""
    target = torch.randn(SHAPE, dtype=torch.float64)
    exact = exact_field(target)
    noise = torch.randn(SHAPE, dtype=torch.float64)
    out = euler_sample(exact, noise, FakeCond(), SamplerConfig(steps=steps), shift=shift)
    assert torch.allclose(out, target, atol=1e-9)


def test_guided_step_equals_dual_cfg_formula():
    model, x, t = StandIn(SHAPE), torch.randn(SHAPE), 0.3
    cfg = SamplerConfig(steps=1, interval=(0.0, 1.0))
    v00, v10, v11 = (branch(model, x, t, kt, ki) for kt, ki in ((0, 0), (1, 0), (1, 1)))
    expected = v00 + 8.0 * (v10 - v00) + 2.5 * (v11 - v10)
    assert torch.allclose(combine(v00, v10, v11, cfg.text_scale, cfg.image_scale), expected)
    # One full Euler step from t = 1 with guidance on everywhere.
    x1 = torch.randn(SHAPE)
    out = euler_sample(model, x1, FakeCond(), cfg, shift=1.0)
    v00, v10, v11 = (branch(model, x1, 1.0, kt, ki) for kt, ki in ((0, 0), (1, 0), (1, 1)))
    assert torch.allclose(out, x1 - (v00 + 8.0 * (v10 - v00) + 2.5 * (v11 - v10)), atol=1e-5)


def reference_run(model, x, steps, scales=(8.0, 2.5), interval=(0.15, 0.5)):
    """The sampler written out step by step from the formula."""
    times = time_grid(steps, 1.0).tolist()
    for t, t_next in zip(times[:-1], times[1:]):
        v11 = branch(model, x, t, 1, 1)
        if interval[0] <= t <= interval[1]:
            v00, v10 = branch(model, x, t, 0, 0), branch(model, x, t, 1, 0)
            v = v00 + scales[0] * (v10 - v00) + scales[1] * (v11 - v10)
        else:
            v = v11
        x = x + (t_next - t) * v
    return x


def test_guidance_only_inside_the_interval_and_one_call_per_step():
    model, noise, steps = StandIn(SHAPE), torch.randn(SHAPE), 10
    out = euler_sample(model, noise, FakeCond(), SamplerConfig(steps=steps), shift=1.0)
    calls = model.calls
    assert len(calls) == steps  # exactly one (batched) model call per step
    guided = [c["t"] for c in calls if c["batch"] == 3 * SHAPE[0]]
    plain = [c["t"] for c in calls if c["batch"] == SHAPE[0]]
    assert guided == pytest.approx([0.5, 0.4, 0.3, 0.2]) and len(plain) == 6
    assert all(c["kt"].all() and c["ki"].all() for c in calls if c["batch"] == SHAPE[0])
    assert torch.allclose(out, reference_run(StandIn(SHAPE), noise, steps), atol=1e-5)
    # With guidance scales of 1 the formula reduces to the conditional branch.
    plain_cfg = SamplerConfig(steps=steps, text_scale=1.0, image_scale=1.0, interval=(0.0, 1.0))
    assert torch.allclose(euler_sample(StandIn(SHAPE), noise, FakeCond(), plain_cfg),
                          reference_run(StandIn(SHAPE), noise, steps, interval=(2.0, 2.0)), atol=1e-5)


def test_interval_is_closed():
    assert in_interval(0.5, (0.15, 0.5)) and in_interval(0.15, (0.15, 0.5))
    assert not in_interval(0.1499, (0.15, 0.5)) and not in_interval(0.5001, (0.15, 0.5))


def test_branches_are_stacked_none_text_full():
    kt, ki = branch_keeps(2, "cpu")
    assert kt.tolist() == [0, 0, 1, 1, 1, 1] and ki.tolist() == [0, 0, 0, 0, 1, 1]


def test_each_branch_keeps_its_own_self_conditioning():
    model, noise = StandIn(SHAPE), torch.randn(SHAPE)
    euler_sample(model, noise, FakeCond(), SamplerConfig(steps=10), shift=1.0)
    b = SHAPE[0]
    first, second = [c for c in model.calls if c["batch"] == 3 * b][:2]
    assert torch.all(first["self_cond"][: 2 * b] == 0)  # no estimate yet for the uncond branches
    # The conditional branch carries its estimate over from the unguided steps.
    assert first["self_cond"][2 * b :].abs().sum() > 0
    # At the next guided step each branch sees x - t v of its own previous prediction.
    x_prev = second["self_cond"]  # compare branch estimates pairwise: all three differ
    none, text, full = x_prev.chunk(3)
    assert not torch.allclose(none, text) and not torch.allclose(text, full)


def test_naive_sampler_matches_batched_when_guidance_is_everywhere():
    noise, cfg = torch.randn(SHAPE), SamplerConfig(steps=6, interval=(0.0, 1.0))
    batched, naive = StandIn(SHAPE), StandIn(SHAPE)
    a = euler_sample(batched, noise, FakeCond(), cfg)
    b = naive_guided_sample(naive, noise, FakeCond(), cfg)
    assert torch.allclose(a, b, atol=1e-5)
    assert len(batched.calls) == 6 and len(naive.calls) == 18


def test_dynamic_threshold_bounds_the_clean_prediction():
    x, t = torch.randn(2, 4, 2, 8, 8), 0.4
    v = torch.randn_like(x)
    v[0] -= 20.0  # sample 0 predicts an oversaturated x0 = x - t v
    out = dynamic_threshold(x, t, v, percentile=0.995, floor=3.0)
    x0 = x - t * out
    assert x0[0].abs().max() <= 3.0 + 1e-5
    # A sample whose x0 already lies within the floor is left as it is.
    calm = dynamic_threshold(x[1:], t, (x[1:] - 0.5 * torch.tanh(x[1:])) / t, 0.995, 3.0)
    assert torch.allclose(calm, (x[1:] - 0.5 * torch.tanh(x[1:])) / t, atol=1e-5)


def test_rectified_flow_sample_uses_the_resolution_shift():
    target = torch.randn(SHAPE, dtype=torch.float64)
    field, seen = exact_field(target), []

    def exact(x, t, *args, **kwargs):
        seen.append(float(t[0]))
        return field(x, t)

    exact.cfg = SimpleNamespace(patch_size=(1, 1, 1))
    rf = RectifiedFlow()
    out = rf.sample(exact, torch.randn(SHAPE, dtype=torch.float64), FakeCond(), SamplerConfig(steps=2))
    shift = rf.shift_for(SHAPE, (1, 1, 1))
    assert seen[1] == pytest.approx(shift * 0.5 / (1 + (shift - 1) * 0.5))
    assert torch.allclose(out, target, atol=1e-9)


@pytest.mark.parametrize("reading,expected", [
    ("noise_at_1", [0.5, 0.4, 0.3, 0.2]),  # model/README: shifted t, t = 1 noise
    ("data_at_1", [0.8, 0.7, 0.6, 0.5]),  # the cited work's count: 1 - t in [0.15, 0.5]
])
def test_guidance_interval_reading_is_a_setting(reading, expected):
    model, noise = StandIn(SHAPE), torch.randn(SHAPE)
    euler_sample(model, noise, FakeCond(), SamplerConfig(steps=10, interval_reading=reading), shift=1.0)
    guided = [c["t"] for c in model.calls if c["batch"] == 3 * SHAPE[0]]
    assert guided == pytest.approx(expected)


def test_unknown_interval_reading_is_rejected():
    with pytest.raises(ValueError, match="interval_reading"):
        SamplerConfig(interval_reading="sigma")
