"""A rebuild with nothing to do, decided before the CLI, the content loader or any renderer is
imported: from the last build's manifest and a digest of every file under the project's
content and theme folders.

A full build records that digest (:func:`stamp`, taken *before* it reads its inputs) together
with the formats it left up to date and without warnings. When the same ``pressroom build``
finds the same digest, the outputs are exactly what a full no-op build would leave, so it says
so and stops; anything unusual (other options, warnings to replay, a missing output or download
copy, another machine fingerprint) falls through to the full build. Standard library only.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

from pressroom import __version__, environment

MANIFEST = ".pressroom-cache.json"  # the build manifest's name in the output folder
# Options a no-op build may be given; anything else (--strict, --paper, --force...) goes the
# full way.
_FLAGS = {"--no-validate", "--validate"}
_VALUED = {"--project", "--out", "--format"}


_DIGESTS: dict[str, bytes] = {}


def file_digest(path: str | Path) -> bytes:
    """The SHA-256 of a file's bytes, read once per build: the stamp and the job keys (jobs.py)
    hash the same files. A build starts with :func:`forget_digests`, so a long-running process
    (the preview) never sees an old digest."""
    key = str(path)
    if key not in _DIGESTS:
        with open(key, "rb") as fh:
            _DIGESTS[key] = hashlib.sha256(fh.read()).digest()
    return _DIGESTS[key]


def forget_digests() -> None:
    """Drop the digests :func:`file_digest` remembers (at the start of every build)."""
    _DIGESTS.clear()


def stamp(roots: list[Path]) -> str:
    """A digest of every file under ``roots`` (path and bytes; a missing root counts too), the
    Pressroom version, this machine's renderer fingerprint and ``SOURCE_DATE_EPOCH``."""
    h = hashlib.sha256(f"{__version__}\n{environment.fingerprint()}\n"
                       f"{os.environ.get('SOURCE_DATE_EPOCH', '')}\n".encode())
    for root in roots:
        h.update(f"\0root {root}\0".encode())
        if not root.is_dir():
            h.update(b"missing")
            continue
        for dirpath, dirs, names in os.walk(root):
            dirs.sort()
            for name in sorted(names):
                path = os.path.join(dirpath, name)
                h.update(path.encode() + b"\0" + file_digest(path))
    return h.hexdigest()


def _options(argv: list[str]) -> dict[str, list[str]] | None:
    """``build``'s options when they are all ones a no-op may take, else None."""
    if not argv or argv[0] != "build":
        return None
    opts: dict[str, list[str]] = {"--format": []}
    rest = argv[1:]
    while rest:
        arg = rest.pop(0)
        if arg in _FLAGS:
            continue
        if arg not in _VALUED or not rest:
            return None
        opts.setdefault(arg, []).append(rest.pop(0))
    if len(opts.get("--project", [])) > 1 or len(opts.get("--out", [])) > 1:
        return None
    return opts


def noop_report(argv: list[str]) -> str | None:
    """What ``pressroom build`` prints when ``argv`` asks for a build whose inputs are
    byte-identical to the last one's (and nothing in the output folder is missing), else None.

    Example::

        report = noop_report(["build", "--project", "demo"])  # None: build the full way
    """
    started = time.perf_counter()
    opts = _options(argv)
    if opts is None:
        return None
    project = Path(opts.get("--project", ["."])[0]).resolve()
    out = Path(opts["--out"][0]).resolve() if "--out" in opts else project / "output"
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
        fast, jobs = manifest["fast"], manifest["jobs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(fast, dict) or not {"stamp", "roots", "jobs", "downloads"} <= fast.keys():
        return None
    formats = sorted(set(opts["--format"])) or fast.get("all")
    if (manifest.get("version") != __version__ or fast.get("project") != str(project)
            or fast.get("out") != str(out) or formats != fast.get("formats")):
        return None
    if not fast["jobs"] or not _outputs_present(out, jobs, fast):
        return None
    forget_digests()  # this process may have built before (tests, the preview)
    if stamp([Path(r) for r in fast["roots"]]) != fast["stamp"]:
        return None
    took = time.perf_counter() - started
    return (f"Up to date (unchanged inputs): {', '.join(fast['jobs'])}\n"
            f"Wrote 0 file(s) in {took:.1f} s.\n")


def _outputs_present(out: Path, jobs: dict, fast: dict) -> bool:
    """Every file of the recorded jobs exists, and every download copy equals its source."""
    for name in fast["jobs"]:
        if name not in jobs or not all((out / f).is_file() for f in jobs[name]["files"]):
            return False
    for source, copy in fast["downloads"]:  # the full build copies these when they differ
        try:
            data = (out / source).read_bytes()
        except OSError:
            continue  # no source: the full build copies nothing either
        try:
            if (out / copy).read_bytes() != data:
                return False
        except OSError:
            return False
    return True
