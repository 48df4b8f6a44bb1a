"""The Learner protocol: FinetuneLearner implements it, its defaults work for any learner, model states round-trip,
devices, no process-wide state."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from ekya.configspace import RetrainConfig
from ekya.errors import EkyaError
from ekya.learners import FinetuneLearner, Learner, load_checkpoint, save_checkpoint
from ekya.learners.base import TrainReport
from ekya.learners.model import EdgeModel
from ekya.streams.samples import StreamSet
from ekya.streams.windows import WindowCut, cut_windows

#: What a learner must supply; runtimes, benches and the micro-profiler call these and the defaults below.
PROTOCOL = {"base_model", "retrain", "hits", "predict", "forward_flops", "model_state", "load_model_state"}
#: Calls with a default on the protocol (``without_crops``: what the Ray runtime ships to its jobs).
DEFAULTS = {"evaluate", "params", "check_config", "new_model", "crops", "job_rows", "without_crops"}

CUDA = torch.cuda.is_available()


@pytest.fixture(scope="module")
def learner() -> FinetuneLearner:
    return FinetuneLearner(base_epochs=2, accelerator="cpu")


@pytest.fixture(scope="module")
def window(small_synthetic: StreamSet):
    cut = WindowCut(100.0, history_weight=-1.0, val_fraction=0.2, probe_fraction=0.0)
    return cut_windows(small_synthetic.camera("cam02"), 4, cut, seed=5)[2]


def test_finetune_learner_implements_every_abstract_method(learner) -> None:
    assert Learner.__abstractmethods__ == PROTOCOL
    assert all(callable(getattr(Learner, name)) for name in DEFAULTS)
    assert isinstance(learner, Learner) and not FinetuneLearner.__abstractmethods__
    for name in PROTOCOL:
        assert getattr(FinetuneLearner, name) is not getattr(Learner, name), name
    for name in ("evaluate", "params", "check_config", "crops", "without_crops"):  # shared by every learner
        assert getattr(FinetuneLearner, name) is getattr(Learner, name), name


class Minimal(Learner):
    """A learner that supplies only what the protocol requires: a model per camera that predicts class 0."""

    defaults = {"backbone": "resnet10_w16", "frozen": True, "hidden": 8, "epochs": 1, "data_fraction": 1.0,
                "batch_size": 8, "lr": 0.1, "optimizer": "adam", "momentum": 0.9, "weight_decay": 0.0}
    image_size = 16

    def base_model(self, stream_set, bootstrap, seed):
        return self.new_model(len(stream_set.classes), seed)

    def retrain(self, model, config, train_df, val_df, stream_set, seed):
        return model, TrainReport(epochs=self.params(config).epochs, samples_seen=0, train_flops=0.0)

    def hits(self, model, df, stream_set, teacher=False):
        keep = df["label"].to_numpy() >= 0
        return self.predict(model, df[keep], stream_set) == df["label"].to_numpy()[keep], keep

    def predict(self, model, df, stream_set):
        return np.zeros(len(df), dtype=np.int64)

    def forward_flops(self, model):
        return 1.0

    def model_state(self, model):
        return {"arch": model.describe(), "state_dict": model.state_dict()}

    def load_model_state(self, state):
        return EdgeModel(**state["arch"])


def test_a_learner_that_supplies_only_the_abstract_methods_gets_working_defaults(window, small_synthetic) -> None:
    mine = Minimal()
    job = mine.params(RetrainConfig("c", {"epochs": 3}))
    assert (job.epochs, job.hidden, job.frozen) == (3, 8, True)  # the config's own key, the rest from defaults
    with pytest.raises(EkyaError, match="configspace config 'c': lr=-1 must be > 0"):
        mine.check_config(RetrainConfig("c", {"lr": -1}))
    model = mine.new_model(6, seed=1)
    assert isinstance(model, EdgeModel) and (model.hidden, model.image_size, model.num_classes) == (8, 16, 6)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(),
                                                 mine.new_model(6, seed=1).state_dict().values()))
    assert mine.crops(small_synthetic) is mine.crops(small_synthetic)
    assert mine.crops(small_synthetic).images(window.test).shape == (len(window.test), 3, 16, 16)
    rows = mine.job_rows(model, window.train, window.val)  # the pool: a job of this learner reads nothing else
    assert list(rows.columns) == ["path", "x0", "y0", "x1", "y1"] and len(rows) == len(window.train) + len(window.val)
    assert 0 <= mine.evaluate(model, window.test, small_synthetic) <= 1


def test_a_learner_without_a_default_for_a_key_names_it() -> None:
    class Bare(Minimal):
        defaults = {k: v for k, v in Minimal.defaults.items() if k != "epochs"}

    with pytest.raises(EkyaError, match="configspace config 'c': epochs is not set and the learner has no default"):
        Bare().check_config(RetrainConfig("c", {}))
    Bare().check_config(RetrainConfig("c", {"epochs": 2}))


def test_a_shipped_learner_carries_no_decoded_crops_and_decodes_the_same(learner, window, small_synthetic) -> None:
    images = learner.crops(small_synthetic).images(window.test)
    shipped = learner.without_crops()
    assert type(shipped) is type(learner) and shipped.defaults == learner.defaults
    assert len(learner.crops(small_synthetic)) >= len(window.test)  # the driver keeps its own
    fresh = shipped.crops(small_synthetic)
    assert fresh is not learner.crops(small_synthetic) and len(fresh) == 0
    assert torch.equal(fresh.images(window.test), images)


def test_the_protocol_imports_without_torch() -> None:
    """Torch-free code (the micro-profiler, the planning core) may name the Learner type."""
    code = "import sys\nfrom ekya.learners.base import Learner, TrainReport\nprint('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def test_model_state_round_trip_gives_identical_logits(learner, window, small_synthetic) -> None:
    model, _ = learner.retrain(learner.new_model(len(small_synthetic.classes), seed=1),
                               RetrainConfig("e1", {"epochs": 1}), window.train, window.val, small_synthetic, seed=0)
    state = learner.model_state(model)
    assert set(state) == {"arch", "state_dict"} and state["arch"] == model.describe()
    assert all(isinstance(v, torch.Tensor) and v.device.type == "cpu" for v in state["state_dict"].values())
    loaded = learner.load_model_state(state)
    assert loaded is not model and type(loaded) is type(model)
    x = learner.crops(small_synthetic).images(window.test)
    with torch.no_grad():
        assert torch.equal(loaded.eval()(x), model.eval()(x))
    # the dict is a snapshot: changing the model afterwards leaves it alone
    before = state["state_dict"]["head.0.weight"].clone()
    with torch.no_grad():
        model.head[0].weight.add_(1.0)
    assert torch.equal(state["state_dict"]["head.0.weight"], before)


def test_loading_does_not_draw_on_the_global_rng(learner, small_synthetic) -> None:
    state = learner.model_state(learner.new_model(len(small_synthetic.classes), seed=2))
    torch.manual_seed(123)
    want = torch.rand(3)
    torch.manual_seed(123)
    learner.load_model_state(state)
    assert torch.equal(torch.rand(3), want)


def test_checkpoint_files_are_the_model_state_and_do_not_depend_on_the_path(learner, small_synthetic,
                                                                            tmp_path: Path) -> None:
    model = learner.new_model(len(small_synthetic.classes), seed=4)
    save_checkpoint(model, tmp_path / "a.pt")
    save_checkpoint(model, tmp_path / "sub" / "another_name.pt")
    assert (tmp_path / "a.pt").read_bytes() == (tmp_path / "sub" / "another_name.pt").read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.pt", "sub"]  # no temporary file left behind
    blob = torch.load(tmp_path / "a.pt", weights_only=True)
    assert blob["arch"] == learner.model_state(model)["arch"]
    # a file written the way earlier versions did (torch.save straight to the path) still loads
    torch.save({"arch": model.describe(), "state_dict": model.state_dict()}, tmp_path / "old.pt")
    old = load_checkpoint(tmp_path / "old.pt", len(small_synthetic.classes))
    assert all(torch.equal(a, b) for a, b in zip(old.state_dict().values(), model.state_dict().values()))
    with pytest.raises(EkyaError, match="predicts 6 classes, the dataset has 3"):
        load_checkpoint(tmp_path / "a.pt", 3)


def test_check_config_rejects_a_bad_config_by_name(learner) -> None:
    learner.check_config(RetrainConfig("fine", {"frozen": True, "epochs": 2}))
    for params, key in (({"epoch": 3}, r"unknown key\(s\) \['epoch'\]"), ({"lr": -1.0}, "lr=-1.0 must be > 0"),
                        ({"optimizer": "rmsprop"}, "optimizer='rmsprop'"),
                        ({"epochs": "many"}, "epochs='many' must be an integer"),
                        ({"lr": None}, "lr=None must be a number")):
        with pytest.raises(EkyaError, match=f"configspace config 'broken': {key}"):
            learner.check_config(RetrainConfig("broken", params))


def test_unknown_accelerator_and_eval_batch_size_name_the_key() -> None:
    with pytest.raises(EkyaError, match=r"learner.accelerator='tpu' is not known; "
                                        r"choose one of \['auto', 'cpu', 'cuda'\]"):
        FinetuneLearner(accelerator="tpu")
    with pytest.raises(EkyaError, match="learner.eval_batch_size=0"):
        FinetuneLearner(eval_batch_size=0)
    assert FinetuneLearner(accelerator="auto").device.type == ("cuda" if CUDA else "cpu")


@pytest.mark.skipif(CUDA, reason="this machine has a CUDA device")
def test_cuda_without_a_cuda_device_is_a_clear_error() -> None:
    with pytest.raises(EkyaError, match=r"learner.accelerator=cuda but torch sees no CUDA device; "
                                        r"set learner.accelerator=auto or learner.accelerator=cpu"):
        FinetuneLearner(accelerator="cuda")


@pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
def test_retraining_on_cuda_hands_back_a_cpu_model_at_the_same_cost(learner, window, small_synthetic) -> None:
    gpu = FinetuneLearner(base_epochs=2, accelerator="cuda")
    assert gpu.device.type == "cuda"
    model = learner.new_model(len(small_synthetic.classes), seed=0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    for frozen in (False, True):
        cfg = RetrainConfig("g", {"frozen": frozen, "epochs": 3, "lr": 0.002})
        new, report = gpu.retrain(model, cfg, window.train, window.val, small_synthetic, seed=1)
        _, cpu_report = learner.retrain(model, cfg, window.train, window.val, small_synthetic, seed=1)
        assert all(t.device.type == "cpu" for t in [*new.parameters(), *new.buffers()])
        assert report.train_flops == cpu_report.train_flops and len(report.val_acc) == 3
        assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # input untouched
        pred = gpu.predict(new, window.test, small_synthetic)
        on_cpu = learner.predict(new, window.test, small_synthetic)
        assert pred.shape == on_cpu.shape == (len(window.test),) and (pred == on_cpu).mean() > 0.9
        assert all(t.device.type == "cpu" for t in new.parameters())  # predict left the caller's model on the CPU
    base = gpu.base_model(small_synthetic, window, seed=3)
    assert next(base.parameters()).device.type == "cpu"


def test_a_job_leaves_process_state_alone(learner, window, small_synthetic) -> None:
    """Threads, deterministic algorithms, warning filters and Lightning's log levels are the process's own."""
    filters = list(warnings.filters)
    levels = {n: logging.getLogger(n).level for n in ("lightning.pytorch", "lightning.fabric", "lightning")}
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1)
    try:
        model = learner.new_model(len(small_synthetic.classes), seed=0)
        for frozen in (False, True):
            learner.retrain(model, RetrainConfig("p", {"frozen": frozen, "epochs": 1}), window.train, window.val,
                            small_synthetic, seed=0)
        learner.predict(model, window.test, small_synthetic)
        assert torch.get_num_threads() == 1
        assert torch.are_deterministic_algorithms_enabled() == deterministic
        assert list(warnings.filters) == filters
        assert {n: logging.getLogger(n).level for n in levels} == levels
    finally:
        torch.set_num_threads(threads)


def test_warnings_outside_lightning_still_reach_the_user(learner, window, small_synthetic, monkeypatch) -> None:
    """Only Lightning's own chatter is silenced during a fit; a warning from the model gets through."""
    model = learner.new_model(len(small_synthetic.classes), seed=0)
    forward = type(model.head).forward

    def noisy(self, x):
        warnings.warn("from the model", UserWarning, stacklevel=1)
        return forward(self, x)

    monkeypatch.setattr(type(model.head), "forward", noisy)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        learner.retrain(model, RetrainConfig("w", {"frozen": True, "epochs": 1}), window.train, window.val,
                        small_synthetic, seed=0)
    messages = [str(w.message) for w in seen]
    assert "from the model" in messages
    assert not [w for w in seen if w.filename.replace("\\", "/").split("/site-packages/")[-1].startswith("lightning/")]
