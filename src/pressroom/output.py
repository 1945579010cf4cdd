"""The only module that writes build results: each file via a temp file and ``os.replace``."""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Mapping

log = logging.getLogger(__name__)


def write_atomic(path: Path, data: bytes | str) -> int:
    """Write ``data`` to ``path`` atomically (readers see the old or the new file, never half).

    Returns the number of bytes written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    log.debug("wrote %s (%d bytes)", path, len(payload))
    return len(payload)


def write_all(files: Mapping[Path, bytes | str]) -> dict[Path, int]:
    """Write every file of a finished build (everything was rendered before the first write)."""
    return {path: write_atomic(path, data) for path, data in sorted(files.items())}
