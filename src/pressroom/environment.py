"""The parts of this machine that change what a build renders or warns about.

A build's cache keys include :func:`fingerprint`, so outputs and the warnings recorded with them
(replayed when a job is skipped as unchanged) always come from the current machine: installing
``libharfbuzz-subset0``, upgrading WeasyPrint or adding a font makes the next build render again
and judge ``--strict`` on fresh warnings.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
from functools import lru_cache
from pathlib import Path

# The libraries whose version changes rendered bytes or warnings.
RENDERERS = ("weasyprint", "pydyf", "fonttools", "uharfbuzz", "resvg-py",
             "mjml-python", "css-inline", "ebooklib", "markdown-it-py", "mdit-py-plugins",
             "jinja2", "segno", "pillow")
# Where fontconfig finds the machine's fonts (fallbacks for characters a theme font lacks).
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "~/.fonts", "~/.local/share/fonts")


# Where the dynamic linker finds libharfbuzz-subset on Debian and most other systems.
LIB_DIRS = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib64", "/usr/lib",
            "/lib/x86_64-linux-gnu", "/lib64", "/lib", "/usr/local/lib")


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


@lru_cache(maxsize=1)
def _installed() -> dict[str, str]:
    """{normalised distribution name: version} from the ``*.dist-info`` folder names on
    ``sys.path``, first one wins as for imports: what importlib.metadata reports, without
    its ~30-100 ms import and per-name path scans (this runs on every build, even a no-op)."""
    found: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if name.endswith(".dist-info") and "-" in name:
                dist, version = name[: -len(".dist-info")].rsplit("-", 1)
                found.setdefault(_norm(dist), version)
    return found


def version(dist: str) -> str:
    """The installed version of distribution ``dist`` ("-" when it is not installed)."""
    return _installed().get(_norm(dist), "-")


def harfbuzz_subset() -> str:
    """The file name of libharfbuzz-subset when installed (WeasyPrint subsets fonts with it,
    else with fontTools, slower and with a warning), else "missing"."""
    for folder in LIB_DIRS:
        try:
            names = sorted(os.listdir(folder))
        except OSError:
            continue
        for name in names:
            if name.startswith("libharfbuzz-subset.so"):
                return name
    return "missing"


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
    facts = {dist: version(dist) for dist in RENDERERS}
    facts["harfbuzz-subset"] = harfbuzz_subset()
    facts["fonts"] = fonts
    return facts


@lru_cache(maxsize=1)
def fingerprint() -> str:
    """One line that changes whenever :func:`describe` does (computed once per process)."""
    return " ".join(f"{k}={v}" for k, v in sorted(describe().items()))
