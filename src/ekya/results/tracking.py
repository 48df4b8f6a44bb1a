"""MLflow tracking: one parent run per invocation, a child run per camera, metrics with step=window.

The run ids and the last logged window are kept in the run directory (``tracking.json``), so a
resumed run logs into the same parent and child runs, and a window is logged once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import math
import socket
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ekya.atomic import atomic_write
from ekya.errors import EkyaError
from ekya.results import schema
from ekya.results.records import WindowRecord
from ekya.waits import timeout_of

_MAX_BATCH = 100  # MLflow accepts at most 100 params per log_batch call
#: The experiment tag MLflow 3's UI keeps an experiment's kind in: "custom_model_development" is its
#: classic ML kind, whose page is the runs table (without the tag the UI infers a kind and writes it).
#: The UI of mlflow 3.17 lets its global GenAI / Model training switch override the tag; links name
#: that switch with ``?workflowType=machine_learning`` (see callbacks/mlflow.py, analysis/ui.py).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_TAGS = {EXPERIMENT_KIND_TAG: "custom_model_development"}


#: the longest wait for a tracking server the user named, unless the config says otherwise (tracking.connect_timeout_s)
CONNECT_TIMEOUT_S = 30.0
#: the port a tracking URI's scheme implies when it names none (MLflow servers, and its SQL stores' databases)
_DEFAULT_PORTS = {"http": 80, "https": 443, "postgresql": 5432, "mysql": 3306, "mssql": 1433}


def _unanswered(uri: str, timeout_s: float) -> str | None:
    """Why the server a tracking URI names does not answer within ``timeout_s`` seconds, or None when it does.

    A TCP connect to the host and port as typed, then, for an MLflow server (http, https), one GET of
    its ``/health`` without retries: MLflow's own client retries a server that does not answer for minutes.
    """
    parts = urlsplit(uri)
    scheme = parts.scheme.split("+", 1)[0]  # postgresql+psycopg2 is a postgresql database
    try:
        host, port = parts.hostname, parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError as e:  # a port that is not a number
        return str(e)
    if not host or port is None:
        return None
    deadline = time.monotonic() + timeout_s
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except TimeoutError:
        return f"no TCP answer from {host}:{port}"
    except OSError as e:
        return f"{type(e).__name__}: {e.strerror or e}"
    if scheme not in ("http", "https"):
        return None
    import requests

    try:
        reply = requests.get(uri.rstrip("/") + "/health", timeout=max(deadline - time.monotonic(), 0.1))
    except requests.Timeout:
        return "something accepts connections there, but no HTTP answer came"
    except requests.RequestException as e:
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else e}"
    # any answer but a server error means a server is there; MLflow's own calls report the rest
    return f"it answered HTTP {reply.status_code}" if reply.status_code >= 500 else None


def check_server(uri: str, connect_timeout_s: Any, key: str = "tracking.uri") -> None:
    """Fail with one line naming ``key`` and the URI as typed unless the server it names answers in time.

    ``connect_timeout_s`` comes from the config (``tracking.connect_timeout_s``) and is checked here.
    Stores on this machine (``sqlite:``, ``file:``, a path) have no server and pass unchecked.
    """
    timeout_s = timeout_of(f"{key.rsplit('.', 1)[0]}.connect_timeout_s", connect_timeout_s)
    why = _unanswered(uri, timeout_s)
    if why is None:
        return
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        try:
            where = f"--host {parts.hostname} --port {parts.port or _DEFAULT_PORTS[parts.scheme]}"
        except ValueError:
            where = "--host 127.0.0.1 --port 5000"
        what, fix = "MLflow tracking server", f"start one with `mlflow server {where}`"
    else:
        what, fix = "database server", "start it"
    raise EkyaError(f"{key}={uri!r}: no {what} answered within {timeout_s:g} s ({why}); {fix} or fix the URI "
                    "(tracking=local keeps the runs in a local store)")


#: a param whose text is longer than this (a curve array, a config list, a path) is logged in LONG_PARAMS instead:
#: the compare view lines params up as columns, and a 14-line array there hides what differs between runs
MAX_PARAM_CHARS = 40
#: the parent run's artifact holding the long values (dotted key -> value as configured); config.yaml has them too
LONG_PARAMS = "long_params.json"


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Flatten a nested mapping into dotted keys, values as they are (lists stay lists)."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def split_params(params: Mapping[str, Any]) -> tuple[dict[str, str], dict[str, Any]]:
    """The flat params a person compares (text of at most MAX_PARAM_CHARS) and the long values, by dotted key.

    ``_target_`` keys are left out of both: they name classes, and the tags already say which scheduler
    and runtime a run used.
    """
    short: dict[str, str] = {}
    long: dict[str, Any] = {}
    for key, value in flatten(params).items():
        if key.rsplit(".", 1)[-1] == "_target_":
            continue
        text = str(value)
        if len(text) > MAX_PARAM_CHARS:
            long[key] = value
        else:
            short[key] = text
    return short, long


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """Serialise opening a SQLite store: parallel cells would otherwise migrate a new database at once."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    db = Path(uri[len("sqlite:///"):])
    db.parent.mkdir(parents=True, exist_ok=True)
    with open(db.with_name(db.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(frozen=True)
class FinishedTwin:
    """A FINISHED parent run of the same fingerprint: the run a rerun of the cell stands for."""

    run_id: str
    experiment: str
    metrics: dict[str, float] = field(default_factory=dict)


def finished_twin(client: Any, experiment_id: str, experiment: str, config_hash: str) -> FinishedTwin | None:
    """The newest FINISHED parent run in the experiment whose tag config_hash is ``config_hash``, if any."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=f"tags.{schema.CONFIG_HASH} = '{config_hash}' and attributes.status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=50)
    parents = [r for r in runs if schema.PARENT_RUN not in r.data.tags]
    if not parents:
        return None
    run = parents[0]
    return FinishedTwin(run.info.run_id, experiment, {k: float(v) for k, v in run.data.metrics.items()})


class Tracker:
    """Writes a run's params, per-window metrics and artifacts to MLflow."""

    def __init__(self, uri: str, experiment: str, artifact_root: str | None, run_dir: Path) -> None:
        from mlflow.tracking import MlflowClient  # heavy import, kept out of module import time

        # mlflow resets its loggers to INFO on import; database set-up chatter is not for users.
        for name in ("mlflow", "alembic", "sqlalchemy"):
            logging.getLogger(name).setLevel(logging.WARNING)

        self.uri = uri
        self.experiment_name = experiment
        self.run_dir = Path(run_dir)
        try:
            with store_lock(uri):
                self.client = MlflowClient(tracking_uri=uri)
                exp = self.client.get_experiment_by_name(experiment)
                self.experiment_id = exp.experiment_id if exp else self.client.create_experiment(
                    experiment, artifact_location=Path(artifact_root).resolve().as_uri() if artifact_root else None,
                    tags=dict(EXPERIMENT_TAGS))
                if exp is not None and EXPERIMENT_KIND_TAG not in exp.tags:  # made before the tag, or by hand
                    self.client.set_experiment_tag(self.experiment_id, EXPERIMENT_KIND_TAG,
                                                   EXPERIMENT_TAGS[EXPERIMENT_KIND_TAG])
        except Exception as e:  # noqa: BLE001 - any store failure is a config problem for the user
            raise EkyaError(f"tracking.uri={uri!r}: cannot open the MLflow store ({type(e).__name__}: {e}); "
                            "fix the URI or start the tracking server") from None
        self.parent_id: str | None = None
        self.child_ids: dict[str, str] = {}
        self.logged_through = -1
        #: the last window whose continual-learning metrics are logged (they may lag the records on resume)
        self.continual_through = 0

    @property
    def _ids_file(self) -> Path:
        return self.run_dir / "tracking.json"

    def _save_ids(self) -> None:
        atomic_write(self._ids_file, json.dumps({"parent": self.parent_id, "children": self.child_ids,
                                                 "logged_through": self.logged_through,
                                                 "continual_through": self.continual_through}))

    def start(self, run_name: str, params: Mapping[str, Any], streams: Iterable[str], tags: Mapping[str, str]) -> bool:
        """Open (or reopen, when resuming) the parent and child runs; returns True if resumed."""
        if self._ids_file.exists():
            ids = json.loads(self._ids_file.read_text())
            self.parent_id, self.child_ids = ids["parent"], ids["children"]
            self.logged_through = int(ids.get("logged_through", -1))
            self.continual_through = int(ids.get("continual_through", 0))
            for rid in [self.parent_id, *self.child_ids.values()]:
                self.client.update_run(rid, status="RUNNING")
            return True
        streams = list(streams)
        tags = {schema.STREAMS: str(len(streams)), **tags}  # the composition root gives the other CELL_TAGS
        parent = self.client.create_run(self.experiment_id, run_name=run_name, tags=dict(tags))
        self.parent_id = parent.info.run_id
        from mlflow.entities import Param

        short, long = split_params(params)
        items = sorted(short.items())
        for i in range(0, len(items), _MAX_BATCH):
            self.client.log_batch(self.parent_id, params=[Param(k, v) for k, v in items[i:i + _MAX_BATCH]])
        if long:  # logged at the start, so a run that fails later still has every value it ran with
            self.client.log_dict(self.parent_id, json.loads(json.dumps(long, default=str)), LONG_PARAMS)
        for s in streams:
            child = self.client.create_run(self.experiment_id, run_name=s,
                                           tags={**tags, schema.PARENT_RUN: self.parent_id, schema.STREAM: s})
            self.child_ids[s] = child.info.run_id
            self.client.log_batch(child.info.run_id, params=[Param(schema.STREAM, s)])
        self._save_ids()
        return False

    def log_window(self, window: int, records: list[WindowRecord], extra: Mapping[str, float] | None = None) -> None:
        """Log one window: each stream's metrics to its child run, the means to the parent run."""
        from mlflow.entities import Metric

        ts = 0  # timestamps are not results; a constant keeps reruns byte-identical in the store
        for r in records:
            metrics = [Metric(k, v, ts, window) for k, v in r.metrics().items()]
            self.client.log_batch(self.child_ids[r.stream], metrics=metrics)
        n = max(len(records), 1)
        parent = {
            schema.ACCURACY: sum(r.accuracy for r in records) / n,
            schema.NORETRAIN_ACCURACY: sum(r.noretrain_accuracy for r in records) / n,
            schema.SCHEDULER_SECONDS: records[0].scheduler_seconds if records else 0.0,
            schema.RETRAIN_COST: sum(r.retrain_cost for r in records),
            **(extra or {}),
        }
        self.client.log_batch(self.parent_id, metrics=[Metric(k, float(v), ts, window) for k, v in parent.items()])
        self.logged_through = max(self.logged_through, int(window))
        self._save_ids()

    def log_continual(self, window: int, per_stream: Mapping[str, Mapping[str, float]],
                      macro: Mapping[str, float]) -> None:
        """Log the continual-learning metrics as of ``window`` (``cl_`` keys).

        Per camera to its child run, the macro average to the parent.
        """
        from mlflow.entities import Metric

        def batch(metrics: Mapping[str, float]) -> list[Metric]:
            return [Metric(f"{schema.CONTINUAL_PREFIX}{k}", float(v), 0, window) for k, v in metrics.items()
                    if not math.isnan(float(v))]

        for stream, metrics in per_stream.items():
            self.client.log_batch(self.child_ids[stream], metrics=batch(metrics))
        self.client.log_batch(self.parent_id, metrics=batch(macro))
        self.continual_through = max(self.continual_through, int(window))
        self._save_ids()

    def log_artifact(self, path: Path, artifact_path: str | None = None) -> None:
        """Attach a file to the parent run."""
        self.client.log_artifact(self.parent_id, str(path), artifact_path)

    def record_error(self, error: BaseException) -> None:
        """Put the error on the parent and child runs (tag ``error``), so the UI says why a run failed."""
        text = f"{type(error).__name__}: {error}"[:5000]
        for rid in [self.parent_id, *self.child_ids.values()]:
            self.client.set_tag(rid, schema.ERROR, text)

    def finish(self, summary: Mapping[str, float], status: str = "FINISHED") -> None:
        """Log the final summary metrics and close every run with the given status."""
        from mlflow.entities import Metric

        if summary:
            self.client.log_batch(self.parent_id, metrics=[Metric(k, float(v), 0, 0) for k, v in summary.items()])
        for rid in self.child_ids.values():
            self.client.set_terminated(rid, status=status)
        self.client.set_terminated(self.parent_id, status=status)
