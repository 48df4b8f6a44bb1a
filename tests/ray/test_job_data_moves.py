"""runtime=ray ships a retraining job's data with it: decoded crops of its pool and its model's memory."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from ekya.composition import build_runtime

pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]


def test_a_retraining_job_reads_no_dataset_file_where_it_runs(local_ray, make_cfg, tmp_path):
    """With the controller's crop pack a job runs where the dataset's files are absent, and trains as it would
    locally."""
    ray = local_ray
    rt, _ = build_runtime(make_cfg("runtime=emulate", "experiment=tiny", "threads=1", "dataset.cameras=1",
                                   "learner=finetune_replay"))
    rt.setup(None)
    from ekya.execution.ray import actors

    cam = rt.streams[0]
    svc = rt.retraining
    w, model, learner = svc.windows_of[cam][1], rt.models.serving[cam], svc.learner
    config = svc.space[next(iter(svc.space))]
    rows = learner.job_rows(model, w.train, w.val)
    assert len(model.replay) and len(rows) > len(w.train) + len(w.val) - 1  # the replay memory is read too
    pack = learner.crops(svc.stream_set).pack(rows)
    elsewhere = dataclasses.replace(svc.stream_set, root=tmp_path / "not-on-this-node")  # no file is readable there
    weights = actors.numpy_state(learner.model_state(model))
    shipped = learner.without_crops()  # as the controller ships it: no decoded crops travel with the learner

    actor = actors.RetrainActor.options(num_cpus=0).remote(1.0, True)  # a job that fails leaves its actor up

    def job(crops):
        return ray.get(actor.retrain.remote(shipped, weights, config, w.train, w.val, elsewhere, 7, crops))

    try:
        with pytest.raises(ray.exceptions.RayTaskError):
            job(None)  # without the pack the job would have to read the dataset's files
        new_weights, report, _ = job(ray.put(pack))
    finally:
        ray.kill(actor, no_restart=True)
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as the actor trains
    try:
        local, local_report = learner.retrain(model, config, w.train, w.val, svc.stream_set, 7)
    finally:
        torch.set_num_threads(threads)
    assert report.train_flops == local_report.train_flops and report.samples_seen == local_report.samples_seen
    for key, value in learner.model_state(local)["state_dict"].items():
        np.testing.assert_allclose(new_weights["weights"][key], value.numpy(), rtol=1e-5, atol=1e-6)
