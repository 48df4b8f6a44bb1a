"""Training-throughput overhead of the emulate runtime's learner against a bare PyTorch loop.

    python -m ekya.bench overhead [--repeats 5] [--config full_h256_f1.0_e5]

Both train the same model copy on the same in-memory crops with the same optimiser, batch sizes,
epochs and per-epoch validation (keeping the best-validation weights), one after the other,
alternating, after a warm-up of each; the figures are median samples per second.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from hydra.utils import instantiate
from omegaconf import OmegaConf

from ekya.bench._runs import scratch
from ekya.composition import build_parts
from ekya.configspace import load_configspace
from ekya.hydra_compose import compose_config
from ekya.learners.base import Learner
from ekya.learners.training import Batches
from ekya.process import configure_torch
from ekya.seeds import derive_seed
from ekya.streams.windows import cut_windows

#: about how long a run with the default arguments takes on 2 CPU cores (python -m ekya.bench --help)
DURATION = "about 1-3 min (163 s measured on busy cores)"


def bare_loop(model: torch.nn.Module, x_tr: torch.Tensor, y_tr: torch.Tensor, x_va: torch.Tensor, y_va: torch.Tensor,
              epochs: int, batch: int, lr: float, seed: int) -> int:
    """The same training in plain PyTorch; returns the sample-passes it trained on."""
    train = Batches(x_tr, y_tr, batch, seed=seed)
    val = Batches(x_va, y_va, 256)
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    best, best_state = -1.0, None
    for _ in range(epochs):
        model.train()
        for xb, yb in train:
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(model(xb), yb).backward()
            opt.step()
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for xb, yb in val:
                correct += int((model(xb).argmax(1) == yb).sum())
                total += len(yb)
        if correct / total >= best:
            best, best_state = correct / total, {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return train.samples * epochs


def main(argv: list[str]) -> dict:
    """Time both loops and return their throughputs and ratio."""
    ap = argparse.ArgumentParser(prog="python -m ekya.bench overhead")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--config", default="full_h256_f1.0_e5")
    ap.add_argument("--window", type=int, default=3)
    args = ap.parse_args(argv)
    with scratch() as tmp:
        cfg = compose_config([f"dataset.root={Path(tmp)}/data"])
        configure_torch(int(cfg.threads))
        parts = build_parts(cfg, ["window", "windows", "stream_set"])
        settings, ss = parts["window"], parts["stream_set"]
        learner: Learner = instantiate(cfg.learner)
        space = load_configspace(OmegaConf.to_container(cfg.configspace, resolve=True))
        config = space[args.config]
        cam = ss.cameras[0]
        w = cut_windows(ss.camera(cam), parts["windows"], settings, seed=derive_seed(0, "split", cam))[args.window]
        base = learner.new_model(len(ss.classes), seed=1)
        job = learner.params(config)
        x_tr = learner.crops(ss).images(w.train)
        y_tr = torch.tensor(w.train["teacher_label"].to_numpy())
        x_va = learner.crops(ss).images(w.val)
        y_va = torch.tensor(w.val["teacher_label"].to_numpy())
        ours, bare = [], []
        for rep in range(args.repeats + 1):  # the first round warms both up and is not counted
            t0 = time.perf_counter()
            _, report = learner.retrain(base, config, w.train, w.val, ss, seed=rep)
            t_ours = time.perf_counter() - t0
            model = learner.new_model(len(ss.classes), seed=1)
            model.load_state_dict(base.state_dict())
            t0 = time.perf_counter()
            with torch.random.fork_rng():
                torch.manual_seed(rep)
                n = bare_loop(model, x_tr, y_tr, x_va, y_va, job.epochs, job.batch_size, job.lr, seed=rep)
            t_bare = time.perf_counter() - t0
            if rep:
                ours.append(report.samples_seen / t_ours)
                bare.append(n / t_bare)
    e, b = statistics.median(ours), statistics.median(bare)
    return {"ekya_samples_per_s": round(e, 1), "torch_samples_per_s": round(b, 1), "ratio": round(e / b, 3),
            "config": args.config, "train_samples": len(w.train), "repeats": args.repeats}
