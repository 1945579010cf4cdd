"""EPUBCheck runs beside the other jobs: its JVM starts with the build and warms up on a small
ebook of its own, checks the real ebook as soon as it is rendered, is awaited before anything is
written, and is stopped (its temporary files removed) when the build fails meanwhile. With
PRESSROOM_EPUBCHECK_KEEP=0 that is all; otherwise the JVM is then kept for later builds, whose
checks it answers on a Unix socket (tests/test_epubcheck_kept.py)."""

from __future__ import annotations

import io
import os
import re
import shutil
import zipfile
from pathlib import Path

import pytest

from pressroom.build import build
from pressroom.config import load_config
from pressroom import epubcheck
from pressroom.epubcheck import PendingCheck, run_epubcheck, primer_epub
from pressroom.errors import PressroomError, RenderError
from pressroom.outputs import ebook_name


def alive(pid: int) -> bool:
    """Whether any thread of process ``pid`` still runs: a killed JVM's main thread can be a
    zombie while its other threads (and the files they share) are still going."""
    for stat in Path(f"/proc/{pid}/task").glob("*/stat"):
        try:
            if stat.read_text().rpartition(")")[2].split()[0] not in ("Z", "X"):
                return True
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
    return False


def test_a_build_failing_beside_epubcheck_stops_it_and_writes_nothing(project, monkeypatch):
    """The ebook renders last (it waits for the handout's page map), so what can fail while
    EPUBCheck runs is the handout's drawing in its worker process."""
    from pressroom.render import pdf as pdf_module

    monkeypatch.setenv("PRESSROOM_EPUBCHECK_KEEP", "0")  # not kept: stopped with the build
    started: list[PendingCheck] = []
    running_when_closed: list[bool] = []
    jvms: list[int] = []
    real_init, real_close = PendingCheck.__init__, PendingCheck.close

    def remember(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        started.append(self)
        jvms.append(self._started.pid)

    def close(self):
        running_when_closed.append(self.running)
        real_close(self)

    def drawing_fails(doc, document):
        raise RenderError(f"{document}: the handout could not be drawn")

    jvm_at_step: dict[str, bool] = {}

    def step(name: str) -> None:
        jvm_at_step[name] = bool(started) and started[0].running

    monkeypatch.setattr(PendingCheck, "__init__", remember)
    monkeypatch.setattr(PendingCheck, "close", close)
    monkeypatch.setattr(pdf_module, "write_document", drawing_fails)  # inherited by the fork
    with pytest.raises(PressroomError, match="the handout could not be drawn"):
        build(load_config(project), ("epub", "pdf"), parallel=True, validate=True, on_step=step)
    check = started[0]
    assert jvm_at_step["pdf"] and jvm_at_step["epub"]  # the JVM started before anything rendered
    assert check.warmed  # and it was handed the ebook, not started again
    assert running_when_closed == [True]  # EPUBCheck was still running when the build failed
    assert not alive(jvms[0])  # the JVM was stopped, not left behind
    assert not Path(check._tmp.name).exists()  # nor its copy of the ebook
    assert not (project / "output").exists()


def _broken_ebook() -> bytes:
    """The primer ebook with its text document missing from the package (an EPUBCheck error)."""
    source = zipfile.ZipFile(io.BytesIO(primer_epub()))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "EPUB/content.opf":
                data = data.replace(b'<itemref idref="text"/>', b"").replace(
                    b'<item id="text" href="text.xhtml" media-type="application/xhtml+xml"/>', b"")
            zf.writestr(info, data)
    return out.getvalue()


def _same(result: epubcheck.EpubCheckResult) -> tuple:
    """A verdict without the temporary folder the ebook was checked in."""
    return (result.fatals, result.errors, result.warnings, result.usages,
            [(sev, mid, re.sub(r"\S*/(broken\.epub)", r"\1", text))
             for sev, mid, text in result.messages])


def _warm_check(data: bytes) -> tuple[PendingCheck, epubcheck.EpubCheckResult]:
    with PendingCheck() as check:
        check.submit(data, "broken.epub")
        return check, check.result()


def test_the_warmed_up_jvm_reports_what_a_one_shot_run_reports_and_compiles_once(
        tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("PRESSROOM_EPUBCHECK_KEEP", "0")
    book = tmp_path / "broken.epub"
    book.write_bytes(_broken_ebook())
    expected = run_epubcheck(book)
    assert expected.errors >= 1 and "text.xhtml" in "".join(m[2] for m in expected.messages)
    java, jar = shutil.which("java"), epubcheck.epubcheck_jar()
    assert java and jar
    assert epubcheck.driver_command(java, jar)[-1].endswith("EpubCheckDriver.java")

    first, result = _warm_check(book.read_bytes())  # launched as source; compiles itself
    assert first.warmed and _same(result) == _same(expected)
    command = epubcheck.driver_command(java, jar)
    assert command[-1] == "EpubCheckDriver"  # the compiled class, from the cache
    assert [p.name for p in (tmp_path / "cache/pressroom").iterdir()] == [
        Path(command[-2].split(os.pathsep)[1]).name]  # no half-written temporary folder left

    second, result = _warm_check(book.read_bytes())
    assert second.warmed and _same(result) == _same(expected)


def test_a_warm_up_jvm_that_died_is_replaced_by_a_one_shot_run(tmp_path, monkeypatch):
    monkeypatch.setenv("PRESSROOM_EPUBCHECK_KEEP", "0")
    book = tmp_path / "broken.epub"
    book.write_bytes(_broken_ebook())
    with PendingCheck() as check:
        assert check.running and check._started is not None
        check._started.kill()
        check.submit(book.read_bytes(), book.name)
        result = check.result()
    assert not check.warmed
    assert _same(result) == _same(run_epubcheck(book))


def test_without_java_validate_says_so_and_the_default_build_skips_epubcheck(project, tmp_path,
                                                                             monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "no-tools"))  # no java on PATH
    config = load_config(project)
    with pytest.raises(PressroomError) as caught:
        build(config, ("epub",), validate=True)
    assert caught.value.message == ("--validate needs Java to run EPUBCheck: "
                                    "sudo apt-get install openjdk-17-jre-headless")
    assert not (project / "output").exists()
    result = build(config, ("epub",), validate=None)
    assert result.epubcheck is None  # not run, and not an error
    assert (config.out / ebook_name(config)).is_file()


def test_the_jvm_started_with_the_build_stops_when_the_ebook_is_up_to_date(project,
                                                                           monkeypatch):
    monkeypatch.setenv("PRESSROOM_EPUBCHECK_KEEP", "0")
    config = load_config(project)
    build(config, ("epub",), validate=False)
    started: list[PendingCheck] = []
    real_init = PendingCheck.__init__

    jvms: list[int] = []

    def remember(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        started.append(self)
        jvms.append(self._started.pid)

    monkeypatch.setattr(PendingCheck, "__init__", remember)
    result = build(config, ("epub",), validate=True)
    assert result.rendered == [] and result.epubcheck is None
    assert len(started) == 1 and len(jvms) == 1  # it had started...
    assert not alive(jvms[0])  # ...and was stopped, not left running
    assert not Path(started[0]._tmp.name).exists()


def test_the_pdfs_yield_the_cpu_to_epubcheck(project, monkeypatch, tmp_path):
    """When EPUBCheck checks the ebook, its verdict is what the build waits for last: every PDF
    process (the handout's two halves, the quick reference) runs 10 nicer than the build.
    Without EPUBCheck, or with a JVM kept ready from an earlier build (it has no start-up work
    left to do beside this one), they run at the build's own priority."""
    from pressroom.render import pdf as pdf_module

    monkeypatch.setenv("PRESSROOM_EPUBCHECK_KEEP", "0")
    seen = tmp_path / "niceness"
    real = pdf_module.write_document

    def record(doc, document):
        with open(seen, "a", encoding="utf-8") as fh:  # from each process (O_APPEND)
            fh.write(f"{os.nice(0)}\n")
        return real(doc, document)

    monkeypatch.setattr(pdf_module, "write_document", record)  # inherited by the forks
    base = os.nice(0)
    build(load_config(project), ("epub", "pdf"), parallel=True, validate=True)
    assert seen.read_text().split() == [str(base + 10)] * 3
    seen.unlink()
    shutil.rmtree(project / ".pressroom")
    build(load_config(project), ("epub", "pdf"), parallel=True, validate=False, force=True)
    assert seen.read_text().split() == [str(base)] * 3
    seen.unlink()
    shutil.rmtree(project / ".pressroom")
    monkeypatch.setenv("PRESSROOM_EPUBCHECK_KEEP", "3600")  # the session's kept JVM
    with PendingCheck() as ready:  # make sure one is kept, then let it go
        ready.submit(primer_epub(), "primer.epub")
        ready.result()
    with PendingCheck() as probe:
        assert probe.kept
    build(load_config(project), ("epub", "pdf"), parallel=True, validate=True, force=True)
    assert seen.read_text().split() == [str(base)] * 3
