"""MLflow tracking as a callback: params and tags at the start, metrics per window, status at the end."""

from __future__ import annotations

import logging

from ekya.execution.hooks import Callback, RunContext
from ekya.execution.runtime import WindowResult
from ekya.results.continual import running_metrics
from ekya.results.tracking import CONNECT_TIMEOUT_S, FinishedTwin, Tracker, check_server, finished_twin, store_lock

log = logging.getLogger("ekya.tracking")


class MlflowTracking(Callback):
    """One parent run per invocation and a child run per camera (see ``ekya.results.tracking``)."""

    order = 20

    def __init__(self, uri: str, artifact_root: str | None = None, experiment: str | None = None,
                 run_name: str | None = None, hint: bool = True, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> None:
        self.uri, self.artifact_root = str(uri), artifact_root
        self.experiment, self.run_name, self.hint = experiment, run_name, bool(hint)
        self.tracker: Tracker | None = None
        # built before the runtime: a server that does not answer fails the run before any data is made
        check_server(self.uri, connect_timeout_s)

    def finished_twin(self, source: str, config_hash: str) -> FinishedTwin | None:
        """A FINISHED parent run of this config in the experiment this run would log to, if one exists."""
        from mlflow.tracking import MlflowClient

        experiment = str(self.experiment or source)
        with store_lock(self.uri):
            client = MlflowClient(tracking_uri=self.uri)
            exp = client.get_experiment_by_name(experiment)
        return None if exp is None else finished_twin(client, exp.experiment_id, experiment, config_hash)

    def on_run_start(self, run: RunContext) -> None:
        """Open the store and the runs; log windows a previous process played but did not log."""
        experiment = str(self.experiment or run.runtime.source)
        self.tracker = Tracker(self.uri, experiment, self.artifact_root, run.run_dir)
        self.tracker.start(str(self.run_name or run.name), run.params, run.runtime.streams, run.tags)
        for w in sorted({r.window for r in run.records if r.window > self.tracker.logged_through}):
            self.tracker.log_window(w, [r for r in run.records if r.window == w])

    def on_window_end(self, run: RunContext, result: WindowResult) -> None:
        """Log the window's records and the continual-learning metrics as of this window."""
        self.tracker.log_window(result.window, result.records)
        self._log_continual(run, result.window)
        self._log_execution(result)

    def _log_execution(self, result: WindowResult) -> None:
        """Attach what a real execution saw (runtime=ray: per-segment timeline, fault events) as window artifacts."""
        for name in ("timeline", "events"):
            rows = getattr(result, name, None)
            if rows is not None:
                self.tracker.client.log_dict(self.tracker.parent_id, {"window": result.window, name: rows},
                                             f"windows/{result.window:03d}/{name}.json")

    def _log_continual(self, run: RunContext, through: int) -> None:
        """Log the ``cl_`` metrics of every window up to ``through`` not logged yet (a resumed run catches up)."""
        matrices = run.runtime.accuracy_matrices()
        if not matrices:
            return
        for w in range(self.tracker.continual_through + 1, through + 1):
            self.tracker.log_continual(w, *running_metrics(matrices, w))

    def on_run_end(self, run: RunContext) -> None:
        """Log what a resumed run has not logged yet; attach the run's files."""
        if run.records:
            self._log_continual(run, max(r.window for r in run.records))
        for path in run.artifacts:
            self.tracker.log_artifact(path)

    def on_teardown(self, run: RunContext, status: str, error: BaseException | None) -> None:
        """Close every run as FINISHED, FAILED (with the error recorded) or KILLED."""
        if self.tracker is None or self.tracker.parent_id is None:
            return
        if error is not None and status == "FAILED":
            self.tracker.record_error(error)
        self.tracker.finish(run.summary if status == "FINISHED" else {}, status=status)
        if status == "FINISHED" and self.hint:
            # MLflow 3's UI opens on its GenAI pages unless the link names the classic workflow
            page = f"#/experiments/{self.tracker.experiment_id}?workflowType=machine_learning"
            hint = (f"mlflow ui --backend-store-uri {self.uri}, then open http://127.0.0.1:5000/{page}"
                    if self.uri.startswith("sqlite") else f"open {self.uri.rstrip('/')}/{page}")
            print(f"MLflow: {hint}   (experiment {self.tracker.experiment_name!r})")
