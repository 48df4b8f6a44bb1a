"""The ``hydra/launcher=ekya_ray`` config node (its keys are documented here, where Hydra reads them)."""

# no `from __future__ import annotations`: Hydra's plugin scan runs this module before it is in
# sys.modules, where dataclasses would look string annotations up
from dataclasses import dataclass, field

from hydra.core.config_store import ConfigStore


@dataclass
class EkyaRayLauncherConf:
    """Where the cells run and what each one books; ``python -m ekya -m ... hydra/launcher=ekya_ray``."""

    _target_: str = "hydra_plugins.ekya_ray_launcher.launcher.EkyaRayLauncher"
    # Ray cluster to join ("auto", "host:6379" or "ray://host:10001"); null starts a Ray of this
    # process's own on 127.0.0.1 for the sweep and stops it when the sweep ends. No files are shipped:
    # every node must see the working directory and the installed ekya at the same paths as the driver.
    address: str | None = None
    # longest wait in seconds for the cluster at address to answer (a TCP connect to the address as
    # typed, then Ray's own GCS client); one that does not answer ends the sweep, before any cell runs,
    # with one line naming hydra.launcher.address
    connect_timeout_s: float = 30.0
    # CPUs Ray books for each cell (a cell waits until that many are free); match it with threads=
    num_cpus: float = 1.0
    # custom Ray resources each cell books, e.g. {big_memory: 1}; the cluster's nodes must declare them
    resources: dict[str, float] = field(default_factory=dict)
    # CPUs of the local Ray started when address is null (null = every core of this machine)
    local_cpus: int | None = None
    # object store of the local Ray in MiB (cells only send their configs and results through it)
    object_store_mb: int = 100


ConfigStore.instance().store(group="hydra/launcher", name="ekya_ray", node=EkyaRayLauncherConf, provider="ekya")
