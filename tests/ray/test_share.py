"""The share a job holds is what it gets: the CPU duty cycle (virtual and real clock) and the MPS environment."""

from __future__ import annotations

import math
import time
from pathlib import Path

import pytest

from ekya.errors import EkyaError
from ekya.execution.ray.share import DutyCycle, gpu_env, mps_dirs, mps_percentage, paced_training


class VirtualClock:
    """A clock that only moves when told to (work) or slept on (rest)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def _work(cycle: DutyCycle, clock: VirtualClock, seconds: float) -> None:
    with cycle.unit():
        clock.now += seconds


@pytest.mark.parametrize("share", [0.05, 0.25, 0.5, 0.9, 1.0])
def test_duty_cycle_busy_fraction_is_the_share_on_a_virtual_clock(share: float) -> None:
    clock = VirtualClock()
    cycle = DutyCycle(share, slack_seconds=0.05, clock=clock, sleep=clock.sleep)
    for i in range(400):
        _work(cycle, clock, 0.004 + 0.002 * (i % 3))  # uneven batches
    # over T seconds busy <= s * (T + 2 * slack); deferred rest under the slack is all that is missing
    elapsed = clock.now
    assert cycle.busy_seconds <= share * (elapsed + 2 * 0.05) + 1e-9
    assert cycle.busy_fraction() == pytest.approx(share, abs=share * 2 * 0.05 / elapsed + 1e-9)


def test_idle_time_banks_at_most_the_slack() -> None:
    clock = VirtualClock()
    cycle = DutyCycle(0.2, slack_seconds=0.05, clock=clock, sleep=clock.sleep)
    _work(cycle, clock, 0.01)
    clock.now += 10.0  # a long wait for frames
    start = clock.now
    clock.now += 0.1
    rested = cycle.charge(start, clock.now)
    # 0.1 s of work at 0.2 owes 0.4 s; at most 0.05 s of the idle 10 s may be set against it
    assert rested == pytest.approx(0.4 - 0.05)


def test_a_unit_that_raises_still_rests() -> None:
    clock = VirtualClock()
    cycle = DutyCycle(0.5, slack_seconds=0.0, clock=clock, sleep=clock.sleep)
    with pytest.raises(RuntimeError):
        with cycle.unit():
            clock.now += 0.2
            raise RuntimeError("batch failed")
    assert cycle.rest_seconds == pytest.approx(0.2)


def _spin(seconds: float) -> None:
    end = time.perf_counter() + seconds
    x = 0
    while time.perf_counter() < end:
        x += 1


@pytest.mark.parametrize("share", [0.25, 0.5])
def test_duty_cycle_holds_on_the_real_clock(share: float) -> None:
    """Measured from outside the cycle: wall time inside units and this thread's CPU time.

    Tolerance: busy fraction in [s - 0.06, s * (1 + 2 * slack / T) + 0.03], CPU fraction at most the
    latter (oversleeping on a loaded machine can only lower the fraction).
    """
    slack, duration = 0.05, 1.2
    cycle = DutyCycle(share, slack_seconds=slack)
    busy = 0.0
    t0, c0 = time.perf_counter(), time.thread_time()
    while time.perf_counter() - t0 < duration:
        with cycle.unit():
            a = time.perf_counter()
            _spin(0.005)
            busy += time.perf_counter() - a
    elapsed, cpu = time.perf_counter() - t0, time.thread_time() - c0
    upper = share * (1 + 2 * slack / elapsed) + 0.03
    assert share - 0.06 <= busy / elapsed <= upper
    assert cpu / elapsed <= upper
    assert cycle.busy_fraction() == pytest.approx(busy / elapsed, abs=0.02)


def test_paced_training_holds_an_unchanged_training_loop_to_its_share() -> None:
    """Cut into ~20 ms units at module calls, a plain torch loop at share 0.25 takes about 4x as long."""
    import torch

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(256, 512), torch.nn.ReLU(), torch.nn.Linear(512, 10))
    opt = torch.optim.SGD(net.parameters(), lr=0.01)
    x, y = torch.randn(64, 256), torch.randint(0, 10, (64,))

    def train(steps: int) -> None:
        for _ in range(steps):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(x), y).backward()
            opt.step()

    train(5)  # warm-up
    t0 = time.perf_counter()
    train(60)
    full = time.perf_counter() - t0
    cycle = DutyCycle(0.25, slack_seconds=0.02)
    t0 = time.perf_counter()
    with paced_training(cycle):
        train(60)
    paced = time.perf_counter() - t0
    assert cycle.busy_fraction() <= 0.25 * (1 + 2 * 0.02 / paced) + 0.03
    assert cycle.rest_seconds >= 0.75 / 0.25 * full * 0.5  # rested for the work it did (timing noise: half)
    assert paced >= 2.0 * full
    steps_after = cycle.busy_seconds
    train(5)  # the hook is gone once the block ends
    assert cycle.busy_seconds == steps_after


def test_paced_training_rests_inside_one_long_step() -> None:
    """A single long forward pass is cut at module calls: at share 0.5 it rests many times, not once at the end."""
    import torch

    net = torch.nn.Sequential(*[torch.nn.Linear(256, 256) for _ in range(100)])
    x = torch.randn(512, 256)
    rests: list[float] = []

    def sleep(seconds: float) -> None:
        rests.append(seconds)
        time.sleep(seconds)

    cycle = DutyCycle(0.5, slack_seconds=0.0, sleep=sleep)
    t0 = time.perf_counter()
    with torch.no_grad(), paced_training(cycle, unit_seconds=0.005):
        net(x)
    wall = time.perf_counter() - t0
    assert len(rests) >= min(5, int(cycle.busy_seconds / 0.005) // 2)
    assert max(rests) <= 0.5 * wall  # no single rest for the whole pass
    # it asks for the rest the share requires (at 0.5, as long as the work), no more: the wall-clock busy
    # fraction can only fall below 0.5 by the OS oversleeping on a loaded machine, so only its top is checked
    assert sum(rests) == pytest.approx(cycle.busy_seconds, rel=0.05)
    assert cycle.busy_fraction() <= 0.5 + 0.1


def test_full_share_never_rests() -> None:
    cycle = DutyCycle(1.0)
    for _ in range(20):
        with cycle.unit():
            _spin(0.001)
    assert cycle.rest_seconds == 0.0
    with paced_training(cycle):
        _spin(0.01)
    assert cycle.rest_seconds == 0.0 and cycle.busy_seconds >= 0.03  # still accounted


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, math.nan])
def test_shares_outside_one_accelerator_are_refused(bad: float) -> None:
    with pytest.raises(EkyaError, match="share"):
        DutyCycle(bad)
    with pytest.raises(EkyaError, match="share"):
        gpu_env(bad, 0, "/tmp/pipe")


@pytest.mark.parametrize("share,percent", [(1.0, 100), (0.3, 30), (0.29, 29), (0.05, 5), (0.999, 99),
                                           (0.004, 1), (0.0001, 1)])
def test_mps_percentage_rounds_down_within_1_to_100(share: float, percent: int) -> None:
    assert mps_percentage(share) == percent


def test_gpu_env_names_the_gpu_percentage_and_mps_directories(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    env = gpu_env(0.35, 1, ".ekya/mps/pipe")
    assert env == {
        "CUDA_VISIBLE_DEVICES": "1",
        "CUDA_MPS_ACTIVE_THREAD_PERCENTAGE": "35",
        "CUDA_MPS_PIPE_DIRECTORY": str(tmp_path / ".ekya/mps/pipe"),
        "CUDA_MPS_LOG_DIRECTORY": str(tmp_path / ".ekya/mps/log"),
    }
    assert all(isinstance(v, str) for v in env.values())  # runtime_env env_vars must be strings
    assert gpu_env(1.0, 0, tmp_path / "p", tmp_path / "l")["CUDA_MPS_LOG_DIRECTORY"] == str(tmp_path / "l")


@pytest.mark.parametrize("bad", [-1, 0.5, True])
def test_gpu_env_refuses_a_bad_gpu_index(bad: object) -> None:
    with pytest.raises(EkyaError, match="GPU index"):
        gpu_env(0.5, bad, "/tmp/pipe")  # type: ignore[arg-type]


def test_mps_dirs_follow_ekya_mps_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EKYA_MPS_DIR", str(tmp_path / "m"))
    dirs = mps_dirs()
    assert (dirs.pipe, dirs.log) == (tmp_path / "m/pipe", tmp_path / "m/log")
    monkeypatch.delenv("EKYA_MPS_DIR")
    monkeypatch.chdir(tmp_path)
    assert mps_dirs().pipe == tmp_path / ".ekya/mps/pipe"
