"""The build: load and check everything, render every requested format, then write atomically."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from pressroom.config import Config
from pressroom.content import load_publication
from pressroom.errors import PressroomError
from pressroom.output import write_all
from pressroom.theme import load_theme

log = logging.getLogger(__name__)

FORMATS = ("epub", "pdf", "email")


def _renderer(fmt: str):
    # Imported lazily: WeasyPrint, ebooklib and MJML are slow to import and `check` needs none.
    if fmt == "epub":
        from pressroom.render.epub import render_epub
        return render_epub
    if fmt == "pdf":
        from pressroom.render.pdf import render_pdf
        return render_pdf
    from pressroom.render.email import render_email
    return render_email


class _WarningCounter(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@dataclass
class BuildResult:
    """What a build wrote (path -> bytes) and the warnings it logged."""

    written: dict[Path, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def check(config: Config):
    """Load and validate all content (no rendering); return the Publication."""
    return load_publication(config)


def build(config: Config, formats: tuple[str, ...] = FORMATS, strict: bool = False,
          on_step: Callable[[str], None] | None = None) -> BuildResult:
    """Build the requested formats into ``config.out``.

    Nothing is written unless every format rendered (and, with ``strict``, without warnings).
    ``on_step(name)`` is called as each format starts, for progress display.
    """
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise PressroomError(f"unknown format {unknown[0]!r}; choose from {', '.join(FORMATS)}")
    counter = _WarningCounter()
    logging.getLogger("pressroom").addHandler(counter)
    try:
        pub = load_publication(config)
        theme = load_theme(config)
        files: dict[Path, bytes | str] = {}
        for fmt in formats:
            if on_step:
                on_step(fmt)
            for rel, data in _renderer(fmt)(pub, theme).items():
                files[config.out / rel] = data
    finally:
        logging.getLogger("pressroom").removeHandler(counter)
    if strict and counter.messages:
        raise PressroomError(f"{len(counter.messages)} warning(s) and --strict is on; nothing "
                             "was written:\n" + "\n".join(counter.messages))
    return BuildResult(written=write_all(files), warnings=counter.messages)
