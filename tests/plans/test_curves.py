"""Share curves: the original's inference table and the MPS throughput measurements."""

import numpy as np
import pytest

from ekya.errors import EkyaError
from ekya.hydra_compose import CONF_DIR
from ekya.plans.curves import InferenceCurve, TrainThroughput


@pytest.mark.parametrize("share,expected", [(1.0, 1.0), (0.25, 1.0), (0.2, 0.945), (0.125, 0.78), (0.1, 0.71),
                                            (0.0625, 0.60), (0.05, 0.44), (0.025, 0.15), (0.0125, 0.04),
                                            (0.0124, 0.0), (0.0, 0.0)])
def test_inference_scale_matches_original_table(share, expected):
    c = InferenceCurve()
    assert c(share) == pytest.approx(expected, abs=1e-9)
    assert c(np.array([share]))[0] == pytest.approx(expected, abs=1e-9)


def test_inference_scale_vectorised_equals_scalar_and_is_monotone():
    c = InferenceCurve()
    s = np.linspace(0, 1, 401)
    v = c(s)
    assert np.allclose(v, [c(float(x)) for x in s])
    assert np.all(np.diff(v) >= -1e-12)


def test_inference_curve_is_configurable_per_camera():
    c = InferenceCurve(subsampling=(1, 2), relative_accuracy=(1.0, 0.5), max_share=1.0)
    assert c(0.5) == pytest.approx(0.5)
    assert c(0.75) == pytest.approx(1 - 0.5 * (1 / 0.75 - 1))
    assert c(0.4) == 0.0
    with pytest.raises(EkyaError):
        InferenceCurve(subsampling=(2, 1), relative_accuracy=(1.0, 0.5))


def test_the_lone_job_curve_is_the_measured_ratio_and_monotone():
    for t in (TrainThroughput(kind="original_mps"), TrainThroughput()):
        assert t.lone(0.1) == pytest.approx(5.46 / 15.19)
        assert t.lone(0.5) == pytest.approx(5.46 / 6.56)
        assert t.lone(0.05) == pytest.approx(0.5 * 5.46 / 15.19)
    t = TrainThroughput(kind="original_mps")
    assert t(0.1) == pytest.approx(5.46 / 15.19) and t(1.0) == pytest.approx(1.0) and t(0.0) == 0.0
    for t in (TrainThroughput(kind="original_mps"), TrainThroughput(), TrainThroughput(capacity=1.4)):
        s = np.linspace(0, 1, 101)
        v = t(s)
        assert np.all(np.diff(v) >= 0)
        assert np.allclose(v, [t(float(x)) for x in s])


def test_noisy_table_is_monotonised():
    t = TrainThroughput(shares=(0.5, 1.0), seconds_per_task=(5.0, 6.0))  # more share measured slower
    assert t(1.0) >= t(0.5)


def test_linear_throughput():
    t = TrainThroughput(kind="linear")
    assert t(0.3) == pytest.approx(0.3)
    assert np.allclose(t(np.array([0.0, 0.5])), [0.0, 0.5])
    with pytest.raises(EkyaError):
        TrainThroughput(kind="quadratic")


def test_jobs_sharing_a_device_never_do_more_than_its_capacity():
    """The physical default: whatever the split, a device's jobs together do at most `capacity` lone-job units."""
    rng = np.random.default_rng(0)
    for capacity in (1.0, 1.3, 2.0):
        t = TrainThroughput(capacity=capacity)
        for _ in range(200):
            cuts = np.sort(rng.uniform(0, 1, rng.integers(1, 12)))
            shares = np.diff(np.concatenate([[0.0], cuts, [1.0]]))
            assert float(np.sum(t(shares))) <= capacity + 1e-9
            # and no job runs faster than it would alone at its share
            assert np.all(t(shares) <= np.array([t.lone(float(x)) for x in shares]) + 1e-12)
    # capacity 1 with the original's curve (lone(s) >= s everywhere) is linear, to the last bit: the robustness
    # matrix's linear cell reproduces its default cell exactly (docs/results/end-to-end.md)
    shares = np.concatenate([np.linspace(0, 1, 10001), rng.uniform(0, 1, 10000)])
    assert np.array_equal(TrainThroughput()(shares), TrainThroughput(kind="linear")(shares))
    assert all(TrainThroughput()(float(s)) == float(s) for s in shares[::97])
    # a larger capacity keeps the measured curve where a lone job cannot fill its slice
    t = TrainThroughput(capacity=2.0)
    assert t(0.1) == pytest.approx(0.2) and t(0.6) == pytest.approx(5.46 / 6.37)
    with pytest.raises(EkyaError, match="cluster.capacity"):
        TrainThroughput(capacity=0.0)


def test_the_original_curve_is_kept_under_its_own_name_and_is_not_conserving():
    """What conf/cluster/default.yaml states: credited independently, small slices add up to more than the device."""
    original, linear = TrainThroughput(kind="original_mps"), TrainThroughput(kind="linear")
    assert not original.conserving and TrainThroughput().conserving
    assert original(0.1) == pytest.approx(0.36, abs=0.005) and original(0.05) == pytest.approx(0.18, abs=0.005)
    assert 10 * original(0.1) == pytest.approx(3.6, abs=0.05)  # ten jobs at 0.1 do 3.6 devices' work
    assert 10 * linear(0.1) == pytest.approx(1.0)
    text = (CONF_DIR / "cluster" / "default.yaml").read_text()
    assert "throughput: mps\n" in text and "capacity: 1.0\n" in text and "NOT conserving" in text
