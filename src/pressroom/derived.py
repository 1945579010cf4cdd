"""A read-through cache for derived images (the cover PNG, email rasters) that are slow to
make and depend only on their own inputs: ``<project>/.pressroom/cache/<sha256>.<ext>``."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Callable

from pressroom import __version__
from pressroom.output import write_atomic

log = logging.getLogger(__name__)


def cache_dir(project: Path) -> Path:
    """Where derived assets are kept (git-ignored, outside output/)."""
    return project / ".pressroom" / "cache"


def cached(project: Path, key: bytes, ext: str, make: Callable[[], bytes]) -> bytes:
    """``make()``'s bytes, from the cache when the same ``key`` was made before.

    The key covers every input (the caller passes e.g. the SVG source and the size); a
    damaged or unwritable cache only costs time, never a wrong result.
    """
    digest = hashlib.sha256(__version__.encode() + b"\0" + key).hexdigest()
    path = cache_dir(project) / f"{digest}.{ext}"
    try:
        return path.read_bytes()
    except OSError:
        pass
    data = make()
    try:
        write_atomic(path, data)
    except OSError as exc:
        log.debug("could not cache %s: %s", path, exc)
    return data
