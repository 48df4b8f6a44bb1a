"""The MLflow UI on a study: a local ``mlflow server``, its REST API, and a headless-Chromium screenshot.

The server is always stopped by its process id (its process group: the server's workers go with it).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ekya.errors import EkyaError
from ekya.results.schema import ACCURACY, CELL_TAGS, MEAN_ACCURACY

#: The name the browser uses for the server. The UI opens its assistant panel over a third of the
#: page whenever the page's host is localhost or 127.0.0.1; under another name (mapped to 127.0.0.1 by
#: Chromium's resolver, and allowed by the server's Host-header check) it shows the runs alone.
BROWSER_HOST = "ekya-mlflow"
#: how long a fresh server may take to answer /health (it migrates a new SQLite store first)
START_TIMEOUT_S = 90.0


@dataclass(frozen=True)
class Server:
    """A running ``mlflow server``: where it answers and the process id that stops it."""

    url: str
    pid: int
    log: Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 10.0) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=timeout) as r:  # noqa: S310 - a local http URL we built
        return json.loads(r.read() or b"{}")


def _post(url: str, body: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    req = urllib.request.Request(url, data=json.dumps(body).encode(),  # noqa: S310 - a local http URL we built
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:  # noqa: S310 - a local http URL we built
        return json.loads(r.read() or b"{}")


def stop(proc: subprocess.Popen, grace_s: float = 10.0) -> None:
    """Stop the server by its process id: SIGTERM to its process group, SIGKILL after ``grace_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            continue
        # workers left in the group (the server exited first) go too
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        return


@contextlib.contextmanager
def mlflow_server(backend_store_uri: str, log: Path, port: int | None = None,
                  artifacts: Path | None = None) -> Iterator[Server]:
    """Start ``mlflow server`` on 127.0.0.1 (one worker, no job runner), wait until it answers, always stop it."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
           "--backend-store-uri", backend_store_uri]
    if artifacts is not None:
        cmd += ["--default-artifact-root", Path(artifacts).resolve().as_uri()]
    # localhost names stay allowed: the REST calls of this module use 127.0.0.1
    cmd += ["--allowed-hosts", f"127.0.0.1:{port},localhost:{port},{BROWSER_HOST}:{port}",
            "--cors-allowed-origins", f"http://{BROWSER_HOST}:{port}"]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    server = Server(url=f"http://127.0.0.1:{port}", pid=proc.pid, log=log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
                raise EkyaError(f"mlflow server exited with status {proc.returncode} ({tail[0]}); see {log}")
            try:
                with urllib.request.urlopen(f"{server.url}/health", timeout=2) as r:  # noqa: S310
                    if r.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() > deadline:
                raise EkyaError(f"mlflow server on port {port} did not answer within {START_TIMEOUT_S:.0f} s; "
                                f"see {log}")
            time.sleep(0.3)
        yield server
    finally:
        stop(proc)


def experiment_id(server: Server, name: str) -> str:
    """The id of experiment ``name`` through the REST API (an EkyaError if the server has none)."""
    q = urllib.parse.urlencode({"experiment_name": name})
    try:
        return str(_get(f"{server.url}/api/2.0/mlflow/experiments/get-by-name?{q}")["experiment"]["experiment_id"])
    except urllib.error.HTTPError as e:
        if e.code == 404:
            raise EkyaError(f"--experiment {name}: the server has no such experiment") from None
        raise


def experiment_tags(server: Server, exp_id: str) -> dict[str, str]:
    """An experiment's tags through the REST API."""
    exp = _get(f"{server.url}/api/2.0/mlflow/experiments/get?experiment_id={exp_id}")["experiment"]
    return {t["key"]: t["value"] for t in exp.get("tags", [])}


def parent_runs(server: Server, exp_id: str) -> list[dict[str, Any]]:
    """The experiment's finished parent runs (cells) via ``/api/2.0/mlflow/runs/search``, every page."""
    runs, token = [], None
    while True:
        body = {"experiment_ids": [exp_id], "filter": "attributes.status = 'FINISHED'", "max_results": 1000,
                "order_by": ["attributes.start_time ASC"]}
        if token:
            body["page_token"] = token
        page = _post(f"{server.url}/api/2.0/mlflow/runs/search", body)
        runs += page.get("runs", [])
        token = page.get("next_page_token")
        if not token:
            break
    return [r for r in runs if "mlflow.parentRunId" not in run_tags(r)]


def run_tags(run: dict[str, Any]) -> dict[str, str]:
    """A REST run's tags as a dict."""
    return {t["key"]: t["value"] for t in run.get("data", {}).get("tags", [])}


def side_by_side(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One run per cell (the latest: a rerun supersedes), ordered by streams, accelerators, seed, then scheduler.

    So the schedulers of one cell sit next to each other in the compare view.
    """
    def number(text: str | None) -> float:
        try:
            return float(text)  # type: ignore[arg-type]
        except (TypeError, ValueError):  # a run without the tag sorts last
            return math.inf

    def key(run: dict[str, Any]) -> tuple:
        t = run_tags(run)
        return (*(number(t.get(k)) for k in ("streams", "accelerators", "seed")), t.get("scheduler", ""))

    latest: dict[tuple, dict[str, Any]] = {}
    for run in sorted(runs, key=lambda r: int(r["info"].get("start_time", 0))):
        t = run_tags(run)
        latest[tuple(t.get(k) for k in ("runtime", "scheduler", "accelerators", "streams", "seed"))] = run
    return sorted(latest.values(), key=key)


def compare_url(server: Server, exp_id: str, run_ids: list[str], host: str = BROWSER_HOST) -> str:
    """The UI's compare-runs page of these runs, in its classic-ML ("Model training") view.

    The route is the UI's hash route ``#/compare-runs?runs=[..]&experiments=[..]``; ``workflowType``
    is the query parameter its workflow switch reads.
    """
    port = urllib.parse.urlsplit(server.url).port
    q = (f"runs={urllib.parse.quote(json.dumps(run_ids))}&experiments={urllib.parse.quote(json.dumps([exp_id]))}"
         "&workflowType=machine_learning")
    return f"http://{host}:{port}/#/compare-runs?{q}"


#: the prefix of the experiment tag that holds a shared view of the runs page (what the UI's Share button writes)
SHARED_VIEW_TAG = "mlflow.sharedViewState."
#: the per-window metric and the headline metric the compare view charts, side by side
WINDOW_METRIC, HEADLINE_METRIC = ACCURACY, MEAN_ACCURACY


def _chart(kind: str, metric: str, section: str) -> dict[str, Any]:
    """One chart card of the runs page's chart view (the UI's own card fields: BAR per run, LINE per step)."""
    card: dict[str, Any] = {"uuid": f"ekya-{kind.lower()}-{metric}", "type": kind, "runsCountToCompare": 10,
                            "metricSectionId": section, "deleted": False, "isGenerated": False,
                            "metricKey": metric, "selectedMetricKeys": [metric], "displayName": metric}
    if kind == "LINE":
        card.update({"lineSmoothness": 0, "xAxisKey": "step", "xAxisScaleType": "linear", "scaleType": "linear",
                     "selectedXAxisMetricKey": "", "range": {}})
    return card


def compare_view_state(run_ids: list[str], metrics: list[str]) -> dict[str, Any]:
    """The runs page's view state: only these runs, a bar chart of the headline metric beside a line chart of
    the per-window metric, every other metric's chart removed (the UI would add one per metric otherwise)."""
    section = "ekya-compare"
    charts = [_chart("BAR", HEADLINE_METRIC, section), _chart("LINE", WINDOW_METRIC, section)]
    # a removed card needs only what marks its metric as charted (the tag's value is limited to 5000 characters)
    charts += [{"uuid": f"ekya-removed-{m}", "type": "LINE", "metricKey": m, "metricSectionId": section,
                "deleted": True, "isGenerated": True} for m in sorted(set(metrics) - {HEADLINE_METRIC, WINDOW_METRIC})]
    quoted = ", ".join(f"'{r}'" for r in run_ids)
    return {"searchFilter": f"attributes.run_id IN ({quoted})", "compareRunCharts": charts,
            "compareRunSections": [{"uuid": section, "name": "Model metrics", "display": True, "isReordered": False,
                                    "deleted": False, "isGenerated": False, "columns": 2, "cardHeight": 580}],
            "isAccordionReordered": True, "hideEmptyCharts": True,
            "selectedColumns": [f"metrics.`{HEADLINE_METRIC}`", *(f"tags.`{k}`" for k in CELL_TAGS)]}


def share_view(server: Server, exp_id: str, state: dict[str, Any]) -> str:
    """Store ``state`` as a shared view of the experiment (an experiment tag, as the UI's Share button writes).

    Returns its key; the same state gets the same key, so a rerun rewrites one tag rather than adding another.
    """
    import hashlib

    value = json.dumps(state, sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(value.encode()).hexdigest()[:16]
    _post(f"{server.url}/api/2.0/mlflow/experiments/set-experiment-tag",
          {"experiment_id": exp_id, "key": SHARED_VIEW_TAG + key, "value": value})
    return key


def shared_view_url(server: Server, exp_id: str, key: str, host: str = BROWSER_HOST) -> str:
    """The runs page of the experiment in its chart mode, opened on the shared view ``key``."""
    port = urllib.parse.urlsplit(server.url).port
    return (f"http://{host}:{port}/#/experiments/{exp_id}/runs?viewStateShareKey={key}&compareRunsMode=CHART"
            "&workflowType=machine_learning")


def chromium() -> str | None:
    """The headless browser (Debian's ``chromium`` package), or None when it is not installed."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(url: str, png: Path, size: tuple[int, int] = (1600, 1000), wait_ms: int = 15000,
               timeout_s: float = 120.0) -> Path:
    """Render ``url`` in headless Chromium and write its screenshot to ``png``."""
    exe = chromium()
    if exe is None:
        raise EkyaError("chromium is not installed; install Debian's package (apt-get install chromium)")
    png = Path(png).resolve()
    png.parent.mkdir(parents=True, exist_ok=True)
    png.unlink(missing_ok=True)
    with contextlib.ExitStack() as stack:
        import tempfile

        profile = stack.enter_context(tempfile.TemporaryDirectory(prefix="ekya-chromium-"))
        # the UI renders with JavaScript: a virtual-time budget lets it fetch and draw before the shot
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={profile}",
               f"--host-resolver-rules=MAP {BROWSER_HOST} 127.0.0.1",
               f"--window-size={size[0]},{size[1]}", f"--virtual-time-budget={wait_ms}", f"--screenshot={png}", url]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
    if not png.exists():
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise EkyaError(f"chromium wrote no screenshot (exit {done.returncode}: {last})")
    return png
