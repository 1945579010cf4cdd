"""EPUBCheck runs beside the other jobs: its JVM starts with the build and warms up on a small
ebook of its own, checks the real ebook as soon as it is rendered, is awaited before anything is
written, and is stopped (its temporary files removed) when the build fails meanwhile."""

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


def test_a_build_failing_beside_epubcheck_stops_it_and_writes_nothing(project, monkeypatch):
    """The ebook renders last (it waits for the handout's page map), so what can fail while
    EPUBCheck runs is the handout's drawing in its worker process."""
    from pressroom.render import pdf as pdf_module

    started: list[PendingCheck] = []
    running_when_closed: list[bool] = []
    real_init, real_close = PendingCheck.__init__, PendingCheck.close

    def remember(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        started.append(self)

    def close(self):
        running_when_closed.append(self._proc.poll() is None)
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
    assert check._proc.poll() is not None  # the JVM was stopped, not left behind
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


def test_a_warm_up_jvm_that_died_is_replaced_by_a_one_shot_run(tmp_path):
    book = tmp_path / "broken.epub"
    book.write_bytes(_broken_ebook())
    with PendingCheck() as check:
        assert check.running
        check._proc.kill()
        check._proc.wait()
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
    config = load_config(project)
    build(config, ("epub",), validate=False)
    started: list[PendingCheck] = []
    real_init = PendingCheck.__init__

    def remember(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        started.append(self)

    monkeypatch.setattr(PendingCheck, "__init__", remember)
    result = build(config, ("epub",), validate=True)
    assert result.rendered == [] and result.epubcheck is None
    assert len(started) == 1 and started[0]._proc is not None  # it had started...
    assert started[0]._proc.poll() is not None  # ...and was stopped, not left running
    assert not Path(started[0]._tmp.name).exists()


def test_the_pdfs_yield_the_cpu_to_epubcheck(project, monkeypatch, tmp_path):
    """When EPUBCheck checks the ebook, its verdict is what the build waits for last: every PDF
    process (the handout's two halves, the quick reference) runs 10 nicer than the build.
    Without EPUBCheck they run at the build's own priority."""
    from pressroom.render import pdf as pdf_module

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
