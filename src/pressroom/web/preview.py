"""The live preview: each newsletter at phone and desktop widths in light and dark, the PDFs as
page images, the EPUB's chapters and the site, rebuilt and reloaded whenever a file under
content/ or the theme changes. A local tool for checking everything before `pressroom send`."""

from __future__ import annotations

import hashlib
import html as htmlmod
import logging
import posixpath
import re
import shutil
import subprocess
import tempfile
import threading
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable
from xml.etree import ElementTree

from flask import Blueprint, Flask, Response, abort, current_app, jsonify, request, send_file

from pressroom import outputs
from pressroom.build import build
from pressroom.config import Config, load_config
from pressroom.content import load_publication
from pressroom.errors import PressroomError, RenderError
from pressroom.mediatypes import media_type
from pressroom.theme import Theme, load_theme
from pressroom.web.screenshots import FRAMES, SAMPLE_NAME, sample_html
from pressroom.web.static import file_response, find_file

log = logging.getLogger(__name__)

PDF_DPI = 60
CACHE = ".preview-cache"
PREVIEW_CSP = ("default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
               "script-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'self'")
EXTENSION = "pressroom-preview"
_DARK = re.compile(r"\(\s*prefers-color-scheme\s*:\s*dark\s*\)")
_LIGHT = re.compile(r"\(\s*prefers-color-scheme\s*:\s*light\s*\)")
_TITLE = re.compile(rb"<title[^>]*>(.*?)</title>", re.S)
_OPF = "{http://www.idpf.org/2007/opf}"


def force_scheme(html: str, scheme: str) -> str:
    """Email HTML whose colour-scheme media queries are fixed to ``scheme`` (light or dark), so
    one page can show both side by side whatever the machine's setting."""
    if scheme != "dark":
        return html
    return _LIGHT.sub("(max-width: 0px)", _DARK.sub("(min-width: 0px)", html))


def pdf_pages(pdf: Path, cache: Path, dpi: int = PDF_DPI) -> list[Path]:
    """PNG images of every page of ``pdf`` (pdftoppm), cached by the PDF's content."""
    digest = hashlib.sha256(pdf.read_bytes()).hexdigest()[:16]
    folder = cache / f"{pdf.stem}-{dpi}-{digest}"
    if not folder.is_dir():
        if shutil.which("pdftoppm") is None:
            raise RenderError("PDF page images need pdftoppm: apt-get install poppler-utils")
        cache.mkdir(parents=True, exist_ok=True)
        work = Path(tempfile.mkdtemp(prefix=".pages-", dir=cache))
        try:
            subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(work / "page")],
                           check=True, capture_output=True, timeout=300)
            work.rename(folder)
        except subprocess.CalledProcessError as exc:
            detail = (exc.stderr.decode(errors="replace").strip().splitlines() or ["no output"])
            raise RenderError(f"pdftoppm could not read {pdf.name}: {detail[-1]}") from exc
        except OSError:
            if not folder.is_dir():  # another request won the race if it is there now
                raise
        finally:
            shutil.rmtree(work, ignore_errors=True)
        for old in cache.glob(f"{pdf.stem}-{dpi}-*"):
            if old != folder:
                shutil.rmtree(old, ignore_errors=True)
    return sorted(folder.glob("page-*.png"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))


@dataclass
class Book:
    """A built EPUB held in memory: its files and its spine, in reading order."""

    files: dict[str, bytes]
    chapters: list[tuple[str, str]]  # (path inside the book, title)

    @classmethod
    def read(cls, path: Path) -> "Book":
        """Read an EPUB: every file, and the spine's documents with their <title>s."""
        with zipfile.ZipFile(path) as zf:
            files = {info.filename: zf.read(info) for info in zf.infolist() if not info.is_dir()}
        container = ElementTree.fromstring(files["META-INF/container.xml"])
        opf_path = next(el.get("full-path", "") for el in container.iter()
                        if el.tag.endswith("rootfile"))
        opf = ElementTree.fromstring(files[opf_path])
        base = posixpath.dirname(opf_path)
        items = {el.get("id", ""): el.get("href", "") for el in opf.iter(f"{_OPF}item")}
        chapters = []
        for ref in opf.iter(f"{_OPF}itemref"):
            href = posixpath.normpath(posixpath.join(base, items[ref.get("idref", "")]))
            m = _TITLE.search(files.get(href, b""))
            title = htmlmod.unescape(m.group(1).decode("utf-8").strip()) if m else href
            chapters.append((href, title or href))
        return cls(files, chapters)


@dataclass
class Preview:
    """The preview's state: the current config, the build number and the last build error."""

    config: Config
    version: int = 0
    error: str | None = None
    built_at: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _book: tuple[tuple[int, int], Book] | None = None

    @property
    def cache(self) -> Path:
        """Where page images are kept between runs."""
        return self.config.out / CACHE

    def rebuild(self) -> None:
        """Build everything that changed; a failure is kept for the page to show, not raised."""
        with self._lock:
            started = time.perf_counter()
            try:
                # Re-read publication.yaml (it may be what changed), keeping the output folder.
                config = load_config(self.config.project).with_overrides(out=self.config.out)
                # Serial: this process has threads (the server), so no forking here.
                result = build(config, parallel=False)
                self.config, self.error = config, None
                log.info("preview rebuilt in %.1f s (%s)", time.perf_counter() - started,
                         ", ".join(result.rendered) or "nothing changed")
            except PressroomError as exc:
                self.error = exc.message
                log.error("preview build failed: %s", exc.message)
            try:  # page images now, so the page that reloads next shows at once
                for pdf in self.pdfs():
                    pdf_pages(pdf, self.cache)
            except PressroomError as exc:  # shown on the page, beside the PDFs
                log.warning("%s", exc.message)
            self.version += 1
            self.built_at = time.strftime("%H:%M:%S")

    def folders(self) -> list[Path]:
        """What the preview watches: content/ and every folder of the theme."""
        try:
            return [self.config.content_dir, *load_theme(self.config).folders]
        except PressroomError:  # a broken theme setting: watch the project's themes instead
            return [self.config.content_dir, self.config.project / "themes"]

    def watch(self, stop: threading.Event, ready: threading.Event | None = None) -> None:
        """Rebuild whenever a file under content/ or the theme changes, until ``stop`` is set.

        The operating system reports the changes (watchfiles: inotify on Linux); nothing is
        polled. ``ready`` is set once the watch is in place. A change of publication.yaml may
        change the theme, so the folder list is read again after each rebuild.
        """
        from watchfiles import watch

        while not stop.is_set():
            folders = [f for f in self.folders() if f.is_dir()]
            # rust_timeout makes the first (empty) yield say "watching now"; later ones are
            # ignored. step: how long a burst of writes (an editor saving) may go quiet.
            for changes in watch(*folders, stop_event=stop, yield_on_timeout=True,
                                 rust_timeout=200, step=100, raise_interrupt=False):
                if ready is not None:
                    ready.set()
                if changes:
                    log.info("change detected; rebuilding")
                    self.rebuild()
                    if [f for f in self.folders() if f.is_dir()] != folders:
                        break  # watch the new theme's folders

    def pdfs(self) -> list[Path]:
        """The built PDFs (handout, quick reference) that exist."""
        return [self.config.out / n for n in outputs.download_names(self.config)
                if n.endswith(".pdf") and (self.config.out / n).is_file()]

    def book(self) -> Book | None:
        """The built EPUB, re-read when the file changes; None before the first build."""
        path = self.config.out / outputs.ebook_name(self.config)
        if not path.is_file():
            return None
        st = path.stat()
        key = (st.st_mtime_ns, st.st_size)
        if self._book is None or self._book[0] != key:
            self._book = (key, Book.read(path))
        return self._book[1]


bp = Blueprint("preview", __name__)


def _preview() -> Preview:
    return current_app.extensions[EXTENSION]


def _theme() -> Theme:
    return load_theme(_preview().config)  # per request: the theme may have changed


def _no_store(response: Response) -> Response:
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/")
def index() -> Response:
    """The preview page: every issue in four frames, the PDFs' pages, the EPUB's chapters."""
    preview = _preview()
    cfg = preview.config
    issues, pdfs, problems = [], [], []
    try:
        issues = sorted(load_publication(cfg).newsletters, key=lambda i: i.number)
    except PressroomError as exc:
        problems.append(exc.message)
    for pdf in preview.pdfs():
        try:
            pdfs.append((pdf.name, len(pdf_pages(pdf, preview.cache))))
        except PressroomError as exc:
            problems.append(exc.message)
    book = preview.book()
    built = [i for i in issues if (cfg.out / outputs.issue_path(i.slug)).is_file()]
    page = _theme().render("site/preview/index.html", cfg=cfg, preview=preview, issues=built,
                           frames=FRAMES, sample_name=SAMPLE_NAME, pdfs=pdfs,
                           chapters=book.chapters if book else [], problems=problems,
                           site_built=(cfg.out / "site" / "index.html").is_file())
    return _no_store(Response(page, mimetype="text/html"))


@bp.get("/__version")
def version() -> Response:
    """The build number and last error; the page reloads itself when the number changes."""
    preview = _preview()
    return _no_store(jsonify(version=preview.version, error=preview.error))


@bp.get("/preview.<kind>")
def asset(kind: str) -> Response:
    """The preview page's own stylesheet and script, from the theme."""
    if kind not in ("css", "js"):
        abort(404)
    name = f"preview.{kind}"
    return _no_store(Response(_theme().render(f"site/preview/{name}"),
                              mimetype=media_type(name)))


@bp.get("/email/<slug>")
def email(slug: str) -> Response:
    """A built issue personalised with the sample name, its hosted images served locally,
    in the colour scheme ``?scheme=`` asks for."""
    cfg = _preview().config
    path = cfg.out / outputs.issue_path(slug)
    if not outputs.is_issue_name(slug) or not path.is_file():
        abort(404)
    html = sample_html(cfg, path.read_text(encoding="utf-8"), slug)
    # Hosted images (and links) point at the live site; show the local build instead.
    html = html.replace(f"{outputs.site_url(cfg)}/", "/site/")
    return _no_store(Response(force_scheme(html, request.args.get("scheme", "")),
                              mimetype="text/html"))


@bp.get("/pdf/<name>/<int:number>.png")
def pdf_page(name: str, number: int) -> Response:
    """One page of a built PDF as a PNG image."""
    preview = _preview()
    pdf = next((p for p in preview.pdfs() if p.name == name), None)
    if pdf is None:
        abort(404)
    pages = pdf_pages(pdf, preview.cache)
    if not 1 <= number <= len(pages):
        abort(404)
    return send_file(pages[number - 1], mimetype="image/png", max_age=0)


@bp.get("/epub/<path:path>")
def epub(path: str) -> Response:
    """A file inside the built EPUB (its chapters open in the page's reader frame)."""
    book = _preview().book()
    if book is None or path not in book.files:
        abort(404)
    return _no_store(Response(book.files[path], mimetype=media_type(path)))


@bp.get("/site/", defaults={"path": ""})
@bp.get("/site/<path:path>")
def site(path: str) -> Response:
    """The built site, as the subscription service would serve it (without the service)."""
    target, _folder = find_file(_preview().config.out / "site", path)
    if target is None:
        abort(404)
    return file_response(target, max_age=0)


@bp.after_app_request
def headers(response: Response) -> Response:
    """The preview frames its own pages only."""
    response.headers["Content-Security-Policy"] = PREVIEW_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def create_preview_app(preview: Preview) -> Flask:
    """The preview's Flask app (the page, the frames' sources, and the reload poll)."""
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.extensions[EXTENSION] = preview
    app.register_blueprint(bp)
    return app


def run_preview(config: Config, host: str = "127.0.0.1", port: int = 8001,
                on_ready: Callable[[str], None] | None = None) -> None:
    """Build once, then serve the preview and rebuild on changes until interrupted.

    ``on_ready(url)`` is called once the server listens (``port=0`` picks a free port).
    """
    from werkzeug.serving import make_server

    preview = Preview(config)
    preview.rebuild()
    server = make_server(host, port, create_preview_app(preview), threaded=True)
    stop = threading.Event()
    watcher = threading.Thread(target=preview.watch, args=(stop,), name="preview-watch",
                               daemon=True)
    watcher.start()
    url = f"http://{host}:{server.server_port}/"
    log.info("preview at %s", url)
    if on_ready:
        on_ready(url)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        watcher.join(timeout=5)
