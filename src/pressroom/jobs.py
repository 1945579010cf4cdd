"""Content hashes per output job, so a rebuild re-renders only what its inputs changed."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

from pressroom import __version__, environment
from pressroom.fastpath import MANIFEST, file_digest
from pressroom.model import Publication
from pressroom.theme import Theme

log = logging.getLogger(__name__)
__all__ = ["MANIFEST", "Job", "job_keys", "load_manifest", "up_to_date", "manifest_bytes"]


@dataclass(frozen=True)
class Job:
    """One unit of rendering: 'epub', 'pdf' or 'email:<issue slug>'."""

    name: str

    @property
    def format(self) -> str:
        """The --format this job belongs to."""
        return self.name.split(":", 1)[0]


def _digest(paths: list[Path], extra: str = "") -> str:
    h = hashlib.sha256()
    # The machine's renderers and fonts too: a warning replayed from the manifest is only ever
    # one this machine would give now.
    h.update(f"{__version__}\n{environment.fingerprint()}\n{extra}\n".encode())
    for path in sorted(set(paths)):
        h.update(str(path).encode() + b"\0" + file_digest(path))
    return h.hexdigest()


def theme_files(theme: Theme) -> list[Path]:
    """Every file of every theme folder (a template or token change invalidates everything)."""
    return [p for folder in theme.folders for p in folder.rglob("*") if p.is_file()]


def job_keys(pub: Publication, theme: Theme, formats: tuple[str, ...]) -> dict[Job, str]:
    """The cache key of every job the requested formats need."""
    cfg = pub.config
    common = [cfg.path, *theme_files(theme), *([theme.logo] if theme.logo else [])]
    book_inputs = [*common, *(a.path for a in pub.articles), *(e.path for e in pub.exercises),
                   *(r.path for r in pub.routines), *(i.path for i in pub.images),
                   pub.cover_image.path]
    keys: dict[Job, str] = {}
    if "epub" in formats:
        keys[Job("epub")] = _digest(book_inputs)
    if "pdf" in formats:
        keys[Job("pdf")] = _digest(book_inputs, f"paper={cfg.paper} print_shop={cfg.print_shop}")
    if "site" in formats:
        from pressroom.render.site import site_inputs

        keys[Job("site")] = _digest([*common, *site_inputs(pub)])
    if "email" in formats:
        for issue in pub.newsletters:
            inputs = [*common, issue.path, *(e.path for e in issue.featured),
                      *(e.illustration.path for e in issue.featured)]
            keys[Job(f"email:{issue.slug}")] = _digest(inputs)
    return keys


def load_manifest(out: Path) -> dict:
    """The previous build's jobs: {job name: {"key", "files", "warnings"}}."""
    try:
        data = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) and data.get("version") == __version__ else {}


def up_to_date(manifest: dict, job: Job, key: str, out: Path) -> bool:
    """True when the job's key is unchanged and all its files are still there."""
    entry = manifest.get("jobs", {}).get(job.name)
    return bool(entry and entry.get("key") == key
                and all((out / f).is_file() for f in entry.get("files", [])))


def manifest_bytes(jobs: dict[str, dict], fast: dict | None = None) -> str:
    """Serialise the manifest (sorted, so it is reproducible too); ``fast`` is the record a
    no-op rebuild is decided from (fastpath.py), when the build left one."""
    data: dict = {"version": __version__, "jobs": jobs}
    if fast is not None:
        data["fast"] = fast
    return json.dumps(data, indent=1, sort_keys=True) + "\n"
