"""runtime=ray across a two-node Ray cluster on loopback (ray.cluster_utils.Cluster, logical accelerators)."""

from __future__ import annotations

import numpy as np
import pytest

from ekya.composition import build_runtime


@pytest.fixture(scope="module")
def two_nodes():
    """A head node with accelerator ekya_a_acc0 and a worker node with ekya_b_acc0."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "resources": {"ekya_a_acc0": 1.0}, "object_store_memory": 150 * 2 ** 20,
        "include_dashboard": False})
    cluster.add_node(num_cpus=1, resources={"ekya_b_acc0": 1.0}, object_store_memory=150 * 2 ** 20)
    cluster.wait_for_nodes()
    yield cluster
    import ray

    ray.shutdown()
    cluster.shutdown()


def test_deployment_spans_both_nodes(two_nodes, make_cfg):
    """Both nodes' accelerators form the budget; each camera's jobs run on the node its plan names."""
    cfg = make_cfg("runtime=ray", "experiment=tiny", "threads=1", "dataset.cameras=2", "dataset.windows=2",
                   "scheduler=fair", "scheduler.config=frozen_h256_f1.0_e5", "scheduler.inference_weight=0.2",
                   "cluster.accelerators=2",
                   "runtime.window_wall_seconds=15", f"runtime.address={two_nodes.address}",
                   "runtime.nodes={a: 1, b: 1}")
    rt, _ = build_runtime(cfg)
    rt.setup(None)
    import ray

    assert len(ray.nodes()) == 2 and rt.conn.address == two_nodes.address  # joined the cluster

    node_of = {n["NodeID"]: n for n in ray.nodes()}
    res = rt.play(1)
    plan = res.plan.by_stream()
    for r in res.records:
        n = len(rt.windows_of[r.stream][1].test)
        assert r.frames_classified + r.frames_skipped + r.frames_lost == n and r.frames_classified > 0
        assert np.isfinite(r.completion_time)
        dev = plan[r.stream].infer_device
        resource = rt.accelerators[dev].resource
        for job, where in rt.placed.items():
            if job.startswith(r.stream + "/"):
                assert resource in node_of[where["node"]]["Resources"], (job, resource)
    used = {rt.accelerators[plan[c].infer_device].node for c in plan}
    rt.close()
    assert used == {"a", "b"}
    assert not rt.servers and not rt.jobs


def test_removed_node_cameras_moved_or_reported(two_nodes, make_cfg):
    """A node leaves mid-window: its cameras move where their share fits or are reported; the next window re-plans."""
    import threading
    import time

    node = two_nodes.add_node(num_cpus=1, resources={"ekya_c_acc0": 1.0}, object_store_memory=150 * 2 ** 20)
    two_nodes.wait_for_nodes()
    cfg = make_cfg("runtime=ray", "experiment=tiny", "threads=1", "dataset.cameras=2", "dataset.windows=3",
                   "scheduler=fair", "scheduler.config=frozen_h256_f1.0_e5", "scheduler.inference_weight=0.2",
                   "cluster.accelerators=2", "runtime.window_wall_seconds=15", f"runtime.address={two_nodes.address}",
                   "runtime.nodes={a: 1, c: 1}", "runtime.ready_timeout=60")
    rt, _ = build_runtime(cfg)
    rt.setup(None)
    removed = []

    def remove_when_serving():
        deadline = time.time() + 200
        while time.time() < deadline:
            on_c = [s for s in rt.servers.values() if s.acc.node == "c" and s.serving is not None]
            if on_c and all(j.ref is not None for j in rt.jobs.values()) and rt.jobs:
                time.sleep(1.0)
                two_nodes.remove_node(node)
                removed.append(time.time())
                return
            time.sleep(0.05)

    t = threading.Thread(target=remove_when_serving)
    t.start()
    res = rt.play(1)
    t.join()
    assert removed
    plan = res.plan.by_stream()
    on_c = [cam for cam in plan if rt.accelerators[plan[cam].infer_device].node == "c"]
    assert on_c
    for r in res.records:  # every frame accounted for, none silently dropped
        assert r.frames_classified + r.frames_skipped + r.frames_lost == len(rt.windows_of[r.stream][1].test)
    for cam in on_c:
        what = {e["event"] for e in res.events if e["stream"] == cam}
        assert what & {"inference_moved", "inference_unplaced"}, (cam, res.events)
        rec = next(r for r in res.records if r.stream == cam)
        assert rec.faults >= 1
        if "inference_unplaced" in what:
            assert rec.frames_lost == sum(e["frames_lost"] for e in res.events
                                          if e["stream"] == cam and "frames_lost" in e) > 0
    # window 2 is planned on the accelerator left: every camera placed there and served
    res2 = rt.play(2)
    assert any(e["event"] == "accelerators_lost" and e["accelerators"] == ["ekya_c_acc0"] for e in res2.events)
    assert {p.infer_device for p in res2.plan.by_stream().values()} <= {0, None}
    assert all(r.frames_classified > 0 for r in res2.records)
    rt.close()
    assert not rt.servers and not rt.jobs
