"""Bad content: exact messages naming file:line, exit status 1, and output/ left untouched."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from pressroom.cli import cli


def run(project: Path, *args: str):
    return CliRunner().invoke(cli, [*args, "--project", str(project)], catch_exceptions=False)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"fixture text {old!r} not found in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


@pytest.fixture
def built(project: Path) -> Path:
    """The project after one good build (so we can check a failed build changes nothing)."""
    result = run(project, "build", "--format", "email")
    assert result.exit_code == 0, result.output
    return project


CASES = [
    ("wrong type", "exercises/cheek-lift.md", "reps: 10", "reps: ten",
     "content/exercises/cheek-lift.md:7: 'reps' must be a whole number, got 'ten'"),
    ("unknown key", "exercises/cheek-lift.md", "sets: 2", "sets: 2\nrepz: 3",
     "content/exercises/cheek-lift.md:9: unknown key 'repz' — did you mean 'reps'?"),
    ("misspelt required key", "exercises/cheek-lift.md", "sets: 2", "setz: 2",
     "content/exercises/cheek-lift.md:8: unknown key 'setz' — did you mean 'sets'?"),
    ("missing key beside a similar known one", "exercises/cheek-lift.md", "sets: 2\n", "",
     "content/exercises/cheek-lift.md:1: missing required field 'sets'"),
    ("unknown key, nothing close", "exercises/cheek-lift.md", "sets: 2", "sets: 2\ncolour: red",
     "content/exercises/cheek-lift.md:9: unknown key 'colour' (known keys: area, cautions, "
     "difficulty, frequency, hold_seconds, illustration, kind, minutes, mistakes, muscles, order, "
     "reps, sets, steps, summary, tips, title)"),
    ("missing field", "exercises/cheek-lift.md",
     "summary: Lift the cheeks with a soft smile.\n", "",
     "content/exercises/cheek-lift.md:1: missing required field 'summary'"),
    ("unknown exercise in newsletter", "newsletters/01-hello.md", "featured: [cheek-lift]",
     "featured: [cheek-lifts]",
     "content/newsletters/01-hello.md:6: unknown exercise 'cheek-lifts' (known: cheek-lift, "
     "jaw-release)"),
    ("unknown exercise in routine", "routines/daily.md", "  - exercise: jaw-release",
     "  - exercise: jaw-releese",
     "content/routines/daily.md:9: unknown exercise 'jaw-releese' (known: cheek-lift, "
     "jaw-release)"),
    ("missing image", "exercises/jaw-release.md", "src: images/face.svg", "src: images/nope.svg",
     "content/exercises/jaw-release.md:14: image 'images/nope.svg' not found (looked for "
     "content/images/nope.svg)"),
    ("image without alt", "articles/intro.md", "![A simple line drawing of a face]", "![]",
     "content/articles/intro.md:16: image 'images/face.svg' has no alt text; write ![what it "
     "shows](images/face.svg)"),
    ("bad difficulty", "exercises/cheek-lift.md", "difficulty: beginner", "difficulty: easy",
     "content/exercises/cheek-lift.md:11: 'difficulty' must be one of beginner, intermediate, "
     "advanced; got 'easy'"),
    ("invalid yaml", "exercises/cheek-lift.md", "sets: 2", "sets: [2",
     "content/exercises/cheek-lift.md:9: invalid YAML: did not find expected ',' or ']'; check "
     "the indentation and quoting"),
]


@pytest.mark.parametrize("name,file,old,new,message", CASES, ids=[c[0] for c in CASES])
def test_bad_content_is_reported_and_output_untouched(built, monkeypatch, name, file, old, new,
                                                       message):
    monkeypatch.chdir(built)
    before = snapshot(built / "output")
    edit(built / "content" / file, old, new)
    for command in ("check", "build"):
        result = run(built, command)
        assert result.exit_code == 1, result.output
        assert result.output == f"Error: {message}\n"
        assert "Traceback" not in result.output
    assert snapshot(built / "output") == before


def test_duplicate_slug_titles_and_numbers(project, monkeypatch):
    monkeypatch.chdir(project)
    nl = project / "content" / "newsletters"
    (nl / "02-again.md").write_text((nl / "01-hello.md").read_text())
    result = run(project, "check")
    assert result.exit_code == 1
    assert result.output == ("Error: content/newsletters/02-again.md:5: duplicate newsletter "
                             "number 1 "
                             "(also used at content/newsletters/01-hello.md:5); make it unique\n")


def test_several_problems_are_reported_together(project, monkeypatch):
    monkeypatch.chdir(project)
    edit(project / "content/exercises/cheek-lift.md", "reps: 10", "reps: ten")
    edit(project / "content/exercises/jaw-release.md", "sets: 1", "sets: 0")
    result = run(project, "check")
    assert result.exit_code == 1
    assert result.output == (
        "Error: 2 problems in content:\n"
        "content/exercises/cheek-lift.md:7: 'reps' must be a whole number, got 'ten'\n"
        "content/exercises/jaw-release.md:8: 'sets' must be at least 1, got 0\n")


def test_bad_publication_yaml(project, monkeypatch):
    monkeypatch.chdir(project)
    edit(project / "content/publication.yaml", "language: en-GB", "language: English")
    result = run(project, "check")
    assert result.exit_code == 1
    assert result.output == ("Error: content/publication.yaml:4: 'language' must be a language tag "
                             "like en-GB, got 'English'\n")


def test_missing_project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = run(tmp_path, "check")
    assert result.exit_code == 1
    assert result.output == ("Error: content/publication.yaml: not found; is --project pointing "
                             "at a Pressroom project (a folder holding "
                             "content/publication.yaml)?\n")
