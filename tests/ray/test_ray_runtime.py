"""runtime=ray on one CPU node: a real window played by actors, shares, swaps, faults and loopback sockets."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
import time

import numpy as np
import pytest

from ekya.composition import build_runtime
from ekya.errors import EkyaError

# fair: every camera retrains (one config) with 0.4 of the accelerator, inference has 0.1 each
RUN = ["runtime=ray", "experiment=tiny", "threads=1", "dataset.cameras=2", "runtime.window_wall_seconds=30",
       "scheduler=fair", "scheduler.config=frozen_h256_f1.0_e5", "scheduler.inference_weight=0.2"]


def _test_frames(rt, cam, k):
    return len(rt.windows_of[cam][k].test)


def test_window_runs_on_actors_with_faults_survived(local_ray, make_cfg):
    """Window 1 plays normally (jobs finish, weights hot-swap, shares change); window 2 survives two kills."""
    ray = local_ray
    rt, _ = build_runtime(make_cfg(*RUN))
    fair = rt.scheduler

    class Shrinking(type(fair)):
        """fair's re-plan, and every other camera's inference share halved: shrinks in place too."""

        def on_completion(self, state, budget):
            new = super().on_completion(state, budget)
            return {c: (s[0] / 2 if c != state.completed else s[0], s[1]) for c, s in new.items()}

    rt.scheduler = Shrinking.__new__(Shrinking)
    rt.scheduler.__dict__.update(fair.__dict__)
    rt.setup(None)
    res = rt.play(1)
    by = {r.stream: r for r in res.records}
    for cam, r in by.items():
        n = _test_frames(rt, cam, 1)
        assert r.frames_classified + r.frames_skipped + r.frames_lost == n
        assert r.frames_lost == 0 and r.faults == 0
        assert 0.0 <= r.accuracy <= 1.0 and r.infer_fps > 0
        assert r.config != "none" and np.isfinite(r.completion_time) and 0 < r.completion_time < 200
        assert r.job_wall_seconds > 0
    assert rt.stats["swap_seconds"] and max(rt.stats["swap_seconds"]) < 1.0
    # the accelerator is fully booked (2 x (0.1 + 0.4)), yet the freed training share went to inference:
    # in place, through a lease Ray granted before the duty cycle rose, well under the 5 s
    assert rt.stats["lease_seconds"] and max(rt.stats["lease_seconds"]) < 5.0
    grown = [row for row in res.timeline if row["infer_share"] > 0.1 + 1e-9]
    # the room came from the first finished job (the scheduler may give it to either camera)
    assert grown and min(row["start"] for row in grown) >= min(r.completion_time for r in res.records)
    shrinks = []
    for cam in by:
        rows = sorted((r for r in res.timeline if r["stream"] == cam), key=lambda r: r["start"])
        shrinks += [(a["infer_share"], b["infer_share"]) for a, b in zip(rows, rows[1:])
                    if b["infer_share"] < a["infer_share"] - 1e-9]
    assert shrinks and all(new > 0 for _, new in shrinks), res.timeline  # made in place, never left at nothing
    assert {row["model_version"] for row in res.timeline} >= {0, 1}
    # what the timeline says ran never adds up to more than the accelerator
    for t in {row["start"] for row in res.timeline}:
        held = sum(r["infer_share"] + r["train_share"] for r in res.timeline if r["start"] <= t < r["end"])
        assert held <= 1.0 + 1e-6, (t, held)
    assert any(job.split("/")[1].startswith("lease#") for job in rt.placed)
    # every job booked a literal share of the logical accelerator
    assert all(rt.placed[j]["node"] == ray.get_runtime_context().get_node_id() for j in rt.placed)

    # window 2: kill cam00's retraining actor mid-job and cam01's inference actor mid-window
    killed = {}

    def killer():
        deadline = time.time() + 120
        while time.time() < deadline and len(killed) < 2:
            job = rt.jobs.get("cam00")
            if "train" not in killed and job is not None and job.ref is not None:
                time.sleep(0.3)
                ray.kill(job.handle, no_restart=True)
                killed["train"] = True
            server = rt.servers.get("cam01")
            if "infer" not in killed and server is not None and server.serving is not None and "train" in killed:
                time.sleep(1.0)
                ray.kill(server.handle, no_restart=True)
                killed["infer"] = True
            time.sleep(0.05)

    t = threading.Thread(target=killer)
    t.start()
    res2 = rt.play(2)
    t.join()
    assert killed == {"train": True, "infer": True}
    by2 = {r.stream: r for r in res2.records}
    a, b = by2["cam00"], by2["cam01"]
    # the camera whose retraining died keeps serving its previous model
    assert a.faults == 1 and np.isnan(a.completion_time) and a.end_accuracy == a.start_accuracy
    assert any(e["event"] == "retrain_failed" and e["stream"] == "cam00" for e in res2.events)
    # the dead inference actor was restarted; every frame is accounted for, the lost ones counted
    assert b.faults >= 1
    restarted = [e for e in res2.events if e["event"] == "inference_restarted"]
    assert restarted and sum(e["frames_lost"] for e in restarted) == b.frames_lost
    assert b.frames_classified + b.frames_skipped + b.frames_lost == _test_frames(rt, "cam01", 2)
    assert b.frames_classified > 0
    # closing the runtime (the loop does it at every end of a run) stops every actor: nothing of this
    # runtime holds the accelerator any more
    rt.close()
    assert not rt.servers and not rt.jobs
    deadline = time.time() + 30
    while time.time() < deadline and ray.available_resources().get("ekya_local_acc0", 0) < 1.0 - 1e-9:
        time.sleep(0.2)
    assert ray.available_resources().get("ekya_local_acc0", 0) == pytest.approx(1.0)


def test_share_change_by_a_replacement_takes_a_warm_spare(local_ray, make_cfg):
    """share_change=replace (what GPUs do): the new actor is a spare already up, serving within 5 s, no frame lost."""
    ray = local_ray
    rt, _ = build_runtime(make_cfg(*RUN, "runtime.share_change=replace"))
    rt.setup(None)
    spare_pids = set()
    try:
        time.sleep(0.5)
        spare_pids = {ray.get(ref)["pid"] for pool in rt._spares.values() for _, ref in pool}
        res = rt.play(1)
    finally:
        ended = set(rt.servers) | set(rt._spares)
        rt.close()
    assert spare_pids and ended
    assert rt.stats["replace_seconds"] and max(rt.stats["replace_seconds"]) < 5.0
    assert not rt.stats.get("lease_seconds")  # no change was made in place
    by = {r.stream: r for r in res.records}
    for cam, r in by.items():
        assert r.frames_lost == 0
        assert r.frames_classified + r.frames_skipped == _test_frames(rt, cam, 1)
    # a replacement took a process started before it was needed (the first window's actors may too)
    assert spare_pids & {where["pid"] for job, where in rt.placed.items() if "/infer#" in job}
    for t in {row["start"] for row in res.timeline}:  # never more than the accelerator, either way
        held = sum(r["infer_share"] + r["train_share"] for r in res.timeline if r["start"] <= t < r["end"])
        assert held <= 1.0 + 1e-6, (t, held)
    deadline = time.time() + 30  # every booking ends with the run, spares included
    while time.time() < deadline and ray.available_resources().get("ekya_local_acc0", 0) < 1.0 - 1e-9:
        time.sleep(0.2)
    assert ray.available_resources().get("ekya_local_acc0", 0) == pytest.approx(1.0)


def test_hot_swap_drops_no_frame(local_ray):
    """Weights swapped while frames stream in: every frame is classified, the new model from the swap on."""
    ray = local_ray
    from ekya.execution.ray import actors
    from ekya.learners.checkpoint import edge_model_state
    from ekya.learners.learner import FinetuneLearner
    from ekya.learners.model import EdgeModel

    import torch

    torch.manual_seed(0)
    m0, m1 = EdgeModel("resnet10_w16", 32, 6, 16), EdgeModel("resnet10_w16", 32, 6, 16)
    w0, w1 = (actors.numpy_state(edge_model_state(m)) for m in (m0, m1))
    frames = np.random.default_rng(0).integers(0, 255, (120, 3, 16, 16), dtype=np.uint8)
    actor = actors.InferenceActor.options(num_cpus=0, resources={"ekya_local_acc0": 0.5}).remote(FinetuneLearner(), w0, 0, 0.5, 8, True)
    ray.get(actor.ready.remote())
    ray.get(actor.warm.remote(frames))
    start = time.time() + 0.2
    arrivals = start + np.arange(120) * 0.025  # 40 frames per second for 3 s
    ref = actor.serve.remote(ray.put(frames), arrivals, 0, -1, 2.0)
    time.sleep(1.5)
    swap = ray.get(actor.update_weights.remote(w1, 1))
    out = ray.get(ref)
    rows = ray.get(actor.collect.remote())
    kinds = np.array([r[1] for r in rows])
    versions = np.array([r[3] for r in sorted(rows)])
    assert out["next"] == 120 and len(rows) == 120 and (kinds == 1).all()
    assert swap < 1.0
    switch = int(np.argmax(versions == 1))
    assert 0 < switch < 120 and (versions[:switch] == 0).all() and (versions[switch:] == 1).all()
    # what each version classified is what that model predicts
    with torch.no_grad():
        want = np.where(np.arange(120) < switch, m0.eval()(torch.from_numpy(frames)).argmax(1).numpy(),
                        m1.eval()(torch.from_numpy(frames)).argmax(1).numpy())
    assert (np.array([r[2] for r in sorted(rows)]) == want).all()
    actor.__ray_terminate__.remote()


def test_inference_duty_cycle_holds_the_share(local_ray):
    """At share 0.25 a saturated inference actor is busy about a quarter of the time; raised in place to 0.5, half."""
    ray = local_ray
    from ekya.execution.ray import actors
    from ekya.learners.checkpoint import edge_model_state
    from ekya.learners.learner import FinetuneLearner
    from ekya.learners.model import EdgeModel

    w = actors.numpy_state(edge_model_state(EdgeModel("resnet10_w16", 64, 6, 32)))
    frames = np.zeros((4000, 3, 32, 32), dtype=np.uint8)
    from ekya.execution.ray.lease import ShareLease

    actor = actors.InferenceActor.options(num_cpus=0, resources={"ekya_local_acc0": 0.25}).remote(FinetuneLearner(), w, 0, 0.25, 16, True)
    lease = None
    try:  # a failed check must not leave the actor and the lease holding the accelerator for later tests
        ray.get(actor.ready.remote())
        now = time.time()
        out = ray.get(actor.serve.remote(ray.put(frames), np.full(4000, now), 0, -1, 2.0))
        fraction = out["busy_seconds"] / out["wall_seconds"]
        assert 0.1 < fraction < 0.3, fraction
        assert out["classified"] < 4000  # it could not keep up, so frames older than the lag were skipped

        # grown in place: Ray books the extra 0.25 through a lease first, then the same process runs at 0.5
        lease = ShareLease.request("ekya_local_acc0", 0.25)
        assert lease.granted(30.0)
        # Ray's view of free resources catches up with a grant after a moment
        deadline = time.time() + 10
        while time.time() < deadline and ray.available_resources().get("ekya_local_acc0", 0) > 0.5 + 1e-9:
            time.sleep(0.1)
        assert ray.available_resources().get("ekya_local_acc0", 0) == pytest.approx(0.5)
        ray.get(actor.set_share.remote(0.5))
        now = time.time()
        out2 = ray.get(actor.serve.remote(ray.put(frames), np.full(4000, now), 0, -1, 2.0))
        fraction2 = (out2["busy_seconds"] - out["busy_seconds"]) / out2["wall_seconds"]
        assert 0.35 < fraction2 < 0.6 and fraction2 > fraction + 0.1, (fraction, fraction2)
    finally:
        if lease is not None:
            lease.end()
        ray.kill(actor)


def test_overcommitted_plan_fails_clearly(local_ray, make_cfg):
    from ekya.execution.ray.cluster import accelerators_of
    from ekya.execution.ray.placement import Ledger

    ledger = Ledger(accelerators_of({"local": 1}))
    acc = ledger.accelerator(0, "cam0/infer")
    assert ledger.book(acc, "cam0/infer", 0.3) == {"num_cpus": 0, "resources": {"ekya_local_acc0": 0.3}}
    ledger.book(acc, "cam0/train", 0.7)
    with pytest.raises(EkyaError, match=r"cannot place cam1/infer at share 0.1 on accelerator 0 \(ekya_local_acc0\)"):
        ledger.book(acc, "cam1/infer", 0.1)
    ledger.release(acc, "cam0/train")
    ledger.book(acc, "cam1/infer", 0.7)
    with pytest.raises(EkyaError, match="cluster.accelerators=1 but runtime.nodes lists 2"):
        build_runtime(make_cfg(*RUN, "runtime.nodes={a: 1, b: 1}"))


def test_ray_sockets_listen_on_loopback_only(local_ray):
    """Every listening socket of the Ray processes this test session started is on 127.0.0.1."""
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    mine = _descendants(os.getpid())
    seen = []
    for line in out.splitlines():
        pids = {int(p) for p in re.findall(r"pid=(\d+)", line)}
        if pids & mine:
            seen.append(line.split()[3])
    assert seen, "no listening socket of a Ray process found"
    # an IPv4-mapped IPv6 socket bound to ::ffff:127.0.0.1 is loopback too
    assert all(addr.rsplit(":", 1)[0] in ("127.0.0.1", "[::ffff:127.0.0.1]") for addr in seen), seen


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(entry))
    out, todo = set(), [pid]
    while todo:
        p = todo.pop()
        for c in children.get(p, []):
            if c not in out:
                out.add(c)
                todo.append(c)
    return out


@pytest.fixture
def default_sigint():
    """Ctrl-C handled as a fresh ``python -m ekya`` handles it, whatever earlier code in this process left.

    In the full suite SIGINT was found ignored by the time this test ran (not when tests/ray ran
    alone; Lightning, for one, ignores it for good after a Ctrl-C inside ``Trainer.fit``), and
    ``_thread.interrupt_main`` does nothing while SIGINT is ignored.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_mid_window_ends_killed_and_resumes(local_ray, make_cfg, tmp_path, default_sigint):
    """The CLI's path (run_config): Ctrl-C while window 2 plays ends the actors and the MLflow runs KILLED;
    resume= keeps window 1's records, plays window 2 and attaches its timeline and events to MLflow."""
    import _thread

    import mlflow
    import pandas as pd

    from ekya.callbacks.checkpoint import load_state
    from ekya.composition import run_config
    from ekya.results.records import records_frame

    ray = local_ray
    uri = "sqlite:///" + str(tmp_path / "mlflow.db")
    run_dir = tmp_path / "run"
    cfg = make_cfg(*RUN, "dataset.windows=3", "runtime.window_wall_seconds=10", "tracking.uri=" + uri)

    pressed: list[str] = []

    def press_ctrl_c():  # once window 1 is saved and window 2's actors serve, as a user at the keyboard would
        deadline = time.time() + 300
        try:
            while time.time() < deadline:
                state = load_state(run_dir) if (run_dir / "state.pkl").exists() else None
                if state is not None and state.next_window == 2:
                    time.sleep(8.0)
                    pressed.append(f"pressed with SIGINT handled by {signal.getsignal(signal.SIGINT)!r}")
                    _thread.interrupt_main()
                    return
                time.sleep(0.2)
            pressed.append("window 1's state never appeared")
        except Exception as e:  # noqa: BLE001 - said by the assertion below, not lost with the thread
            pressed.append(f"the watcher failed: {type(e).__name__}: {e}")

    t = threading.Thread(target=press_ctrl_c, daemon=True)
    t.start()
    with pytest.raises(KeyboardInterrupt):
        try:
            run_config(cfg, run_dir, quiet=True)
        finally:
            t.join(timeout=1.0)
            print("ctrl-c watcher:", pressed)  # shown if the run ended without the interrupt
    t.join()
    client = mlflow.tracking.MlflowClient(uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs and {r.info.status for r in runs} == {"KILLED"}
    # the interrupted window's actors are gone: the whole accelerator is free again
    deadline = time.time() + 30
    while time.time() < deadline and ray.available_resources().get("ekya_local_acc0", 0) < 1.0 - 1e-9:
        time.sleep(0.2)
    assert ray.available_resources().get("ekya_local_acc0", 0) == pytest.approx(1.0)
    saved = load_state(run_dir)
    assert saved.next_window == 2 and {r.window for r in saved.records} == {1}

    run = run_config(make_cfg(f"resume={run_dir}"), run_dir, quiet=True)
    resumed = run.frame
    assert sorted(resumed["window"].unique()) == [1, 2]
    # `python -m ekya runtime=ray`'s outputs: windows.csv, the summary, MLflow tags and the ray metrics
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "windows.csv")[["window", "stream", "frames_classified"]],
                                  resumed[["window", "stream", "frames_classified"]])
    assert resumed["accuracy"].between(0, 1).all()
    assert run.summary["mean_accuracy"] == pytest.approx(resumed["accuracy"].mean())
    first = resumed[resumed["window"] == 1].reset_index(drop=True)
    pd.testing.assert_frame_equal(first, records_frame(saved.records).reset_index(drop=True))
    assert resumed.loc[resumed["window"] == 2, "frames_classified"].gt(0).all()
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    assert parent.info.status == "FINISHED" and parent.data.tags.get("runtime") == "ray"
    assert all("frames_classified" in r.data.metrics for r in runs if "mlflow.parentRunId" in r.data.tags)
    # the resumed process attached window 2's timeline and fault events to the run
    names = {a.path for a in client.list_artifacts(parent.info.run_id, "windows/002")}
    assert names == {"windows/002/timeline.json", "windows/002/events.json"}
    timeline = client.download_artifacts(parent.info.run_id, "windows/002/timeline.json", str(tmp_path))
    import json

    rows = json.load(open(timeline))["timeline"]
    assert {r["stream"] for r in rows} == set(resumed["stream"]) and all(r["end"] > r["start"] for r in rows)
