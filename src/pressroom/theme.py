"""Themes: an ordered folder list (project override -> chosen theme -> default) behind one
Jinja2 environment, plus the design tokens every format shares."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Mapping

import jinja2

from pressroom.derived import cache_dir
from pressroom.config import Config
from pressroom.errors import ThemeError
from pressroom.design_tokens import load_tokens, merge_tokens
from pressroom.fields import load_yaml, read_text

log = logging.getLogger(__name__)

# The built-in themes: inside the installed package (the wheel maps the top-level themes/ folder
# to pressroom/themes at build time), else beside the package in a source checkout.
_PACKAGED_THEMES = Path(__file__).resolve().parent / "themes"
BUILTIN_THEMES = (_PACKAGED_THEMES if _PACKAGED_THEMES.is_dir()
                  else Path(__file__).resolve().parents[2] / "themes")
# A project's own overlay: files here override the chosen theme's, one file at a time.
OVERLAY = "theme"


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
    strings: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    logo: Path | None = None  # the brand's logo (SVG), if the project gives one

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
            return self.env.get_template(template).render(**self._globals(), **context)
        except jinja2.TemplateError as exc:
            raise self._error(exc, template) from exc

    def copy(self, template: str, **context: Any) -> dict[str, Any]:
        """The top-level variables a template sets (``{% set title = "..." %}``): how Python
        code gets reader-facing sentences (the service's pages and emails) from the theme."""
        try:
            module = self.env.get_template(template).make_module({**self._globals(), **context})
        except jinja2.TemplateError as exc:
            raise self._error(exc, template) from exc
        return {name: getattr(module, name) for name in dir(module) if not name.startswith("_")}

    def _globals(self) -> dict[str, Any]:
        return {"tokens": self.tokens, "strings": self.strings, "brand_logo": self.logo}

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
        self.made = False  # mkdir once per process, not once per template

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            super().load_bytecode(bucket)
        except OSError as exc:
            log.debug("could not read compiled template %s: %s", bucket.key, exc)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        try:
            if not self.made:
                self.path.mkdir(parents=True, exist_ok=True)
                self.made = True
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


def theme_roots(config: Config) -> list[Path]:
    """Every folder the theme's folders can come from, whether it exists now or not (a no-op
    rebuild is only decided when none of them changed, see fastpath.py)."""
    return [config.project / OVERLAY, config.project / "themes",
            BUILTIN_THEMES / config.theme, BUILTIN_THEMES / "default"]


def _folders(config: Config) -> list[Path]:
    overlay = config.project / OVERLAY
    themes = [config.project / "themes" / config.theme, BUILTIN_THEMES / config.theme,
              BUILTIN_THEMES / "default"]
    found = [f.resolve() for f in themes if f.is_dir()]
    if config.theme != "default" and not any(f.name == config.theme for f in found):
        raise ThemeError(f"{config.path}: theme '{config.theme}' not found; create "
                         f"themes/{config.theme}/ or remove 'theme' to use the default")
    if (BUILTIN_THEMES / "default").resolve() not in found:
        raise ThemeError(f"the default theme is missing from {BUILTIN_THEMES}; reinstall pressroom")
    folders: list[Path] = [overlay.resolve()] if overlay.is_dir() else []
    for folder in found:
        if folder not in folders:
            folders.append(folder)
    return folders


def _merged_yaml(folders: list[Path], name: str, what: str) -> dict:
    merged: dict = {}
    for folder in reversed(folders):  # lowest priority first
        path = folder / name
        if path.is_file():
            data, _lines = load_yaml(read_text(path), path)
            if not isinstance(data, dict):
                raise ThemeError(f"{path}:1: must be a mapping of {what}")
            merged = merge_tokens(merged, data)
    return merged


def _logo(config: Config, tokens: dict, folders: list[Path]) -> Path | None:
    """The brand's logo: publication.yaml's brand.logo (in content/), else the theme's."""
    if config.brand.logo:
        path = (config.content_dir / config.brand.logo).resolve()
        if not path.is_relative_to(config.content_dir.resolve()) or not path.is_file():
            raise ThemeError(f"{config.path}:{config.line_of('brand.logo') or 1}: brand logo "
                             f"'{config.brand.logo}' not found in content/; give a path like "
                             "images/logo.svg")
        return path
    if tokens.get("logo"):
        for folder in folders:
            candidate = (folder / tokens["logo"]).resolve()
            if candidate.is_relative_to(folder) and candidate.is_file():
                return candidate
        raise ThemeError(f"theme logo '{tokens['logo']}' not found in "
                         f"{', '.join(map(str, folders))}")
    return None


def load_theme(config: Config) -> Theme:
    """Resolve the folder list (project overlay -> chosen theme -> default), merge the tokens
    and strings of every folder, apply the project's ``brand`` and build the environment."""
    folders = _folders(config)
    tokens = load_tokens(folders)
    brand = config.brand
    tokens = merge_tokens(tokens, {"colours": dict(brand.colours), "fonts": _plain(brand.fonts)})
    tokens["name"] = brand.name or config.publisher
    strings = _merged_yaml(folders, "strings.yaml", "reader-facing sentences")
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader([str(f) for f in folders]),
        autoescape=_autoescape, undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        bytecode_cache=_BytecodeCache(cache_dir(config.project) / "jinja"))
    log.debug("theme folders: %s", folders)
    return Theme(config.theme, tuple(folders), MappingProxyType(tokens), env,
                 MappingProxyType(strings), _logo(config, tokens, folders))


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value
