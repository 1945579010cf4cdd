"""The parts of this machine that change what a build renders or warns about.

A build's cache keys include :func:`fingerprint`, so outputs and the warnings recorded with them
(replayed when a job is skipped as unchanged) always come from the current machine: installing
``libharfbuzz-subset0``, upgrading WeasyPrint or adding a font makes the next build render again
and judge ``--strict`` on fresh warnings.
"""

from __future__ import annotations

import ctypes.util
import hashlib
import os
from functools import lru_cache
from importlib import metadata
from pathlib import Path

# The libraries whose version changes rendered bytes or warnings.
RENDERERS = ("weasyprint", "pydyf", "fonttools", "uharfbuzz", "resvg-py",
             "mjml-python", "css-inline", "ebooklib", "markdown-it-py", "mdit-py-plugins",
             "jinja2", "segno", "pillow")
# Where fontconfig finds the machine's fonts (fallbacks for characters a theme font lacks).
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts")


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "-"


def font_files() -> list[tuple[str, int]]:
    """(path, size) of every font file fontconfig would see in the usual folders."""
    found = []
    for folder in FONT_DIRS:
        root = Path(folder).expanduser()
        if root.is_dir():
            for dirpath, _dirs, names in os.walk(root):
                for name in names:
                    path = os.path.join(dirpath, name)
                    try:
                        found.append((path, os.path.getsize(path)))
                    except OSError:  # a dangling link
                        continue
    return sorted(found)


def describe() -> dict[str, str]:
    """What the fingerprint is made of, readable (versions, subsetter, font set digest)."""
    fonts = hashlib.sha256(repr(font_files()).encode()).hexdigest()[:16]
    facts = {dist: _version(dist) for dist in RENDERERS}
    facts["harfbuzz-subset"] = ctypes.util.find_library("harfbuzz-subset") or "missing"
    facts["fonts"] = fonts
    return facts


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """One line that changes whenever :func:`describe` does (computed once per process)."""
    return " ".join(f"{k}={v}" for k, v in sorted(describe().items()))
