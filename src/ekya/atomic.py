"""One way to replace a file: write a sibling temporary file, fsync it, rename it over the target."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def atomic_write(path: str | Path, data: bytes | str | Callable[[Path], None]) -> Path:
    """Replace ``path`` in one step, so a kill never leaves half a file and two writers never collide.

    ``data`` is the bytes or text to write, or a function that writes the temporary file it is given
    (for writers that want a path, such as ``DataFrame.to_csv`` or ``torch.save``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; the file gets the mode a plain open() would give
    try:
        if callable(data):
            os.close(fd)
            data(tmp)
            with tmp.open("rb+") as f:
                os.fsync(f.fileno())
        else:
            with os.fdopen(fd, "wb") as f:
                f.write(data.encode() if isinstance(data, str) else data)
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
