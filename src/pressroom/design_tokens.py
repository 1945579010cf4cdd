"""Design tokens: each ``theme.yaml`` read with line numbers and checked against one schema,
then merged (project override over chosen theme over the default)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pressroom.fields import Fields, load_yaml, read_text
from pressroom.images import problem as image_problem

_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")
# Font names and CSS font stacks go into stylesheets: letters, digits, spaces, quotes, commas.
_FAMILY = re.compile(r"^[A-Za-z0-9 ,'\"_-]+$")
FONT_TYPES = (".ttf", ".otf", ".woff", ".woff2")
SIZES = {"body_pt": 6, "body_px": 10, "radius_px": 0, "email_width_px": 320}


def load_tokens(folders: list[Path]) -> dict[str, Any]:
    """Merge the ``theme.yaml`` of each folder (highest priority first in ``folders``)."""
    tokens: dict[str, Any] = {}
    for folder in reversed(folders):  # lowest priority first
        path = folder / "theme.yaml"
        if path.is_file():
            tokens = merge_tokens(tokens, _read(path, folders))
    return tokens


def merge_tokens(base: dict, over: dict) -> dict:
    """``over`` merged into ``base`` key by key (nested mappings too)."""
    out = dict(base)
    for key, value in over.items():
        both = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = merge_tokens(out[key], value) if both else value
    return out


def _read(path: Path, folders: list[Path]) -> dict[str, Any]:
    data, lines = load_yaml(read_text(path), path)
    f = Fields(data, lines, path, line=1)
    f.text("name", False)
    colours = f.mapping("colours", False)
    if colours is not None:
        for key in list(colours.data):
            value = colours.text(str(key)) or ""
            if not _COLOUR.match(value):
                raise colours.error(str(key), f"'colours.{key}' must be a colour like #2F6F6A, "
                                              f"got {value!r}")
        colours.done()
    fonts = f.mapping("fonts", False)
    if fonts is not None:
        for key in ("body", "heading"):
            font = fonts.mapping(key, False)
            if font is not None:
                _font(font, folders)
        for key in ("email_body", "email_heading"):
            _family(fonts, key)
        fonts.done()
    size = f.mapping("size", False)
    if size is not None:
        for key, minimum in SIZES.items():
            size.number(key, False, minimum=minimum)
        size.done()
    logo = f.text("logo", False)
    if logo is not None:
        found = _theme_file(f, "logo", logo, folders)
        bad = image_problem(found, found.parent)
        if bad:
            raise f.error("logo", f"logo '{logo}' {bad}")
    f.done()
    return data


def _family(f: Fields, key: str) -> None:
    value = f.text(key, False)
    if value is not None and not _FAMILY.match(value):
        raise f.error(key, f"'{f.prefix}.{key}' must be font names separated by commas, "
                           f"got {value!r}")


def _font(font: Fields, folders: list[Path]) -> None:
    _family(font, "family")
    _family(font, "fallback")
    if "files" in font.data:
        for entry in font.mappings("files"):
            name = entry.text("file") or ""
            if not name.lower().endswith(FONT_TYPES):
                raise entry.error("file", f"font file '{name}' must be one of "
                                          f"{', '.join(FONT_TYPES)}")
            _theme_file(entry, "file", name, folders)
            entry.choice("weight", ("normal", "bold"), False)
            entry.choice("style", ("normal", "italic"), False)
            entry.done()
    font.done()


def _theme_file(f: Fields, key: str, name: str, folders: list[Path]) -> Path:
    for folder in folders:
        candidate = (folder / name).resolve()
        if candidate.is_relative_to(folder.resolve()) and candidate.is_file():
            return candidate
    raise f.error(key, f"theme file '{name}' not found in {', '.join(map(str, folders))}")
