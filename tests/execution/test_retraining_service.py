"""The retraining service's interface: a job started through it is the job the emulate run recorded."""

from __future__ import annotations

import math

import pytest

from ekya.composition import build_runtime
from ekya.execution.retraining import RetrainingService, work_done


def test_a_job_run_through_the_service_reports_what_the_run_recorded(make_cfg):
    """Progress, result and cost of a job started through the service agree with the window's records.

    Fair plans every camera a job at a fixed share and only re-plans at a completion, so the first job to
    complete ran at its planned share from the label delay on: it is done exactly at its completion time.
    """
    rt, _ = build_runtime(make_cfg("experiment=tiny", "threads=1", "scheduler=fair"))
    svc = rt.retraining
    assert isinstance(svc, RetrainingService) and svc.cameras == rt.streams
    rt.setup(None)
    result = rt.play(1)
    done = [r for r in result.records if r.config != "none" and math.isfinite(r.completion_time)]
    assert done, "fair retrains every camera; a tiny window completes at least one job"
    results = {}
    for r in done:
        start = svc.window_start[r.stream]
        assert svc.live_accuracy(r.stream, start, 1)[0] == r.start_accuracy
        job = svc.job(r.stream, r.config, 1)
        assert (job.camera, job.config, job.window) == (r.stream, r.config, 1)
        got = results[r.stream] = svc.run(job, start)
        # the same seed, data and start model: the very model and cost the run recorded
        assert got.cost == r.retrain_cost > 0
        assert got.profile.accuracy == r.end_accuracy
        assert svc.live_accuracy(r.stream, got.model, 1)[0] == r.end_accuracy
    first = min(done, key=lambda r: r.completion_time)
    got = results[first.stream]
    ran = first.completion_time - rt.budget.label_delay  # training starts once the teacher's labels are in
    assert work_done(ran, first.train_share, rt.budget) == pytest.approx(got.cost)
    assert got.progress(ran, first.train_share, rt.budget) == pytest.approx(1.0)
    assert got.progress(ran / 2, first.train_share, rt.budget) == pytest.approx(0.5)
    assert got.progress(0.0, first.train_share, rt.budget) == 0.0
    # a job trained elsewhere (as a Ray actor does) and handed back is scored and priced the same
    job = got.job
    model, report = svc.learner.retrain(svc.window_start[first.stream], job.settings, job.train, job.val,
                                        svc.stream_set, job.seed)
    assert svc.finish(job, model, report).profile == got.profile
