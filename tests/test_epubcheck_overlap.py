"""EPUBCheck runs beside the other jobs: started on the ebook's bytes, awaited before anything is
written, and stopped (its temporary copy removed) when the build fails meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest

from pressroom.build import build
from pressroom.config import load_config
from pressroom.epubcheck import PendingCheck
from pressroom.errors import PressroomError, RenderError


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

    monkeypatch.setattr(PendingCheck, "__init__", remember)
    monkeypatch.setattr(PendingCheck, "close", close)
    monkeypatch.setattr(pdf_module, "write_document", drawing_fails)  # inherited by the fork
    with pytest.raises(PressroomError, match="the handout could not be drawn"):
        build(load_config(project), ("epub", "pdf"), parallel=True, validate=True)
    check = started[0]
    assert running_when_closed == [True]  # EPUBCheck was still running when the build failed
    assert check._proc.poll() is not None  # the JVM was stopped, not left behind
    assert not Path(check._tmp.name).exists()  # nor its copy of the ebook
    assert not (project / "output").exists()
