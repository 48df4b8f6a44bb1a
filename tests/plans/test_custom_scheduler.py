"""A user adds a scheduler with one class and one YAML, composed by Hydra's instantiate."""

import sys
import textwrap
import types

from hydra.utils import instantiate
from omegaconf import OmegaConf

from ekya.plans.budget import make_budget
from ekya.plans.simulate import play_window
from conftest import stream

CODE = '''
from ekya.plans.scheduler import Scheduler
from ekya.plans.types import Plan, StreamPlan
class HalfHalf(Scheduler):
    name = "halfhalf"
    def plan(self, profiles, budget):
        return Plan(tuple(StreamPlan(p.stream, p.configs[0].config, 0.5, 0.5, 0, 0) for p in profiles))
'''


def test_five_line_scheduler_via_yaml(tmp_path):
    mod = types.ModuleType("my_sched")
    exec(CODE, mod.__dict__)
    sys.modules["my_sched"] = mod
    try:
        (tmp_path / "halfhalf.yaml").write_text(textwrap.dedent("""
            _target_: my_sched.HalfHalf
        """))
        sch = instantiate(OmegaConf.load(tmp_path / "halfhalf.yaml"))
        b = make_budget(1, 100.0, 0.1, throughput="linear")
        truth = [stream("a", 0.5, ("c", 0.9, 10.0))]
        out = play_window(sch.plan(truth, b), truth, b, sch)
        assert out.streams["a"].completion_time == 20.0  # 10 GPU-s at half a GPU
        assert out.accuracy == (0.5 * 20 + 0.9 * 80) / 100
    finally:
        del sys.modules["my_sched"]


def test_shipped_yamls_instantiate():
    from pathlib import Path

    conf = Path(__file__).resolve().parents[2] / "conf" / "scheduler"
    for name in ("noretrain", "fair", "uniform", "thief", "optimal"):
        sch = instantiate(OmegaConf.load(conf / f"{name}.yaml"))
        assert sch.name == name
