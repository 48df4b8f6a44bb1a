"""Start a local Ray or join a cluster, locked down: loopback only, no dashboard, no usage stats.

Ray is imported here, once the environment is set (``init_local``, ``join``), and by the other
modules of this package only after that, so runs on other runtimes never pay for it; the sweep
launcher and the tests start Ray through this module too. The environment is set before the first
``import ray``: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is the one 2.60 lever that keeps every
listener of a single-machine Ray on 127.0.0.1 (``_node_ip_address="127.0.0.1"`` alone is rewritten
to the routable address), and a fresh ``ray.init`` turns token authentication on unless
``RAY_AUTH_MODE`` says otherwise. Joining a cluster leaves the node address alone (but for a
loopback address, which keeps the driver on loopback too, so Ray does not rewrite the address typed)
and never turns authentication off: a cluster started with ``RAY_AUTH_MODE=token`` expects the token
in ``RAY_AUTH_TOKEN`` (or ``~/.ray/auth_token``) of this process. Joining is bounded: a cluster that
does not answer within ``runtime.connect_timeout_s`` fails the run in one line (``check_address``).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ekya.errors import EkyaError


@dataclass(frozen=True)
class Accelerator:
    """One physical (or, on CPU machines, logical) accelerator: the node it is on and its Ray resource."""

    index: int
    node: str
    local_index: int

    @property
    def resource(self) -> str:
        """The custom resource of capacity 1.0 that books shares of this accelerator."""
        return f"ekya_{self.node}_acc{self.local_index}"


def accelerators_of(nodes: Mapping[str, int]) -> list[Accelerator]:
    """The cluster's accelerators in plan order: node by node as listed, then by local index."""
    out: list[Accelerator] = []
    for node, count in nodes.items():
        name = str(node)
        if not name or not all(c.isalnum() or c in "_-" for c in name):
            raise EkyaError(f"runtime.nodes: node name {name!r} must be letters, digits, '_' or '-' "
                            "(it becomes the Ray resource ekya_<node>_acc<i>)")
        if isinstance(count, bool) or int(count) != count or int(count) < 1:
            raise EkyaError(f"runtime.nodes.{name}={count!r}: the number of accelerators must be an integer >= 1")
        out += [Accelerator(len(out) + i, name, i) for i in range(int(count))]
    if not out:
        raise EkyaError("runtime.nodes is empty; list each node's accelerators, e.g. runtime.nodes={local: 1}")
    return out


def lock_down(local: bool, key: str = "runtime.address") -> None:
    """The environment a locked-down Ray needs; call before ``import ray`` (later calls change nothing there).

    ``local``: this process will start a Ray of its own, which must stay on loopback; ``key`` names the
    config key to set instead when ray was imported too early for that.
    """
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if local:
        if "ray" in sys.modules and os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
            raise EkyaError(f"{key}=null: ray was imported before ekya could keep its local Ray on loopback; set "
                            f"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray, or pass {key}")
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")


#: the longest wait for a Ray cluster the user named, unless the config says otherwise (runtime.connect_timeout_s)
CONNECT_TIMEOUT_S = 30.0

#: run in a child process, which the parent kills at the bound: Ray's own GCS client, which (in 2.60) waits
#: at least 40 s before it gives up on a port where something other than a Ray GCS listens, logging from C++
_GCS_PROBE = """
import sys
from ray._private.services import canonicalize_bootstrap_address_or_die
from ray._raylet import GcsClient
address = sys.argv[1]
try:
    address = canonicalize_bootstrap_address_or_die(address) if address == "auto" else address
    print(address, flush=True)
    GcsClient(address=address).cluster_id
except Exception as e:
    print(f"{type(e).__name__}: {e}".strip().splitlines()[0])
    sys.exit(1)
"""


def _host_port(address: str) -> tuple[str, int] | None:
    """The host and port of ``HOST:PORT`` or ``ray://HOST:PORT`` (an IPv6 host in brackets), or None (``auto``)."""
    host, sep, port = address.split("://", 1)[-1].rstrip("/").rpartition(":")
    if not sep or not host or not port.isdigit():
        return None
    return host.strip("[]"), int(port)


def is_loopback(address: str) -> bool:
    """Whether a Ray address names this machine's loopback interface (127.0.0.0/8, ::1 or localhost)."""
    hp = _host_port(address)
    if hp is None:
        return False
    try:
        return hp[0] == "localhost" or ipaddress.ip_address(hp[0]).is_loopback
    except ValueError:
        return False


def unanswered(address: str, timeout_s: float) -> str | None:
    """Why no Ray cluster answers at ``address`` within ``timeout_s`` seconds, or None when one does.

    First a TCP connect to the host and port as typed (refused at once where nothing listens), then,
    for a GCS address, Ray's own GCS client in a child process killed at the bound. A Ray Client
    address (``ray://``) gets the TCP connect only: the client bounds its own retries.
    """
    deadline = time.monotonic() + timeout_s
    hp = _host_port(address)
    if hp is not None:
        try:
            socket.create_connection(hp, timeout=timeout_s).close()
        except TimeoutError:
            return f"no TCP answer from {hp[0]}:{hp[1]}"
        except OSError as e:
            return f"{type(e).__name__}: {e.strerror or e}"
    if address.startswith("ray://"):
        return None
    try:
        probe = subprocess.run([sys.executable, "-c", _GCS_PROBE, address], capture_output=True, text=True,
                               timeout=max(deadline - time.monotonic(), 0.1))
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        if hp is None and out.strip():  # "auto": say what Ray made of it
            return f"Ray resolves it to {out.split()[0]}, where no Ray GCS answered"
        return "something accepts connections there, but no Ray GCS answered" if hp else "no Ray GCS answered"
    if probe.returncode != 0:
        lines = probe.stdout.strip().splitlines()
        return lines[-1] if lines else f"Ray's GCS client exited with status {probe.returncode}"
    return None


def check_address(key: str, address: str, timeout_s: float) -> None:
    """Fail with one line naming ``key`` and the address as typed unless a Ray cluster answers there in time."""
    why = unanswered(address, timeout_s)
    if why is None:
        return
    # Ray 2.60 binds a head's listeners to the node's network address; only a head started with
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 listens on loopback (tests, the local Ray of address null)
    hint = (" (a plain `ray start --head` listens on the address it prints, not on loopback)"
            if is_loopback(address) else "")
    raise EkyaError(f"{key}={address!r}: no Ray cluster answered within {timeout_s:g} s ({why}); start one with "
                    f"`ray start --head` or fix the address{hint}")


@dataclass
class Connection:
    """This process's Ray: whether this module started it (and so shuts it down) and its accelerators."""

    owned: bool
    accelerators: list[Accelerator]
    address: str

    def close(self) -> None:
        """Shut Ray down if this process started it."""
        import ray

        if self.owned and ray.is_initialized():
            ray.shutdown()


def init_local(*, num_cpus: int | None, object_store_mb: int, resources: Mapping[str, float] | None = None,
               driver_logs: bool = False, key: str = "runtime.address") -> None:
    """Start a fresh single-node Ray of this process's own on loopback, no dashboard, no usage stats.

    ``address="local"`` never attaches to a Ray that happens to run on this machine. ``driver_logs``:
    the workers' output is printed here and Ray sets up its own logger (a sweep's cells report that way).
    ``key``: the config key a user error names.
    """
    lock_down(local=True, key=key)
    import ray

    ray.init(address="local", num_cpus=num_cpus, resources=dict(resources) if resources else None,
             include_dashboard=False,
             object_store_memory=int(object_store_mb) * 2 ** 20, log_to_driver=driver_logs,
             logging_level=logging.WARNING, configure_logging=driver_logs)


def join(address: str, *, key: str, timeout_s: float, driver_logs: bool = False, hint: str = "") -> None:
    """Join the Ray cluster at ``address``: one line naming ``key`` when none answers there within ``timeout_s``.

    The bounded probe (``check_address``) comes first: ``ray.init`` alone retries an address where no
    cluster answers for many minutes.
    """
    check_address(key, address, timeout_s)
    if is_loopback(address) and "ray" not in sys.modules:
        # a driver joining a cluster on loopback must be on loopback too: else Ray rewrites the address
        # typed into this machine's network address, where nothing of that cluster listens
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    lock_down(local=False)
    import ray

    try:
        ray.init(address=address, log_to_driver=driver_logs, logging_level=logging.WARNING,
                 configure_logging=driver_logs)
    except (ConnectionError, RuntimeError) as e:  # what ray.init raises for a cluster it cannot join
        if ray.is_initialized():
            ray.shutdown()
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise EkyaError(f"{key}={address!r}: could not join the Ray cluster there ({first}); check the address "
                        f"`ray start --head` printed{hint}") from None


def running() -> bool:
    """Whether this process already runs a Ray (``ray.init`` in a test, a notebook or a sweep's cell)."""
    return "ray" in sys.modules and bool(sys.modules["ray"].is_initialized())


def connect(address: str | None, nodes: Mapping[str, int], num_cpus: int | None,
            object_store_mb: int, connect_timeout_s: float = CONNECT_TIMEOUT_S) -> Connection:
    """Start a single-node Ray on loopback (address None), or join the cluster at ``address``; check its accelerators.

    A Ray this process already runs (``ray.init`` in a test or a notebook) is used as it is. Joining
    fails within ``connect_timeout_s`` seconds, in one line, when no cluster answers at ``address``.
    """
    accs = accelerators_of(nodes)
    owned = not running()
    if owned and address is None:
        if len(set(a.node for a in accs)) > 1:
            raise EkyaError(f"runtime.nodes lists {len(set(a.node for a in accs))} nodes but runtime.address is "
                            "null (a local single-node Ray); start the cluster and pass runtime.address")
        init_local(num_cpus=num_cpus, object_store_mb=object_store_mb, resources={a.resource: 1.0 for a in accs})
    elif owned:
        join(str(address), key="runtime.address", timeout_s=connect_timeout_s)
    import ray

    total = ray.cluster_resources()
    missing = [a.resource for a in accs if abs(float(total.get(a.resource, 0.0)) - 1.0) > 1e-9]
    if missing:
        conn = Connection(owned, accs, str(address))
        conn.close()
        raise EkyaError(f"runtime.nodes: the Ray cluster has no resource {missing[0]!r} of capacity 1 "
                        f"({len(missing)} missing); start that node with "
                        f"ray start --resources='{{\"{missing[0]}\": 1}}' or fix runtime.nodes")
    return Connection(owned, accs, str(address))


def node_of_resource(resource: str) -> dict[str, Any] | None:
    """The Ray node (as ``ray.nodes()`` lists it) that holds a custom resource, or None."""
    import ray

    for node in ray.nodes():
        if node.get("Alive") and resource in node.get("Resources", {}):
            return node
    return None
