"""EPUBCheck's JVM kept between builds (keptjvm.py, java/EpubCheckDriver.java): the next check
goes to it and reports exactly what a one-shot run reports; it serves one user's folder only,
stops by itself when idle or when asked, and a kept JVM that died costs a build nothing but
time."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from projects import stop_kept_jvms
from test_epubcheck_overlap import _broken_ebook, _same, alive

from pressroom import epubcheck, keptjvm
from pressroom.build import build
from pressroom.cli import cli
from pressroom.config import load_config
from pressroom.epubcheck import PendingCheck, kept_socket, run_epubcheck, stop_kept
from pressroom.errors import PressroomError


@pytest.fixture
def folder(monkeypatch):
    """A runtime folder of this test's own (no JVM kept in it yet); its JVM is stopped after."""
    path = Path(tempfile.mkdtemp(prefix="pr-kept-"))
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(path))
    monkeypatch.setenv("PRESSROOM_EPUBCHECK_KEEP", "60")
    yield path
    stop_kept_jvms(path)
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def broken(tmp_path_factory) -> tuple[Path, epubcheck.EpubCheckResult]:
    """An ebook with an EPUBCheck error, and what a one-shot run reports for it."""
    book = tmp_path_factory.mktemp("kept") / "broken.epub"
    book.write_bytes(_broken_ebook())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRESSROOM_EPUBCHECK_KEEP", "0")  # a JVM of its own, not a kept one
        return book, run_epubcheck(book)


def _check(book: Path) -> tuple[PendingCheck, epubcheck.EpubCheckResult]:
    with PendingCheck() as check:
        check.submit(book.read_bytes(), book.name)
        return check, check.result()


def _serving_pid(folder: Path) -> int:
    """The pid of the JVM that serves a socket in ``folder`` (from the kernel's socket table)."""
    socket = kept_socket()
    assert socket is not None and socket.parent == folder / "pressroom"
    inode = next(line.split()[6] for line in Path("/proc/net/unix").read_text().splitlines()[1:]
                 if line.endswith(str(socket)))
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == f"socket:[{inode}]":
                return int(fd.parts[2])
        except OSError:
            continue
    raise AssertionError(f"nobody serves {socket}")


def test_the_next_checks_go_to_the_kept_jvm_and_report_the_same(folder, broken):
    book, expected = broken
    first, result = _check(book)
    assert not first.kept and first.warmed and _same(result) == _same(expected)
    pid = _serving_pid(folder)
    assert alive(pid)  # the JVM that checked the first ebook carries on, on the socket
    assert oct(folder.joinpath("pressroom").stat().st_mode & 0o777) == "0o700"

    second, result = _check(book)
    assert second.kept and second.warmed and second._started is None  # no JVM started
    assert _same(result) == _same(expected)
    assert _serving_pid(folder) == pid

    with PendingCheck() as one, PendingCheck() as two:  # two builds at once: answered in turn
        assert one.kept and two.kept
        one.submit(book.read_bytes(), book.name)
        two.submit(book.read_bytes(), book.name)
        assert _same(two.result()) == _same(expected)
        assert _same(one.result()) == _same(expected)

    assert stop_kept()
    for _ in range(100):
        if not alive(pid):
            break
        time.sleep(0.1)
    assert not alive(pid) and not kept_socket().exists()
    assert not stop_kept()  # nothing left to stop


def test_a_kept_jvm_stops_by_itself_when_idle(folder, broken, monkeypatch):
    monkeypatch.setenv("PRESSROOM_EPUBCHECK_KEEP", "1")
    _check(broken[0])
    socket = kept_socket()
    assert socket is not None
    pid = _serving_pid(folder)
    for _ in range(100):
        if not alive(pid):
            break
        time.sleep(0.1)
    assert not alive(pid) and not socket.exists()


def test_a_kept_jvm_that_was_killed_is_replaced(folder, broken):
    """Killed, it leaves its socket file behind: the next check finds nobody there, starts a
    JVM of its own (which takes the socket over) and reports the same."""
    book, expected = broken
    _check(book)
    old = _serving_pid(folder)
    os.kill(old, signal.SIGKILL)
    while alive(old):
        time.sleep(0.05)
    assert kept_socket().exists()
    check, result = _check(book)
    assert not check.kept and _same(result) == _same(expected)
    assert _serving_pid(folder) != old


def test_a_kept_jvm_that_dies_during_the_check_is_replaced_by_a_one_shot_run(folder, broken):
    book, expected = broken
    _check(book)
    pid = _serving_pid(folder)
    with PendingCheck() as check:
        assert check.kept
        check.submit(book.read_bytes(), book.name)
        os.kill(pid, signal.SIGKILL)  # long before its verdict (about 0.6 s)
        result = check.result()
    assert not check.warmed  # checked again, the ordinary way
    assert _same(result) == _same(expected)


def test_a_folder_others_can_open_is_not_used(folder, caplog):
    (folder / "pressroom").mkdir(mode=0o755)
    os.chmod(folder / "pressroom", 0o755)
    with caplog.at_level(logging.WARNING, logger="pressroom"):
        assert kept_socket() is None
    assert "must be a folder of your own that only you can open (chmod 700)" in caplog.text
    with PendingCheck() as check:  # the JVM still warms up; it is not kept after
        assert not check.kept and check.running
    assert not list((folder / "pressroom").iterdir())


def test_keep_must_be_a_number_of_seconds(project, monkeypatch):
    monkeypatch.setenv("PRESSROOM_EPUBCHECK_KEEP", "ten minutes")
    with pytest.raises(PressroomError) as caught:
        build(load_config(project), ("epub",), validate=True)
    assert caught.value.message == (
        "PRESSROOM_EPUBCHECK_KEEP='ten minutes' is not a number of seconds: set it to how long "
        "EPUBCheck's JVM stays ready after a build (0: not at all)")
    assert not (project / "output").exists()


def test_keep_zero_keeps_nothing(folder, monkeypatch):
    monkeypatch.setenv("PRESSROOM_EPUBCHECK_KEEP", "0")
    assert keptjvm.keep_seconds() == 0 and kept_socket() is None
    with PendingCheck() as check:  # the JVM it starts is told of no socket: it cannot stay
        assert check.running and not check.kept
        assert not any("pressroom.serve" in arg
                       for arg in Path(f"/proc/{check._started.pid}/cmdline").read_text()
                       .split("\0"))
    assert not list((folder / "pressroom").glob("*.sock"))


def test_a_build_whose_jvm_is_kept_exits_at_once_and_holds_no_pipe(folder, project):
    """`pressroom build | tee log` (or make, or CI capturing the output) returns when the build
    does: the kept JVM holds none of the build's pipes (run() returns only when both reach end
    of file, and the JVM is still alive after), and is nobody's child here."""
    proc = subprocess.run(
        [sys.executable, "-m", "pressroom", "build", "--project", str(project), "--format",
         "epub", "--validate"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "EPUBCheck passed: 0 fatal, 0 error(s), 0 warning(s)" in proc.stdout
    pid = _serving_pid(folder)
    parent = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    assert alive(pid) and parent != os.getpid()
    again = subprocess.run(
        [sys.executable, "-m", "pressroom", "build", "--project", str(project), "--format",
         "epub", "--validate", "--force"], capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "EPUBCheck passed" in again.stdout
    assert _serving_pid(folder) == pid  # the second build's ebook went to the same JVM

    stop = CliRunner().invoke(cli, ["stop-epubcheck"])
    assert stop.output == "Stopped EPUBCheck's JVM.\n"
    for _ in range(100):
        if not alive(pid):
            break
        time.sleep(0.1)
    assert not alive(pid)
    assert CliRunner().invoke(cli, ["stop-epubcheck"]).output == "No EPUBCheck JVM was running.\n"


def test_a_jvm_let_go_before_the_ebook_is_still_warmed_up_and_kept(folder, project):
    """A build whose ebook is up to date lets its JVM go before handing it anything: the JVM
    still checks its primer (and removes the primer's folder), then serves the next build."""
    with PendingCheck() as check:
        pid, primer = check._started.pid, check._primer
    assert alive(pid)
    for _ in range(300):
        if not primer.exists():
            break
        time.sleep(0.1)
    assert not primer.exists() and _serving_pid(folder) == pid


def test_a_hung_kept_jvm_is_reported_with_how_to_end_it(folder, broken, monkeypatch):
    """A JVM that takes the stop request but never answers (here: stopped with SIGSTOP) is not
    reported as stopped: stop-epubcheck fails and names the command that ends it."""
    _check(broken[0])
    pid = _serving_pid(folder)
    monkeypatch.setattr(keptjvm, "STOP_WAIT", 1.0)
    os.kill(pid, signal.SIGSTOP)
    try:
        result = CliRunner().invoke(cli, ["stop-epubcheck"])
    finally:
        os.kill(pid, signal.SIGKILL)
    assert result.exit_code == 1
    assert result.output == (f"Error: EPUBCheck's JVM on {kept_socket()} did not answer in 1 s; "
                             f"end it with: pkill -f {kept_socket()}\n")
