"""The parts of a ray window: what it writes out (timeline rows, events), and the fleet's faults made visible.

The first tests need no Ray. The others run against the module's local Ray with small stand-in
actors (no torch to import), so each takes about a second.
"""

from __future__ import annotations

import json
import logging
import time

import pytest

from ekya.execution.ray.cluster import accelerators_of
from ekya.execution.ray.fleet import Fleet, FleetSettings, Job, Spare
from ekya.execution.ray.timeline import Event, Segment, timeline_rows

pytestmark = [pytest.mark.ray, pytest.mark.xdist_group("ray")]


def test_timeline_rows_run_from_each_change_to_the_next_and_end_with_the_window():
    """A segment lasts until the next one starts (one starting at the same time replaces it) or the window ends."""
    segments = [Segment(0.0, 0.1, 0.4, 0), Segment(3.5, 0.1, 0.0, 1), Segment(3.5, 0.5, 0.0, 1),
                Segment(10.0, 0.2, 0.0, 1)]
    rows = timeline_rows(2, "cam00", segments, 10.0)
    assert rows == [
        {"window": 2, "stream": "cam00", "start": 0.0, "end": 3.5, "infer_share": 0.1, "train_share": 0.4,
         "model_version": 0},
        {"window": 2, "stream": "cam00", "start": 3.5, "end": 10.0, "infer_share": 0.5, "train_share": 0.0,
         "model_version": 1},
    ]


def test_an_event_is_written_out_as_before_its_fields_after_the_kind():
    """events.json: window, stream, time, event, then the kind's own fields, in that order."""
    restarted = Event(2, "cam01", 4.25, "inference_restarted", {"why": "RayActorError", "frames_lost": 3})
    lost = Event(3, None, 0.0, "accelerators_lost", {"accelerators": ["ekya_b_acc0"]})
    assert json.dumps([restarted.as_dict(), lost.as_dict()]) == (
        '[{"window": 2, "stream": "cam01", "time": 4.25, "event": "inference_restarted", "why": "RayActorError", '
        '"frames_lost": 3}, {"window": 3, "stream": null, "time": 0.0, "event": "accelerators_lost", '
        '"accelerators": ["ekya_b_acc0"]}]')


def _fleet(ready_timeout: float = 30.0) -> Fleet:
    return Fleet(accelerators_of({"local": 1}), FleetSettings(ready_timeout=ready_timeout), ship=lambda: None)


def _stand_in(ray):
    """A one-thread actor with a ``ready`` like the fleet's actors, and work that keeps it busy."""

    @ray.remote(num_cpus=0, max_restarts=0)
    class StandIn:
        def ready(self):
            return {"pid": 0, "node": ""}

        def work(self, seconds):
            time.sleep(seconds)

    return StandIn


def test_a_retraining_actor_that_outlives_its_end_is_warned_about_and_a_fault_of_the_window(local_ray, caplog):
    """An ended job whose actor does not go within runtime.ready_timeout: a warning, and an event of the window."""
    from ekya.execution.ray.window_play import WindowPlay

    ray = local_ray
    fleet = _fleet(ready_timeout=0.5)
    acc = fleet.accelerators[0]
    busy = _stand_in(ray).remote()
    ray.get(busy.ready.remote())
    busy.work.remote(5.0)  # its end queues behind this
    fleet.ledger.book(acc, "cam00/train#1", 0.4)
    fleet.jobs["cam00"] = job = Job(busy, acc, 0.4, "cam00/train#1", "cfg", started=0.0)
    play = WindowPlay.__new__(WindowPlay)  # only a job's end is played here: no plan, no frames
    play.__dict__.update(k=2, fleet=fleet, events=[], clock0=time.monotonic(), scale=2.0)
    try:
        with caplog.at_level(logging.WARNING, logger="ekya.ray"):
            play._end_job("cam00", job, running=False)
        events = [e.as_dict() for e in play.events]
        assert [e["event"] for e in events] == ["actor_not_gone"]
        assert events[0]["stream"] == "cam00" and events[0]["job"] == "cam00/train#1" and events[0]["time"] > 0.2
        assert "0.5 s" in events[0]["why"]
        assert "cam00/train#1 was ended but is" in caplog.text
        assert not fleet.jobs and fleet.ledger.load(acc.index) == 0.0  # its booking is freed all the same
    finally:
        ray.kill(busy, no_restart=True)


def test_an_ended_actor_that_is_gone_is_no_fault(local_ray, caplog):
    ray = local_ray
    fleet = _fleet()
    acc = fleet.accelerators[0]
    idle = _stand_in(ray).remote()
    ray.get(idle.ready.remote())
    fleet.ledger.book(acc, "cam00/train#1", 0.4)
    with caplog.at_level(logging.WARNING, logger="ekya.ray"):
        assert fleet.end_job(Job(idle, acc, 0.4, "cam00/train#1", "cfg"), running=True) is None
    assert not caplog.text and fleet.ledger.load(acc.index) == 0.0


def test_taking_a_spare_skips_every_one_that_died_idle(local_ray):
    """Spares that died waiting are passed over (as many as there are) for the first one alive."""
    ray = local_ray
    fleet = _fleet()
    acc = fleet.accelerators[0]
    stand_in = _stand_in(ray)
    dead = [stand_in.remote() for _ in range(3)]
    live = stand_in.remote()
    for handle in dead:
        ray.kill(handle, no_restart=True)
    fleet.spares[acc.node] = [Spare(h, h.ready.remote()) for h in [*dead, live]]
    try:
        ray.wait([s.ready for s in fleet.spares[acc.node]], num_returns=4, timeout=30)
        assert fleet.take_spare(acc) is live
        assert fleet.spares[acc.node] == [] and fleet.take_spare(acc) is None
    finally:
        ray.kill(live, no_restart=True)


def test_the_alive_nodes_are_asked_of_ray_once_per_poll(local_ray, monkeypatch):
    """However many accelerators a poll asks about, Ray's node table is read once; the next poll reads it again."""
    ray = local_ray
    calls = []
    real = ray.nodes
    monkeypatch.setattr(ray, "nodes", lambda: calls.append(1) or real())
    fleet = Fleet(accelerators_of({"local": 1, "gone": 2}), FleetSettings(), ship=lambda: None)
    local, *gone = fleet.accelerators
    assert fleet.alive(local) and not any(fleet.alive(a) for a in gone)
    assert fleet.node_id(local) == ray.get_runtime_context().get_node_id()
    assert fleet.room(0.3) == local
    assert len(calls) == 1
    fleet.poll()
    assert fleet.alive(local) and len(calls) == 2
