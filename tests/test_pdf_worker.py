"""A parallel build forks its PDF worker as it starts, before the load phase, so WeasyPrint's
import runs beside the load; the worker is handed the loaded publication (pickled) when the
PDFs are to be rendered, and is stopped when they are up to date or the build failed. The
quick reference forks off the worker once the handout is laid out."""

from __future__ import annotations

import os
import pickle
import signal
import time

import pytest

from pressroom import build as build_module
from pressroom.build import build
from pressroom.config import load_config
from pressroom.content import load_publication
from pressroom.errors import PressroomError, RenderError
from pressroom.outputs import handout_name
from pressroom.render import pdf as pdf_module
from pressroom.theme import load_theme


def gone(pid: int) -> bool:
    """Whether ``pid`` was reaped (not running, and no zombie either)."""
    return not os.path.exists(f"/proc/{pid}")


@pytest.fixture
def workers(monkeypatch):
    """Every PDF worker a build starts: its pid, and whether it was handed its orders."""
    seen: list[dict] = []
    real_init, real_hand = build_module._PdfWorker.__init__, build_module._PdfWorker.hand

    def init(self):
        real_init(self)
        seen.append({"pid": self._job.pid, "handed": False, "worker": self})

    def hand(self, *args):
        next(w for w in seen if w["worker"] is self)["handed"] = True
        real_hand(self, *args)

    monkeypatch.setattr(build_module._PdfWorker, "__init__", init)
    monkeypatch.setattr(build_module._PdfWorker, "hand", hand)
    return seen


def test_the_loaded_publication_and_theme_survive_pickling(project):
    config = load_config(project)
    pub, theme = load_publication(config), load_theme(config)
    pub2, theme2 = pickle.loads(pickle.dumps((pub, theme)))
    assert pub2 == pub
    assert pub2.config.brand.colours == pub.config.brand.colours
    assert theme2.tokens == theme.tokens
    html = pdf_module.handout_html(pub2, theme2, "a4", False)
    assert html == pdf_module.handout_html(pub, theme, "a4", False)
    with pytest.raises(TypeError):  # still frozen
        pub2.config.brand.colours["brand"] = "#000000"  # type: ignore[index]


def test_a_failed_load_phase_stops_the_pdf_worker_and_writes_nothing(project, workers):
    config = load_config(project)
    (project / "content" / "exercises" / "cheek-lift.md").write_text("---\ntitle: [\n---\n",
                                                                    encoding="utf-8")
    with pytest.raises(PressroomError, match="cheek-lift.md:"):
        build(config, parallel=True, validate=False)
    assert len(workers) == 1 and not workers[0]["handed"]
    assert gone(workers[0]["pid"])
    assert not (project / "output").exists()


def test_up_to_date_pdfs_stop_the_worker_unused(project, workers):
    config = load_config(project)
    build(config, parallel=True, validate=False)
    assert workers[0]["handed"] and gone(workers[0]["pid"])
    handout = (config.out / handout_name(config)).read_bytes()
    letter = project / "content" / "newsletters" / "01-hello.md"
    letter.write_text(letter.read_text(encoding="utf-8") + "\nOne more line.\n",
                      encoding="utf-8")
    result = build(config, parallel=True, validate=False)
    assert "pdf" in result.skipped and "email:01-hello" in result.rendered
    assert len(workers) == 2 and not workers[1]["handed"]
    assert gone(workers[1]["pid"])
    assert (config.out / handout_name(config)).read_bytes() == handout


def test_the_quick_reference_forks_off_once_the_handout_is_laid_out(project, monkeypatch):
    """Its process inherits the worker's memory as it was when forked: the handout's page
    map is there, so the fonts and hyphenation dictionary that layout loaded are too."""
    real = pdf_module.quickref_pdf

    def quickref_pdf(pub, theme, *args):
        forked = build_module._FORKED
        if forked is None or forked[2].made is None:
            raise RenderError("the quick reference started before the handout's layout")
        return real(pub, theme, *args)

    monkeypatch.setattr(pdf_module, "quickref_pdf", quickref_pdf)  # inherited by the fork
    config = load_config(project)
    result = build(config, ("epub", "pdf"), parallel=True, validate=False)
    assert "pdf" in result.rendered
    assert any(p.name.endswith("quick-reference.pdf") for p in result.written)


def test_a_failed_handout_stops_the_quick_reference(project, monkeypatch, tmp_path):
    """The build fails with the handout's error as soon as it is known; the quick reference
    (started at the handout's layout) is stopped, not waited for."""
    finished = tmp_path / "quick-reference-finished"

    def write_document(doc, document):
        raise RenderError(f"{document}: the handout could not be drawn")

    def quickref_pdf(*args):
        time.sleep(10)
        finished.touch()
        raise RenderError("the quick reference was waited for")

    monkeypatch.setattr(pdf_module, "write_document", write_document)
    monkeypatch.setattr(pdf_module, "quickref_pdf", quickref_pdf)
    with pytest.raises(PressroomError, match="the handout could not be drawn"):
        build(load_config(project), ("pdf",), parallel=True, validate=False)
    assert not finished.exists()  # its process was killed, and reaped before build() returned
    assert not (project / "output").exists()


def test_a_pdf_worker_killed_before_the_layout_fails_the_build_instead_of_hanging(project,
                                                                              monkeypatch):
    """The ebook waits for the handout's page map from the worker; a worker that dies without
    a word (killed, or crashed in a C library) must not leave it waiting for ever."""
    def handout_html(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)

    monkeypatch.setattr(pdf_module, "handout_html", handout_html)  # inherited by the fork
    with pytest.raises(PressroomError, match="the PDFs: its process ended without a result "
                                             r"\(killed by signal 9\)") as caught:
        build(load_config(project), ("epub", "pdf"), parallel=True, validate=False)
    assert "page list needs the handout's layout" in str(caught.value)
    assert not (project / "output").exists()
