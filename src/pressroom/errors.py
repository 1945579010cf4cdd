"""The one exception family: every user mistake is a PressroomError with an actionable message."""

from __future__ import annotations

from pathlib import Path

import click


class PressroomError(click.ClickException):
    """A user-facing error: Click prints ``Error: <message>`` and exits with status 1."""

    exit_code = 1


def where(path: Path | str, line: int | None = None) -> str:
    """Format a ``file:line`` prefix, relative to the working directory when possible."""
    p = Path(path)
    try:
        shown = p.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        shown = p
    return f"{shown}:{line}" if line else f"{shown}"


class ContentError(PressroomError):
    """A problem in a content file, reported as ``file:line: message``."""

    def __init__(self, path: Path | str, line: int | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.reason = message
        super().__init__(f"{where(path, line)}: {message}")


class ConfigError(ContentError):
    """A problem in ``publication.yaml`` (or another configuration source)."""


class ThemeError(PressroomError):
    """A broken theme template: names the template and line."""


class RenderError(PressroomError):
    """An output could not be rendered (for example a fetch outside the project)."""


class MailError(PressroomError):
    """Subscriber store, campaign or SMTP problems the user can act on."""
