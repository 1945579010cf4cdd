"""A repeated build with nothing changed is answered from the manifest before the CLI, the
content loader or any renderer is imported; any change falls through to the full build."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner

from pressroom import environment
from pressroom.build import build
from pressroom.cli import cli
from pressroom.config import load_config
from pressroom.fastpath import noop_report

FORMATS = ("--format", "epub", "--format", "email")
PROBE = """
import json, sys
from pressroom.__main__ import main
main()
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in
      ("click", "jinja2", "markdown_it", "ebooklib", "yaml")
      or m in ("pressroom.cli", "pressroom.content", "pressroom.build"))), file=sys.stderr)
"""


def args(project: Path, *extra: str) -> list[str]:
    return ["build", "--project", str(project), *FORMATS, "--no-validate", *extra]


def full_build(project: Path) -> str:
    result = CliRunner().invoke(cli, args(project))
    assert result.exit_code == 0, result.output
    return result.output


def timeless(text: str | None) -> str | None:
    return None if text is None else re.sub(r"in \d+\.\d s", "in T s", text)


def test_a_repeated_build_says_what_the_full_build_says(project):
    full_build(project)
    report = noop_report(args(project))
    assert timeless(report) == (
        "Up to date (unchanged inputs): epub, email:01-hello\nWrote 0 file(s) in T s.\n")
    assert timeless(report) == timeless(full_build(project))  # the full no-op, word for word


def test_the_answer_comes_before_the_cli_and_the_loaders_are_imported(project):
    full_build(project)
    proc = subprocess.run([sys.executable, "-c", PROBE, *args(project)],
                          capture_output=True, text=True)
    assert proc.stdout.startswith("Up to date (unchanged inputs): epub, email:01-hello\n")
    assert json.loads(proc.stderr.strip().splitlines()[-1]) == []


def test_every_kind_of_change_goes_the_full_way(project, monkeypatch):
    full_build(project)
    assert noop_report(args(project)) is not None
    article = project / "content/articles/intro.md"
    original = article.read_text()
    changes = {
        "an edited article": lambda: article.write_text(original + "\nOne more line.\n"),
        "a new file in content/": lambda: (project / "content/images/new.svg").write_text("x"),
        "a theme overlay": lambda: (project / "theme").mkdir(),
        "a missing output": lambda: (project / "output/test-booklet.epub").unlink(),
        "another machine": lambda: monkeypatch.setattr(environment, "fingerprint", lambda: "x"),
        "another build date": lambda: monkeypatch.setenv("SOURCE_DATE_EPOCH", "1"),
    }
    for what, change in changes.items():
        change()
        assert noop_report(args(project)) is None, what
        full_build(project)
        assert noop_report(args(project)) is not None, f"after a full build again: {what}"
    assert noop_report(args(project, "--strict")) is None  # options a no-op does not take
    assert noop_report(["build", "--project", str(project), "--format", "epub"]) is None


def test_a_build_with_warnings_leaves_them_to_the_full_build(project, monkeypatch):
    from pressroom import build as build_module

    real = build_module.render_job

    def warn(pub, theme, job, *rest):
        logging.getLogger("pressroom.render").warning("a warning to replay")
        return real(pub, theme, job, *rest)

    monkeypatch.setattr(build_module, "render_job", warn)
    build(load_config(project), ("epub", "email"), parallel=False)
    assert noop_report(args(project)) is None
