import numpy as np
import pytest

from curation.flow_stats import flow_magnitude, top_fraction_mean


def test_top_fraction_mean_takes_the_largest_share():
    values = np.arange(100, dtype=float)  # top 5% = 95..99
    assert top_fraction_mean(values) == pytest.approx(97.0)
    assert top_fraction_mean(values, fraction=1.0) == pytest.approx(49.5)


def test_top_fraction_mean_small_mover_registers():
    field = np.zeros((100, 100))
    field[:10, :10] = 4.0  # a mover on 1% of the frame
    assert top_fraction_mean(field) == pytest.approx(4.0 * 100 / 500)
    assert top_fraction_mean(np.array([3.0])) == 3.0


def test_flow_magnitude_and_errors():
    flow = np.zeros((2, 2, 2))
    flow[..., 0], flow[..., 1] = 3.0, 4.0
    assert np.allclose(flow_magnitude(flow), 5.0)
    with pytest.raises(ValueError):
        top_fraction_mean(np.array([]))
    with pytest.raises(ValueError):
        top_fraction_mean(np.ones(3), fraction=0)
