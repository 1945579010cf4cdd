"""The cover's raster runs in a forked process (resvg keeps the GIL): begun before the load
phase, taken over by the renderer that needs it, its failures a RenderError, and no child left
behind (no zombie, no orphan) whether the build succeeds, fails or abandons it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pressroom.build import build, load
from pressroom.config import load_config
from pressroom.derived import rasterise
from pressroom.errors import PressroomError, RenderError
from pressroom.render import cover as cover_module
from pressroom.render.cover import HEIGHT, WIDTH, PendingCover, cover_started, cover_svg
from pressroom.render.forked import Forked

BROKEN_LOGO = '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><g><circle r="4"/></svg>'


def children() -> set[int]:
    """This process's child processes, running or not yet reaped (Linux's /proc)."""
    tasks = Path(f"/proc/{os.getpid()}/task")
    return {int(pid) for task in tasks.iterdir() for pid in (task / "children").read_text().split()}


def running(pid: int) -> bool:
    """Whether ``pid`` is a live process (not gone, not a zombie waiting to be reaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def spawned(monkeypatch) -> list[int]:
    """The pid of every Forked child started meanwhile."""
    pids: list[int] = []
    real = Forked.__init__

    def remember(self, *args, **kwargs):
        real(self, *args, **kwargs)
        pids.append(self.pid)

    monkeypatch.setattr(Forked, "__init__", remember)
    return pids


def test_a_cover_that_cannot_be_rasterised_is_a_render_error_leaving_no_child(
        project, monkeypatch, spawned):
    (project / "content/images/logo.svg").write_text(BROKEN_LOGO, encoding="utf-8")
    monkeypatch.chdir(project)
    before = children()
    with pytest.raises(PressroomError) as err:  # the renderer's RenderError, as the build says it
        build(load_config(project), ("epub",), validate=False)
    assert err.value.message == (
        "the cover image (with the logo content/images/logo.svg): could not rasterise: "
        "expected 'g' tag, not 'svg' at 13:1")
    assert len(spawned) == 1  # begun before the load phase, taken over by the ebook
    assert children() == before
    assert not (project / "output").exists()
    assert not list((project / ".pressroom/cache").glob("*.png"))


def test_the_renderer_takes_over_the_raster_begun_before_the_load_phase(project, spawned):
    config = load_config(project)
    before = children()
    with cover_started(config, ("epub",)):
        assert len(spawned) == 1 and children() == before | {spawned[0]}
        pub, theme = load(config)
        with PendingCover(pub, theme) as cover:
            assert not cover_module._STARTED  # taken over: no second raster
            png = cover.result()
    assert len(spawned) == 1
    assert children() == before
    assert png == rasterise(cover_svg(config, theme).encode("utf-8"), WIDTH, HEIGHT)
    with PendingCover(pub, theme) as again:  # now from the derived-file cache, no process
        assert again.result() == png
    assert len(spawned) == 1


def test_a_failed_load_phase_stops_and_reaps_the_raster_begun_for_it(project, spawned):
    article = next((project / "content/articles").glob("*.md"))
    article.write_text("---\ntitle: [unclosed\n---\nBody\n", encoding="utf-8")
    before = children()
    with pytest.raises(PressroomError, match="intro.md:3: invalid YAML"):
        build(load_config(project), ("epub",), validate=False)
    assert len(spawned) == 1
    assert not running(spawned[0])
    assert children() == before
    assert not cover_module._STARTED


def test_a_child_that_dies_is_a_render_error_naming_the_work():
    before = children()
    job = Forked(lambda: os._exit(3), "the cover image")
    with pytest.raises(RenderError) as err:
        job.result()
    assert err.value.message == ("the cover image: its process ended without a result "
                                 "(exit status 3)")
    assert children() == before


def test_closing_an_unfinished_child_kills_and_reaps_it():
    before = children()
    with Forked(lambda: signal.pause() or b"", "the cover image") as job:
        pid = job.pid
        assert pid is not None and running(pid)
    assert children() == before
    assert not running(pid)
    with pytest.raises(RenderError, match="^the cover image: its process was already stopped$"):
        job.result()


ABANDON = """
import os, signal, sys
from pressroom.render.forked import Forked
job = Forked(lambda: signal.pause() or b"", "the cover image")
print(job.pid, flush=True)
os._exit(0)  # a build killed without cleaning up
"""


def test_a_child_dies_with_the_process_that_started_it():
    with subprocess.Popen([sys.executable, "-c", ABANDON], stdout=subprocess.PIPE,
                          text=True) as starter:
        assert starter.stdout is not None
        pid = int(starter.stdout.readline())  # the child keeps the pipe open while it runs
        starter.stdout.close()
        assert starter.wait() == 0
    try:
        deadline = time.monotonic() + 10
        while running(pid) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not running(pid)
    finally:
        if running(pid):  # the behaviour is broken: leave no orphan behind this test either
            os.kill(pid, signal.SIGKILL)
