"""The command line: help with examples everywhere, version, build summary, options."""

from __future__ import annotations

import subprocess
import sys

import click
import pytest
from click.testing import CliRunner

from pressroom import __version__
from pressroom.cli import cli


def all_commands(group: click.Group, prefix=()):
    ctx = click.Context(group)
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        yield (*prefix, name), command
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize(
    "path,command",
    list(all_commands(cli)),
    ids=lambda v: " ".join(v) if isinstance(v, tuple) else "",
)
def test_every_command_has_help_with_an_example(path, command):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    assert "Example" in result.output, f"'pressroom {' '.join(path)} --help' shows no example"


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.output == f"pressroom, version {__version__}\n"


def test_python_dash_m_works():
    out = subprocess.run(
        [sys.executable, "-m", "pressroom", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0 and out.stdout.strip() == f"pressroom, version {__version__}"


def test_check_reports_counts(project, monkeypatch):
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 0
    assert result.output == "OK: 1 article(s), 2 exercise(s), 2 routine(s), 1 newsletter(s).\n"


def test_build_one_format_into_another_folder(project, tmp_path, monkeypatch):
    monkeypatch.chdir(project)
    out = tmp_path / "elsewhere"
    result = CliRunner().invoke(cli, ["build", "--format", "email", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Rendering email:01-hello…" in result.output
    assert "newsletters/01-hello.html" in result.output and " KB" in result.output
    assert (out / "newsletters/01-hello.html").is_file()
    assert not (out / "test-booklet.epub").exists()
    assert not (project / "output").exists()
    # The writer leaves no temporary files behind.
    assert not [p for p in out.rglob(".*.tmp")]


def test_strict_turns_warnings_into_errors(project, monkeypatch):
    from pressroom.config import load_config
    from pressroom.content import load_publication
    from pressroom.render.email import MAX_BYTES, WARN_BYTES, EmailRenderer
    from pressroom.theme import load_theme

    monkeypatch.chdir(project)
    # Grow a newsletter until it is past the 90 KB warning line but under the 102 KB limit.
    issue = project / "content/newsletters/01-hello.md"
    para = "A calm, steady paragraph about gentle facial exercise and realistic expectations. " * 4
    original = issue.read_text()
    for n in range(1, 400, 3):
        issue.write_text(original + ("\n\n" + para) * n)
        pub = load_publication(load_config(project))
        html = EmailRenderer(pub, load_theme(pub.config)).html(pub.newsletters[0])
        if len(html.encode()) > WARN_BYTES + 2048:
            break
    assert len(html.encode()) < MAX_BYTES - 4096
    result = CliRunner().invoke(cli, ["build", "--format", "email", "--strict"])
    assert result.exit_code == 1, result.output
    assert "warning(s) and --strict is on; nothing was written" in result.output
    assert not (project / "output").exists()
