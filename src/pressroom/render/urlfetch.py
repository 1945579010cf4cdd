"""A URL fetcher for WeasyPrint that only reads files inside the project and ``data:`` URIs."""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Mapping
from urllib.parse import unquote, urlsplit

from pressroom.mediatypes import media_type

log = logging.getLogger(__name__)

# A font-family value in SVG markup: an attribute (font-family="...") or a CSS declaration
# (in a style attribute or a <style> element).
_FONT_FAMILY_ATTR = re.compile(r"""(font-family\s*=\s*)(["'])(.*?)\2""")
_FONT_FAMILY_CSS = re.compile(r"""(font-family\s*:\s*)([^;}"<>]*)""")


def theme_fonts_in_svg(svg: str, generic: Mapping[str, str]) -> str:
    """``svg`` with generic font families (``sans-serif``...) replaced by theme families.

    Illustrations usually label things in "sans-serif"; left alone, that resolves to whatever
    font the machine has installed, so the same project would print differently elsewhere.

    >>> theme_fonts_in_svg('<text font-family="Arial, sans-serif">', {"sans-serif": "Lato"})
    '<text font-family="Arial, Lato">'
    >>> theme_fonts_in_svg("<style>text { font-family: 'Open Sans', serif }</style>",
    ...                    {"serif": "EB Garamond"})
    "<style>text { font-family: 'Open Sans', EB Garamond }</style>"
    """
    def names(value: str) -> str:
        return ", ".join(generic.get(n.strip().lower(), n.strip()) for n in value.split(","))

    def css(m: re.Match) -> str:
        value = m[2].rstrip()
        return m[1] + names(value) + m[2][len(value):]  # keep the whitespace before ; or }

    svg = _FONT_FAMILY_ATTR.sub(lambda m: f"{m[1]}{m[2]}{names(m[3])}{m[2]}", svg)
    return _FONT_FAMILY_CSS.sub(css, svg)


def confined_file(url: str, roots: tuple[Path, ...]) -> tuple[Path | None, str]:
    """(the file a ``file:`` URL names, "") when it lies inside one of ``roots`` both as written
    (``..`` collapsed) and with every symlink resolved; else (None, why it is refused)."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "file":
        return None, ("only files inside the project can be used (no network access); copy it "
                      "into content/images/")
    if parts.netloc not in ("", "localhost"):
        return None, "files on other hosts cannot be used"
    written = Path(os.path.normpath(unquote(parts.path)))
    if not any(written.is_relative_to(root) for root in roots):
        return None, "it is outside the project's content and theme folders"
    try:
        real = written.resolve(strict=True)
    except (OSError, RuntimeError):
        return None, "file not found"
    if not any(real.is_relative_to(root) for root in roots):
        return None, f"it is a link to '{real}', outside the project's content and theme folders"
    if not real.is_file():
        return None, "not a file"
    return real, ""


def make_fetcher(roots: list[Path], document: str, svg_fonts: Mapping[str, str] | None = None):
    """A WeasyPrint ``URLFetcher`` confined to the folders in ``roots``.

    A ``file:`` URL is read only when the path, both as written (``..`` collapsed) and with
    every symlink resolved, lies inside one of ``roots``; ``data:`` URIs are decoded locally.
    Everything else (other files, ``http:``, ``ftp:``...) stops the render: the fetcher raises
    ``fetcher.refused``, a ``FatalURLFetchingError`` WeasyPrint never swallows, whose message
    names ``document`` and the reference. ``svg_fonts`` maps generic font families to the
    theme's, applied to every SVG file read (see :func:`theme_fonts_in_svg`).

    Example::

        fetcher = make_fetcher([project / "content", theme_folder], "clinic-handout.pdf")
        weasyprint.HTML(string=html, url_fetcher=fetcher).write_pdf()
    """
    # WeasyPrint is slow to import; only the PDF renderer needs it.
    from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

    resolved_roots = tuple(Path(r).resolve() for r in roots)

    class RefusedFetch(FatalURLFetchingError):
        """A reference the render may not load; the PDF renderer turns it into RenderError."""

        def __init__(self, url: str, reason: str) -> None:
            super().__init__(f"{document}: refused to load '{url}': {reason}")
            self.url = url
            self.reason = reason

    class ProjectFetcher(URLFetcher):
        """Reads project files and ``data:`` URIs; refuses everything else."""

        refused = RefusedFetch

        def fetch(self, url, headers=None):
            if urlsplit(url).scheme.lower() == "data":
                return super().fetch(url, headers)  # decoded by urllib's DataHandler, no I/O
            real, refusal = confined_file(url, resolved_roots)
            if real is None:
                raise RefusedFetch(url, refusal)
            kind = media_type(real.name)
            log.debug("%s: loading %s", document, real)
            data = real.read_bytes()
            if svg_fonts and kind == "image/svg+xml":
                data = theme_fonts_in_svg(data.decode("utf-8"), svg_fonts).encode("utf-8")
            return URLFetcherResponse(real.as_uri(), data, {"Content-Type": kind})

    return ProjectFetcher(timeout=5, allowed_protocols={"file", "data"}, allow_redirects=False,
                          fail_on_errors=True)
