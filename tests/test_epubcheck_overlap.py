"""EPUBCheck runs beside the other jobs: started on the ebook's bytes, awaited before anything is
written, and stopped (its temporary copy removed) when the build fails meanwhile."""

from __future__ import annotations

from pathlib import Path

import pytest

from pressroom import build as build_module
from pressroom.build import build
from pressroom.config import load_config
from pressroom.epubcheck import PendingCheck
from pressroom.errors import PressroomError, RenderError


def test_a_build_failing_beside_epubcheck_stops_it_and_writes_nothing(project, monkeypatch):
    started: list[PendingCheck] = []
    real_init, real_render = PendingCheck.__init__, build_module.render_job

    def remember(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        started.append(self)

    def email_fails(pub, theme, job, *rest):
        if job.name.startswith("email:"):
            assert started and started[0]._proc.poll() is None  # EPUBCheck is running now
            raise RenderError("01-hello: the newsletter could not be rendered")
        return real_render(pub, theme, job, *rest)

    monkeypatch.setattr(PendingCheck, "__init__", remember)
    monkeypatch.setattr(build_module, "render_job", email_fails)
    with pytest.raises(PressroomError, match="the newsletter could not be rendered"):
        build(load_config(project), ("epub", "email"), parallel=False, validate=True)
    check = started[0]
    assert check._proc.poll() is not None  # the JVM was stopped, not left behind
    assert not Path(check._tmp.name).exists()  # nor its copy of the ebook
    assert not (project / "output").exists()
