"""Incremental builds: unchanged outputs are not re-rendered; edits re-render what they affect."""

from __future__ import annotations

import shutil
from pathlib import Path

from pressroom.build import build
from pressroom.config import load_config


def run(project: Path, **kw):
    return build(load_config(project), **kw)


def test_noop_rebuild_renders_nothing(project):
    first = run(project, formats=("epub", "email"))
    assert sorted(first.rendered) == ["email:01-hello", "epub"]
    epub = project / "output/test-booklet.epub"
    stamp = epub.stat().st_mtime_ns
    again = run(project, formats=("epub", "email"))
    assert again.rendered == [] and again.written == {}
    assert sorted(again.skipped) == ["email:01-hello", "epub"]
    assert epub.stat().st_mtime_ns == stamp


def test_edits_rerender_only_what_they_affect(project):
    run(project)
    issue = project / "content/newsletters/01-hello.md"
    issue.write_text(issue.read_text() + "\nOne more line.\n")
    # The site's archive lists the issues, so the site job follows the newsletter.
    assert sorted(run(project).rendered) == ["email:01-hello", "site"]
    # jaw-release is in the book but featured in no newsletter.
    jaw = project / "content/exercises/jaw-release.md"
    jaw.write_text(jaw.read_text().replace("A gentle release.", "A gentle, slow release."))
    assert sorted(run(project).rendered) == ["epub", "pdf", "site"]
    # cheek-lift is featured in 01-hello, so that issue is re-rendered too.
    cheek = project / "content/exercises/cheek-lift.md"
    cheek.write_text(cheek.read_text().replace("Squinting.", "Squinting hard."))
    assert sorted(run(project).rendered) == ["email:01-hello", "epub", "pdf", "site"]
    assert sorted(run(project, force=True).rendered) == ["email:01-hello", "epub", "pdf", "site"]
    # Editing a newsletter re-renders neither the ebook nor the handout.
    issue.write_text(issue.read_text() + "\nAnd another.\n")
    assert "epub" not in run(project).rendered


def test_paper_size_is_an_input_of_the_pdf(project):
    run(project, formats=("pdf",))
    config = load_config(project).with_overrides(paper="letter")
    assert build(config, formats=("pdf",)).rendered == ["pdf"]


def test_removed_newsletter_leaves_no_stale_files(project):
    run(project, formats=("email",))
    assert (project / "output/newsletters/01-hello.html").exists()
    (project / "content/newsletters/01-hello.md").unlink()
    run(project, formats=("email",))
    assert not (project / "output/newsletters/01-hello.html").exists()
    assert not (project / "output/site/newsletters/01-hello.html").exists()


def test_parallel_and_serial_builds_are_identical(project, tmp_path):
    # Separate copies: the second build cannot reuse the first one's derived-file cache.
    twin = tmp_path / "twin"
    shutil.copytree(project, twin)
    serial = build(load_config(project).with_overrides(out=tmp_path / "serial"), parallel=False)
    parallel = build(load_config(twin).with_overrides(out=tmp_path / "parallel"), parallel=True)
    assert sorted(serial.rendered) == sorted(parallel.rendered)
    for path in serial.written:
        twin = tmp_path / "parallel" / path.relative_to(tmp_path / "serial")
        assert twin.read_bytes() == path.read_bytes(), path.name


def test_cached_warnings_are_only_replayed_on_the_machine_state_that_gave_them(project,
                                                                              monkeypatch):
    """A warning kept in the build manifest belongs to the environment it came from: once
    that changes (here: the HarfBuzz subsetter appears), the job renders again and --strict
    judges this machine's warnings, not the old ones."""
    import logging

    from pressroom import build as build_module
    from pressroom import environment

    config = load_config(project)
    real = build_module.render_job

    def render_warning_about_the_machine(pub, theme, job, *rest):
        logging.getLogger("pressroom.render.pdf").warning("no HarfBuzz subsetter: slow fallback")
        return real(pub, theme, job, *rest)

    monkeypatch.setattr(environment, "fingerprint", lambda: "harfbuzz-subset=missing")
    monkeypatch.setattr(build_module, "render_job", render_warning_about_the_machine)
    first = build(config, ("email",), parallel=False)
    assert first.warnings == ["no HarfBuzz subsetter: slow fallback"]

    monkeypatch.setattr(build_module, "render_job", real)
    same = build(config, ("email",), parallel=False)  # same machine: the warning still holds
    assert same.skipped == ["email:01-hello"]
    assert same.warnings == ["no HarfBuzz subsetter: slow fallback"]

    monkeypatch.setattr(environment, "fingerprint", lambda: "harfbuzz-subset=libharfbuzz-subset")
    fixed = build(config, ("email",), strict=True, parallel=False)
    assert (fixed.rendered, fixed.skipped, fixed.warnings) == (["email:01-hello"], [], [])


def test_the_environment_fingerprint_names_versions_subsetter_and_fonts(tmp_path, monkeypatch):
    from importlib import metadata

    from pressroom import environment

    facts = environment.describe()
    assert facts["weasyprint"] == metadata.version("weasyprint")
    assert facts["harfbuzz-subset"].startswith("libharfbuzz-subset")  # system-packages.txt
    monkeypatch.setattr(environment, "FONT_DIRS", (str(tmp_path),))
    before = environment.describe()["fonts"]
    (tmp_path / "Extra.ttf").write_bytes(b"\0" * 10)
    assert environment.describe()["fonts"] != before  # a new font changes the fingerprint


def test_image_no_longer_used_is_removed_from_output(project):
    images = project / "content/images"
    face = (images / "face.svg").read_bytes()
    (images / "extra.svg").write_bytes(face.replace(b"<svg", b"<svg id='x'", 1))
    guide = project / "content/exercises/jaw-release.md"
    original = guide.read_text()
    guide.write_text(original.replace("src: images/face.svg", "src: images/extra.svg"))
    run(project)
    out = project / "output"
    made = sorted(str(p.relative_to(out)) for p in out.rglob("*extra*"))
    assert made, "the extra image should be copied into the outputs"
    guide.write_text(original)
    run(project)
    assert sorted((project / "output").rglob("*extra*")) == []
