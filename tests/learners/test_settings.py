"""learner.replay, learner.lwf and learner.icarl: checked when the learner is built, with one exact message each."""

from __future__ import annotations

import re

import pytest
from hydra.utils import get_class, instantiate

from ekya.errors import EkyaError
from ekya.hydra_compose import compose_config
from ekya.learners import FinetuneLearner, ICaRLLearner
from ekya.learners.settings import ICaRLSettings, LwfSettings, ReplaySettings

#: (learner key, its mapping, the whole message): the texts users have seen, kept word for word
BAD = [
    ("replay", {"buffer": "fifo"},
     "learner.replay.buffer='fifo': choose one of ['none', 'reservoir', 'class_balanced']"),
    ("replay", {"size": 3}, "learner.replay: unknown key(s) ['size']; it takes buffer, memory and ratio"),
    ("replay", {"memory": "lots"}, "learner.replay: memory='lots' must be an integer and ratio=0.5 a number"),
    ("replay", {"memory": 0}, "learner.replay.memory=0: must be at least 1 sample"),
    ("replay", {"ratio": 1.0},
     "learner.replay.ratio=1.0: the buffer's share of each batch must be in (0, 1); 0.5 mixes 1:1"),
    ("lwf", {"weight": -1}, "learner.lwf.weight=-1.0: must be >= 0 (0 turns distillation off)"),
    ("lwf", {"weight": float("inf")}, "learner.lwf.weight=inf: must be >= 0 (0 turns distillation off)"),
    ("lwf", {"temperature": 0}, "learner.lwf.temperature=0.0: must be > 0"),
    ("lwf", {"temperature": "hot"}, "learner.lwf: weight=0.0 and temperature='hot' must be numbers"),
    ("lwf", {"lambda": 1}, "learner.lwf: unknown key(s) ['lambda']; it takes weight and temperature"),
    ("icarl", {"loss": "mse"}, "learner.icarl.loss='mse': choose one of ['ce_kd', 'bce', 'bce_adaptive']"),
    ("icarl", {"memory": 0}, "learner.icarl.memory=0: the exemplar budget must be at least 1 sample"),
    ("icarl", {"kd_weight": -0.5}, "learner.icarl.kd_weight=-0.5: must be >= 0"),
    ("icarl", {"temperature": 0.0}, "learner.icarl.temperature=0.0: must be > 0"),
    ("icarl", {"memory": "x", "loss": "bce"},
     ("learner.icarl: memory must be an integer and kd_weight, temperature numbers; "
      "got {'memory': 'x', 'loss': 'bce', 'kd_weight': 1.0, 'temperature': 2.0}")),
    ("icarl", {"herding": True},
     "learner.icarl: unknown key(s) ['herding']; it takes ['kd_weight', 'loss', 'memory', 'temperature']"),
]


@pytest.mark.parametrize(("key", "raw", "message"), BAD, ids=[f"{key}-{i}" for i, (key, _, _) in enumerate(BAD)])
def test_a_bad_setting_fails_when_the_learner_is_built_with_one_exact_message(key, raw, message) -> None:
    with pytest.raises(EkyaError, match=f"^{re.escape(message)}$"):
        if key == "icarl":
            ICaRLLearner(icarl=raw, accelerator="cpu")
        else:
            FinetuneLearner(accelerator="cpu", **{key: raw})


def test_icarl_refuses_the_fine_tuners_own_memory_and_distillation() -> None:
    for kwargs in ({"replay": {"buffer": "reservoir"}}, {"lwf": {"weight": 0.5}}):
        with pytest.raises(EkyaError, match=r"^learner=icarl: learner.replay.buffer must be none and learner.lwf"):
            ICaRLLearner(accelerator="cpu", **kwargs)


def test_settings_take_yaml_strings_and_numbers_as_their_types() -> None:
    assert ReplaySettings.of({"buffer": "reservoir", "memory": "30", "ratio": "0.25"}) == ReplaySettings("reservoir",
                                                                                                          30, 0.25)
    assert ReplaySettings.of(None) == ReplaySettings() and not ReplaySettings().on
    assert LwfSettings.of({"weight": 1}).weight == 1.0 and LwfSettings.of({"weight": 1}).on
    assert ICaRLSettings.of({"memory": 50.0, "kd_weight": "0"}) == ICaRLSettings(50, "ce_kd", 0.0, 2.0)
    learner = FinetuneLearner(accelerator="cpu", replay={"buffer": "class_balanced"}, lwf={"weight": 1.0})
    assert [type(p).__name__ for p in learner.parts] == ["Replay", "Lwf"]  # replay first: LwF scores its memory too
    assert FinetuneLearner(accelerator="cpu").parts == []


@pytest.mark.parametrize("group", ["finetune", "icarl"])
def test_a_learner_built_from_its_python_defaults_is_the_one_its_yaml_builds(group) -> None:
    """conf/learner/<group>.yaml owns every knob's default; the signature's defaults a plug-in author reads agree."""
    cfg = compose_config([f"learner={group}"]).learner
    from_yaml, from_python = vars(instantiate(cfg)), vars(get_class(cfg._target_)())
    assert from_yaml.keys() == from_python.keys()
    assert {k: (v, from_python[k]) for k, v in from_yaml.items() if v != from_python[k]} == {}
