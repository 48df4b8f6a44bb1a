"""Budgets that cannot be scheduled fail with a clear EkyaError."""

import pytest

from ekya.errors import EkyaError
from ekya.plans.budget import budget_from_config, make_budget
from ekya.plans.curves import InferenceCurve, TrainThroughput
from ekya.plans.schedulers.thief import ThiefScheduler
from ekya.plans.types import Budget

from helpers.plans import stream
from helpers.windows import configured_window


@pytest.mark.parametrize("kw,key", [({"accelerators": 0}, "accelerators"), ({"delta": 0.0}, "delta"),
                                    ({"delta": -0.1}, "delta"), ({"delta": 1.5}, "delta"),
                                    ({"window": 0.0}, "window"), ({"label_delay": -1.0}, "label_delay"),
                                    ({"throughput": "cubic"}, "throughput")])
def test_infeasible_budget_is_a_clear_error(kw, key):
    args = {"accelerators": 1, "window": 100.0, "delta": 0.1}
    args.update(kw)
    with pytest.raises(EkyaError, match=key):
        make_budget(**args)


def test_scheduler_rejects_a_hand_built_bad_budget():
    bad = Budget(0, 100.0, 0.1, 0.0, InferenceCurve(), TrainThroughput())
    with pytest.raises(EkyaError, match="accelerators"):
        ThiefScheduler().plan([stream("a", 0.5, ("c", 0.8, 10.0))], bad)


CLUSTER = {"accelerators": 2, "delta": 0.25, "throughput": "linear", "capacity": 1.0, "inference": {"max_share": 0.5}}


def test_cluster_config_keys():
    b = budget_from_config(CLUSTER, configured_window(seconds=120.0, label_delay=2.0))
    assert (b.accelerators, b.delta, b.window, b.label_delay) == (2, 0.25, 120.0, 2.0)
    assert b.infer_scale(0.25) == pytest.approx(0.78)
    with pytest.raises(EkyaError, match="unknown key"):
        budget_from_config({**CLUSTER, "gpus": 2}, configured_window())


@pytest.mark.parametrize("key", ["accelerators", "delta", "throughput", "capacity", "inference"])
def test_a_cluster_key_has_no_second_default_in_python(key):
    """The YAML (conf/cluster/default.yaml) is each key's one owner: a profile without one is refused, not filled."""
    with pytest.raises(EkyaError, match=rf"cluster: missing key\(s\) \['{key}'\]"):
        budget_from_config({k: v for k, v in CLUSTER.items() if k != key}, configured_window())
