"""Themes: an ordered folder list (project override -> chosen theme -> default) behind one
Jinja2 environment, plus the design tokens every format shares."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import jinja2

from pressroom.derived import cache_dir
from pressroom.config import Config
from pressroom.errors import ThemeError
from pressroom.design_tokens import load_tokens

log = logging.getLogger(__name__)

# The built-in themes ship beside the package in a source checkout (src/pressroom -> ../../themes).
BUILTIN_THEMES = Path(__file__).resolve().parents[2] / "themes"


def _autoescape(name: str | None) -> bool:
    # Markup is escaped; plain text (the email's text part) and CSS built from tokens are not.
    return (name or "").endswith((".html", ".xhtml", ".xml", ".mjml", ".svg"))


@dataclass(frozen=True)
class Theme:
    """The resolved theme: folders in priority order, merged tokens, one Jinja2 environment."""

    name: str
    folders: tuple[Path, ...]
    tokens: Mapping[str, Any]
    env: jinja2.Environment

    def asset(self, relative: str) -> Path:
        """The first folder's copy of a theme file (fonts, logo)."""
        for folder in self.folders:
            candidate = (folder / relative).resolve()
            if candidate.is_relative_to(folder.resolve()) and candidate.is_file():
                return candidate
        raise ThemeError(
            f"theme file '{relative}' not found in {', '.join(map(str, self.folders))}"
        )

    def render(self, template: str, **context: Any) -> str:
        """Render a template; template mistakes become ThemeError naming template:line."""
        try:
            return self.env.get_template(template).render(tokens=self.tokens, **context)
        except jinja2.TemplateError as exc:
            raise self._error(exc, template) from exc

    def copy(self, template: str, **context: Any) -> dict[str, Any]:
        """The top-level variables a template sets (``{% set title = "..." %}``): how Python
        code gets reader-facing sentences (the service's pages and emails) from the theme."""
        try:
            module = self.env.get_template(template).make_module(
                {"tokens": self.tokens, **context})
        except jinja2.TemplateError as exc:
            raise self._error(exc, template) from exc
        return {name: getattr(module, name) for name in dir(module) if not name.startswith("_")}

    def _error(self, exc: jinja2.TemplateError, template: str) -> ThemeError:
        if isinstance(exc, jinja2.TemplateSyntaxError):
            return ThemeError(f"{exc.filename or exc.name}:{exc.lineno}: {exc.message}")
        if isinstance(exc, jinja2.TemplateNotFound):
            return ThemeError(f"template '{exc.name}' not found in theme folders "
                              f"{', '.join(map(str, self.folders))}")
        if isinstance(exc, jinja2.UndefinedError):
            return ThemeError(f"{_template_location(exc, template)}: {exc.message}")
        raise exc


class _BytecodeCache(jinja2.FileSystemBytecodeCache):
    """Compiled templates in ``<project>/.pressroom/cache/jinja`` (Jinja2 checks each entry
    against its template's source, so an edited template is recompiled). Compiling is a third
    of a large EPUB's render time; an unwritable cache only costs that time again."""

    def __init__(self, directory: Path) -> None:
        super().__init__(str(directory))
        self.path = directory

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError as exc:
            log.debug("could not read compiled template %s: %s", bucket.key, exc)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
            super().dump_bytecode(bucket)
        except OSError as exc:
            log.debug("could not cache compiled template %s: %s", bucket.key, exc)


def _template_location(exc: BaseException, fallback: str) -> str:
    tb = exc.__traceback__
    where = fallback
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith((".html", ".xhtml", ".mjml", ".css", ".txt", ".j2", ".xml")):
            where = f"{filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def load_theme(config: Config) -> Theme:
    """Resolve the folder list for ``config.theme`` and build the environment."""
    candidates = [config.project / "themes" / config.theme, BUILTIN_THEMES / config.theme,
                  BUILTIN_THEMES / "default"]
    folders: list[Path] = []
    for folder in candidates:
        if folder.is_dir() and folder.resolve() not in [f.resolve() for f in folders]:
            folders.append(folder.resolve())
    if not folders or (config.theme != "default" and not any(
            f.name == config.theme for f in folders)):
        raise ThemeError(f"{config.path}: theme '{config.theme}' not found; create "
                         f"themes/{config.theme}/ or remove 'theme' to use the default")
    tokens = load_tokens(folders)
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(f) for f in folders]),
        autoescape=_autoescape, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        bytecode_cache=_BytecodeCache(cache_dir(config.project) / "jinja"))
    log.debug("theme folders: %s", folders)
    return Theme(config.theme, tuple(folders), MappingProxyType(tokens), env)
