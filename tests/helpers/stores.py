"""An empty MLflow store, created once per test process and copied where a test's runs will track.

MLflow takes several seconds to create a SQLite store (it runs every schema migration); a copy of an
empty one takes milliseconds and is the same file MLflow would have made.
"""

from __future__ import annotations

import atexit
import logging
import shutil
import tempfile
from pathlib import Path

_template: Path | None = None


def empty_store() -> Path:
    """The process's empty ``mlflow.db`` (created on first use, removed at exit)."""
    global _template
    if _template is None:
        from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

        folder = Path(tempfile.mkdtemp(prefix="ekya-test-mlflow-"))
        atexit.register(shutil.rmtree, folder, True)
        # the Default experiment's artifact folder is fixed at creation: keep it out of the working directory;
        # MLflow and alembic log the migrations at INFO, which would land in the stderr of whichever test
        # happens to come first
        logging.disable(logging.INFO)
        try:
            SqlAlchemyStore(f"sqlite:///{folder}/mlflow.db", str(folder / "mlruns"))
        finally:
            logging.disable(logging.NOTSET)
        _template = folder / "mlflow.db"
    return _template


def seed_store(folder: Path, name: str = "mlflow.db") -> Path:
    """Put an empty MLflow store at ``folder/name`` unless a store is already there; its path."""
    path = Path(folder) / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(empty_store(), path)
    return path
