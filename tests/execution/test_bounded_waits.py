"""A service the user names (a Ray cluster, an MLflow server) that does not answer fails the run in bounded time.

Each case points a key at 127.0.0.1: a closed port (nothing listens: refused at once) or a silent one
(a socket that accepts connections and never says a word: only a timeout ends the wait). The run
must end within the key's ``connect_timeout_s`` (2 s here) plus the start-up of the entry point, with
exit status 2 and one line naming the key and the address as typed, before any data is generated,
any model trained or any MLflow run opened, and leave no process behind.
"""

from __future__ import annotations

import http.server
import os
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from ekya.errors import EkyaError
from ekya.hydra_compose import compose_config
from ekya.results.tracking import check_server

#: the bound the tests set (runtime.connect_timeout_s, tracking.connect_timeout_s, hydra.launcher.connect_timeout_s)
BOUND = 2.0
#: what the entry point may add to the bound: composing the config and building the parts checked before the
#: runtime, in-process on a loaded 2-core machine
MARGIN = 8.0
TINY = ["experiment=tiny", "threads=1"]


@pytest.fixture
def closed_port() -> int:
    """A port of 127.0.0.1 that nothing listens on (bound once by the OS, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port of 127.0.0.1 that accepts TCP connections (the kernel completes them) and never answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield s.getsockname()[1]


def _children() -> set[int]:
    """The live processes whose parent is this test process (Ray's raylet and GCS would be among them)."""
    out = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == os.getpid() and fields[0] != "Z":
            out.add(int(stat.parent.name))
    return out


def _mlflow_runs(folder: Path) -> int:
    """How many MLflow runs the local store of ``folder`` holds (0 when there is no store)."""
    db = folder / "mlflow.db"
    if not db.exists():
        return 0
    with sqlite3.connect(db) as con:
        return con.execute("select count(*) from runs").fetchone()[0]


def _run_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str],
             *args: str) -> tuple[int, str, float]:
    """``python -m ekya ARGS`` through its entry point, in this process: exit status, stderr, seconds taken."""
    # what any first run in a process pays (torch, Lightning, the runtimes), loaded before the clock starts
    import ekya.callbacks.mlflow
    import ekya.composition
    import ekya.execution.ray.runtime  # noqa: F401
    from ekya.__main__ import cli

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EKYA_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("HYDRA_FULL_ERROR", "0")
    monkeypatch.setattr(sys, "argv", ["ekya", *args])
    capfd.readouterr()
    start = time.monotonic()
    with pytest.raises(SystemExit) as done:
        cli()
    return done.value.code, capfd.readouterr().err, time.monotonic() - start


def _failed_fast(tmp_path: Path, status: int, err: str, took: float, key: str, typed: str) -> None:
    """Exit 2 in time, one line naming the key and the address as typed; nothing generated, trained or tracked."""
    assert status == 2, err[-3000:]
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ekya: error: {key}={typed!r}: "), err[-3000:]
    assert f"within {BOUND:g} s" in lines[0]
    assert took < BOUND + MARGIN, f"took {took:.1f} s"
    assert not (tmp_path / "data").exists()  # failed before the dataset was generated
    assert not list(tmp_path.glob("outputs/**/state.pkl")) and not list(tmp_path.glob("**/*.pt"))
    assert _mlflow_runs(tmp_path) == 0


@pytest.mark.parametrize("port_kind", ["closed", "silent"])
def test_a_ray_address_that_does_not_answer_fails_within_the_bound(port_kind, tmp_path, monkeypatch, capfd,
                                                                   request):
    typed = f"127.0.0.1:{request.getfixturevalue(port_kind + '_port')}"
    before = _children()
    status, err, took = _run_cli(tmp_path, monkeypatch, capfd, "runtime=ray", *TINY, f"runtime.address={typed}",
                                 f"runtime.connect_timeout_s={BOUND:g}")
    _failed_fast(tmp_path, status, err, took, "runtime.address", typed)
    assert "ray start --head" in err
    # no Ray left running: none in this process, no process started by it still alive
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()
    assert _children() <= before


@pytest.mark.parametrize("port_kind", ["closed", "silent"])
def test_an_mlflow_server_that_does_not_answer_fails_within_the_bound(port_kind, tmp_path, monkeypatch, capfd,
                                                                      request):
    typed = f"http://127.0.0.1:{request.getfixturevalue(port_kind + '_port')}"
    status, err, took = _run_cli(tmp_path, monkeypatch, capfd, *TINY, "tracking=server", f"tracking.uri={typed}",
                                 f"tracking.connect_timeout_s={BOUND:g}")
    _failed_fast(tmp_path, status, err, took, "tracking.uri", typed)
    assert "mlflow server" in err


def test_a_tracking_database_that_does_not_answer_fails_within_the_bound(closed_port, tmp_path, monkeypatch, capfd):
    typed = f"postgresql://ekya@127.0.0.1:{closed_port}/runs"
    status, err, took = _run_cli(tmp_path, monkeypatch, capfd, *TINY, "tracking=server", f"tracking.uri={typed}",
                                 f"tracking.connect_timeout_s={BOUND:g}")
    _failed_fast(tmp_path, status, err, took, "tracking.uri", typed)


def test_the_sweep_launcher_bounds_its_wait_for_a_ray_address(silent_port, tmp_path, monkeypatch, capfd):
    typed = f"127.0.0.1:{silent_port}"
    before = _children()
    status, err, took = _run_cli(tmp_path, monkeypatch, capfd, "-m", "runtime=simulate", "~tracking", "seed=0,1",
                                 "hydra/launcher=ekya_ray", f"hydra.launcher.address={typed}",
                                 f"hydra.launcher.connect_timeout_s={BOUND:g}")
    _failed_fast(tmp_path, status, err, took, "hydra.launcher.address", typed)
    assert not list(tmp_path.glob("multirun/**/cell.json"))  # no cell ran
    assert "ray" not in sys.modules or not sys.modules["ray"].is_initialized()
    assert _children() <= before


def test_every_wait_is_bounded_by_30_s_or_less_by_default():
    ray_run = compose_config(["runtime=ray", "tracking=server"])
    assert 0 < ray_run.runtime.connect_timeout_s <= 30
    assert 0 < ray_run.tracking.connect_timeout_s <= 30
    sweep = compose_config(["hydra/launcher=ekya_ray"], return_hydra_config=True)
    assert 0 < sweep.hydra.launcher.connect_timeout_s <= 30


@pytest.mark.parametrize("key", ["runtime.connect_timeout_s", "tracking.connect_timeout_s"])
@pytest.mark.parametrize("value", ["0", "nan"])
def test_a_bound_that_is_no_bound_is_refused(key, value, closed_port, tmp_path, monkeypatch, capfd):
    group, name = key.split(".")
    address = f"{group}.address=127.0.0.1:{closed_port}" if group == "runtime" else "tracking.uri=http://x:1"
    status, err, _ = _run_cli(tmp_path, monkeypatch, capfd, f"{group}={'ray' if group == 'runtime' else 'server'}",
                              *TINY, address, f"{key}={value}")
    lines = err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and lines[0].startswith(f"ekya: error: {key}"), err[-3000:]


@pytest.fixture
def http_server() -> Iterator[Callable[[int], str]]:
    """Start an HTTP server on 127.0.0.1 that answers every GET with the given status; its URL."""
    servers: list[http.server.HTTPServer] = []

    def start(status: int) -> str:
        class Reply(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # the name http.server calls
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args: object) -> None:  # keep the test's stderr clean
                pass

        server = http.server.HTTPServer(("127.0.0.1", 0), Reply)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("status", [200, 401, 404])
def test_a_server_that_answers_passes_the_check(status, http_server):
    # any answer but a server error means a server is there (401: it wants credentials MLflow's client sends)
    check_server(http_server(status), BOUND)


def test_a_server_that_answers_with_a_server_error_is_refused(http_server):
    url = http_server(503)
    with pytest.raises(EkyaError, match=rf"tracking.uri='{url}': .*answered HTTP 503"):
        check_server(url, BOUND)


def test_stores_on_this_machine_are_not_probed(tmp_path):
    for uri in (f"sqlite:///{tmp_path}/mlflow.db", f"file://{tmp_path}/mlruns", str(tmp_path / "mlruns")):
        check_server(uri, BOUND)
