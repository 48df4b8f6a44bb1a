"""The window loop: play every window of a runtime, calling the run's callbacks around each."""

from __future__ import annotations

import logging

from tqdm.auto import tqdm

from ekya.atomic import atomic_write
from ekya.errors import EkyaError
from ekya.execution.hooks import RunContext
from ekya.execution.runtime import Runtime
from ekya.results import schema
from ekya.results.records import records_frame

log = logging.getLogger("ekya.loop")


def headline(run: RunContext) -> dict[str, float]:
    """The run's headline metrics: mean window accuracy with retraining and without."""
    assert run.frame is not None, "called after the last window, when run.frame is set"
    overall = run.frame[["accuracy", "noretrain_accuracy"]].mean()
    return {schema.MEAN_ACCURACY: float(overall["accuracy"]),
            schema.MEAN_NORETRAIN_ACCURACY: float(overall["noretrain_accuracy"])}


def run_windows(runtime: Runtime, run: RunContext) -> RunContext:
    """Play the windows not yet played (a checkpoint callback may have restored some) and end the run.

    Every callback's ``on_teardown`` runs whatever happens, with status FINISHED, FAILED (any
    exception, the error passed along) or KILLED (Ctrl-C); the exception itself propagates.
    """
    callbacks = sorted(run.callbacks.values(), key=lambda cb: cb.order)
    if not runtime.windows:  # refused before any callback starts a run that could only fail
        runtime.close()
        raise EkyaError("dataset.windows: no window to play after the bootstrap one (window 0 only trains the base "
                        "models); set dataset.windows to at least 2")
    status = "FINISHED"
    error: BaseException | None = None
    try:
        for cb in callbacks:
            cb.on_run_start(run)
        runtime.setup(run.runtime_state)
        first = runtime.windows[0] if run.next_window is None else run.next_window
        todo = [w for w in runtime.windows if w >= first]
        for w in tqdm(todo, desc="windows", unit="window", leave=False, disable=None):
            for cb in callbacks:
                cb.on_window_start(run, w)
            result = runtime.play(w)
            run.records = run.records + result.records
            run.next_window = w + 1
            for cb in callbacks:
                cb.on_window_end(run, result)
        run.frame = frame = records_frame(run.records)
        csv = run.run_dir / "windows.csv"
        atomic_write(csv, lambda tmp: frame.to_csv(tmp, index=False))
        run.artifacts = [csv, run.run_dir / "config.yaml", *run.artifacts]
        run.summary = headline(run)
        for cb in callbacks:
            cb.on_run_end(run)
    except KeyboardInterrupt as e:
        status, error = "KILLED", e
        raise
    except BaseException as e:
        status, error = "FAILED", e
        raise
    finally:
        failed = None
        try:  # before the callbacks end the run: a KILLED run must not leave actors holding shares
            runtime.close()
        except Exception as e:  # noqa: BLE001 - a failing close must not hide the run's own error
            log.error("the runtime could not release its resources: %s: %s", type(e).__name__, e)
            failed = e
        for cb in callbacks:
            try:
                cb.on_teardown(run, status, error)
            except Exception as e:  # noqa: BLE001 - a failing teardown must not hide the run's own error
                log.error("callback %s could not end the run: %s: %s", type(cb).__name__, type(e).__name__, e)
                failed = failed or e
        if failed is not None and error is None:
            raise failed
    return run
