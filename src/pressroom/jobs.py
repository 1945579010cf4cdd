"""Content hashes per output job, so a rebuild re-renders only what its inputs changed."""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from pressroom import __version__, environment
from pressroom.errors import RenderError
from pressroom.fastpath import MANIFEST, file_digest
from pressroom.model import Publication
from pressroom.render.pagemap import HandoutPages
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
    # The handout's layout: the PDF's, and the ebook's print page list when it has one.
    layout = f"paper={cfg.paper} print_shop={cfg.print_shop}"
    keys: dict[Job, str] = {}
    if "epub" in formats:
        keys[Job("epub")] = _digest(book_inputs, layout if cfg.epub.page_list else "")
    if "pdf" in formats:
        keys[Job("pdf")] = _digest(book_inputs, layout)
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


def handout_key(pub: Publication, theme: Theme) -> str:
    """The key of the handout's layout (the PDF job's key), under which its page map is kept."""
    return job_keys(pub, theme, ("pdf",))[Job("pdf")]


def cached_page_map(manifest: dict, key: str) -> HandoutPages | None:
    """The handout's page map kept by an earlier build, if it was laid out from the same
    inputs (so an ebook-only rebuild need not lay the handout out again)."""
    entry = manifest.get("page_map") or {}
    return HandoutPages.from_json(entry.get("pages")) if entry.get("key") == key else None


def manifest_bytes(jobs: dict[str, dict], page_map: dict | None = None,
                   fast: dict | None = None) -> str:
    """Serialise the manifest (sorted, so it is reproducible too); ``page_map`` is
    ``{"key": handout key, "pages": HandoutPages.to_json()}``; ``fast`` is the record a no-op
    rebuild is decided from (fastpath.py), when the build left one."""
    data: dict = {"version": __version__, "jobs": jobs}
    if page_map:
        data["page_map"] = page_map
    if fast is not None:
        data["fast"] = fast
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


class PageMap:
    """The handout's page map for this build's ebook: given (cached from an earlier build),
    else handed over by this build's PDF job as soon as the handout is laid out (from a worker
    process through ``channel``), else laid out for the ebook alone. ``made`` is a map this
    build laid out, for the cache."""

    def __init__(self, cached: HandoutPages | None = None, channel=None) -> None:
        self.pages: HandoutPages | None = cached
        self.made: HandoutPages | None = None
        self.channel = channel
        self.pdf_failed = False
        self.laid_out: Callable[[], None] | None = None  # called after put()

    def put(self, pages: HandoutPages) -> None:
        """Called by the PDF job with the laid-out handout's page map."""
        self.pages = self.made = pages
        if self.channel is not None:
            self.channel.put(pages)
        if self.laid_out is not None:
            self.laid_out()

    def receive(self) -> None:
        """Take the page map the PDF worker sent (None: the PDF failed before its layout)."""
        self.pages = self.made = self.channel.get()
        self.pdf_failed = self.pages is None

    def get(self, pub: Publication, theme: Theme) -> HandoutPages | None:
        """The page map: waits for the PDF worker when one is laying the handout out."""
        if self.pages is None and self.channel is not None:
            self.receive()
        if self.pdf_failed:
            raise RenderError("the ebook's page list needs the handout's layout, which failed "
                              "(see the handout's error above)")
        if self.pages is None:
            from pressroom.render.pdf import handout_page_map
            self.pages = self.made = handout_page_map(pub, theme)
        return self.pages
