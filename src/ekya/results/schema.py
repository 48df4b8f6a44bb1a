"""The names ekya writes to MLflow and the types the analysis reads them back as: one contract, two sides.

The writers (the composition root, ``results/tracking.py``, ``execution/loop.py``) and the reader
(``ekya.analysis``) import these names, so a renamed tag fails at import, not in a figure. MLflow keeps
every tag and param as text; ``CELL`` says which type each cell tag stands for.
"""

from __future__ import annotations

# -- tags of a parent run (one cell)
RUNTIME = "runtime"
SCHEDULER = "scheduler"
ACCELERATORS = "accelerators"
STREAMS = "streams"
SEED = "seed"
SOURCE = "source"
GIT_SHA = "git_sha"
RUN_DIR = "run_dir"
#: the fingerprint of the resolved config (ekya.sweeps.fingerprint): a rerun of the cell finds its twin by it
CONFIG_HASH = "config_hash"
#: what the run measured with, ``none`` for the shipped system (runtime.instrument)
INSTRUMENT = "instrument"
#: why a run failed, on the parent and every child
ERROR = "error"
# -- a child run (one camera): its tag and its one param
STREAM = "stream"
# -- MLflow's own tags
PARENT_RUN = "mlflow.parentRunId"
RUN_NAME = "mlflow.runName"

#: the tags that say which cell a parent run is, in the order tables sort by, each with the type it stands for
CELL: dict[str, type] = {RUNTIME: str, SCHEDULER: str, ACCELERATORS: int, STREAMS: int, SEED: int}
#: the cell tags the MLflow runs table shows side by side
CELL_TAGS = (SCHEDULER, ACCELERATORS, STREAMS, SEED)

# -- metrics: per window (step = window) on every run, and the headline logged once on the parent
ACCURACY = "accuracy"
NORETRAIN_ACCURACY = "noretrain_accuracy"
SCHEDULER_SECONDS = "scheduler_seconds"
RETRAIN_COST = "retrain_cost"
MEAN_ACCURACY = "mean_accuracy"
MEAN_NORETRAIN_ACCURACY = "mean_noretrain_accuracy"
HEADLINE = (MEAN_ACCURACY, MEAN_NORETRAIN_ACCURACY)
#: the prefix of the continual-learning metrics (forgetting, BWT: ekya.results.continual)
CONTINUAL_PREFIX = "cl_"
