"""Start a local Ray or join a cluster, locked down: loopback only, no dashboard, no usage stats.

Ray is imported here and only here (and by the actor module, which is loaded after ``connect``),
so runs on other runtimes never pay for it. The environment is set before the first
``import ray``: ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` is the one 2.60 lever that keeps every
listener of a single-machine Ray on 127.0.0.1 (``_node_ip_address="127.0.0.1"`` alone is rewritten
to the routable address), and a fresh ``ray.init`` turns token authentication on unless
``RAY_AUTH_MODE`` says otherwise. Joining a cluster leaves the node address alone and never turns
authentication off: a cluster started with ``RAY_AUTH_MODE=token`` expects the token in
``RAY_AUTH_TOKEN`` (or ``~/.ray/auth_token``) of this process.
"""

from __future__ import annotations

import logging
import os
import sys
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


def lock_down(local: bool) -> None:
    """The environment a locked-down Ray needs; call before ``import ray`` (later calls change nothing there)."""
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    if local:
        if "ray" in sys.modules and os.environ.get("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER") != "0":
            raise EkyaError("ray was imported before the ray runtime could keep it on loopback; set "
                            "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before importing ray, or pass runtime.address")
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")


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


def connect(address: str | None, nodes: Mapping[str, int], num_cpus: int | None,
            object_store_mb: int) -> Connection:
    """Start a single-node Ray on loopback (address None), or join the cluster at ``address``; check its accelerators.

    A Ray this process already runs (``ray.init`` in a test or a notebook) is used as it is.
    """
    accs = accelerators_of(nodes)
    lock_down(local=address is None)
    import ray

    owned = False
    if not ray.is_initialized():
        if address is None:
            if len(set(a.node for a in accs)) > 1:
                raise EkyaError(f"runtime.nodes lists {len(set(a.node for a in accs))} nodes but runtime.address is "
                                "null (a local single-node Ray); start the cluster and pass runtime.address")
            # address="local": always a fresh Ray of our own, never one that happens to run on this machine
            ray.init(address="local", num_cpus=num_cpus, resources={a.resource: 1.0 for a in accs},
                     include_dashboard=False,
                     object_store_memory=int(object_store_mb) * 2 ** 20, log_to_driver=False,
                     logging_level=logging.WARNING, configure_logging=False)
        else:
            try:
                ray.init(address=address, log_to_driver=False, logging_level=logging.WARNING, configure_logging=False)
            except ConnectionError as e:
                raise EkyaError(f"runtime.address={address!r}: no Ray cluster answers there ({e}); start one with "
                                "`ray start --head` and pass its address") from None
        owned = True
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
