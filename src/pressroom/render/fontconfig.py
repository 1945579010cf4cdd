"""A private fontconfig configuration for WeasyPrint: it sees the theme's fonts and nothing
else, and every family a stylesheet or SVG names resolves to one of them, so a PDF comes out
the same on any machine whatever fonts it has installed."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from pressroom.derived import cache_dir
from pressroom.output import write_atomic
from pressroom.theme import Theme

# Families a stylesheet, an SVG or a browser default may ask for, and the theme font that
# stands in for each; anything else falls back to the body font.
HEADING_ALIASES = ("serif", "Georgia", "Times", "Times New Roman", "Palatino", "cursive",
                   "fantasy")
BODY_ALIASES = ("sans-serif", "system-ui", "monospace", "Helvetica", "Arial", "Verdana",
                "DejaVu Sans", "Segoe UI", "-apple-system", "BlinkMacSystemFont")


def config_xml(theme: Theme, cache: Path) -> str:
    """The fontconfig XML: the theme's font folders only, aliases, a last-resort fallback."""
    fonts = theme.tokens["fonts"]
    body, heading = fonts["body"]["family"], fonts["heading"]["family"]
    folders = sorted({str(theme.asset(f["file"]).parent) for key in ("body", "heading")
                      for f in fonts[key]["files"]})

    def alias(name: str, family: str) -> str:
        return (f"  <alias binding=\"same\"><family>{escape(name)}</family>"
                f"<prefer><family>{escape(family)}</family></prefer></alias>\n")

    return ("<?xml version=\"1.0\"?>\n<!DOCTYPE fontconfig SYSTEM \"urn:fontconfig:fonts.dtd\">\n"
            "<fontconfig>\n"
            + "".join(f"  <dir>{escape(folder)}</dir>\n" for folder in folders)
            + f"  <cachedir>{escape(str(cache))}</cachedir>\n"
            + "".join(alias(name, heading) for name in HEADING_ALIASES)
            + "".join(alias(name, body) for name in BODY_ALIASES)
            + "  <match target=\"pattern\"><edit name=\"family\" mode=\"append_last\">"
            f"<string>{escape(body)}</string></edit></match>\n"
            "</fontconfig>\n")


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = old


def font_configuration(theme: Theme, project: Path) -> Any:
    """A WeasyPrint ``FontConfiguration`` loaded from the private configuration only."""
    from weasyprint.text.fonts import FontConfiguration

    folder = cache_dir(project) / "fontconfig"
    text = config_xml(theme, folder)
    path = folder / "fonts.conf"
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        write_atomic(path, text)
    # fontconfig reads FONTCONFIG_FILE when a configuration is loaded; only this one is ours.
    # (Pango keeps what it matched for the whole process, so every PDF render goes through
    # here rather than through WeasyPrint's default configuration.)
    with _environment("FONTCONFIG_FILE", str(path)):
        return FontConfiguration()
