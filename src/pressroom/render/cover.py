"""The cover image, drawn from the theme: text becomes vector outlines from the theme's own
fonts (HarfBuzz), so the cover never depends on the machine's installed fonts."""

from __future__ import annotations

import hashlib
import html
import json
from functools import lru_cache
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

from pressroom.config import Config
from pressroom.derived import cached, peek, raster_key, rasterise
from pressroom.errors import PressroomError, where
from pressroom.model import Publication
from pressroom.render.forked import Forked
from pressroom.theme import Theme, load_theme

WIDTH, HEIGHT = 1600, 2400


class _Font:
    """One font file through uharfbuzz (~10 ms to import; fontTools took ~0.3-1 s)."""

    def __init__(self, data: bytes) -> None:
        import uharfbuzz as hb

        self.face = hb.Face(data)
        self.hb = hb.Font(self.face)
        self.upem = self.face.upem

    def glyph(self, ch: str) -> int:
        return self.hb.get_nominal_glyph(ord(ch)) or 0  # 0: .notdef

    def advance(self, gid: int) -> int:
        return self.hb.get_glyph_h_advance(gid)


@lru_cache(maxsize=8)
def _font(path: Path) -> _Font:
    return _Font(path.read_bytes())


def _advance(font: _Font, text: str, size: float) -> float:
    return sum(font.advance(font.glyph(ch)) for ch in text) * size / font.upem


class _SVGPen:
    """Collects a glyph's outline (pen protocol) as SVG path data, scaled and placed."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.scale, self.x, self.y = 1.0, 0.0, 0.0

    def _xy(self, *points: tuple[float, float]) -> str:
        return " ".join(f"{self.x + px * self.scale:.2f} {self.y - py * self.scale:.2f}"
                        for px, py in points)

    def moveTo(self, p):  # noqa: N802 (the pen protocol's names)
        self.parts.append("M" + self._xy(p))

    def lineTo(self, p):  # noqa: N802
        self.parts.append("L" + self._xy(p))

    def curveTo(self, *points):  # noqa: N802
        self.parts.append("C" + self._xy(*points))

    def qCurveTo(self, *points):  # noqa: N802
        self.parts.append("Q" + self._xy(*points))

    def closePath(self):  # noqa: N802
        self.parts.append("Z")


def text_path(font: _Font, text: str, x: float, y: float, size: float) -> str:
    """SVG path data for ``text`` with its baseline starting at (x, y)."""
    pen = _SVGPen()
    pen.scale, pen.y = size / font.upem, y
    for ch in text:
        gid = font.glyph(ch)
        pen.x = x
        font.hb.draw_glyph_with_pen(gid, pen)
        x += font.advance(gid) * pen.scale
    return "".join(pen.parts)


def wrap(font: _Font, text: str, size: float, width: float) -> list[str]:
    """Greedy word wrap to ``width`` pixels."""
    lines: list[str] = []
    for word in text.split():
        if lines and _advance(font, f"{lines[-1]} {word}", size) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return lines


def _centred(font: _Font, lines: list[str], top: float, size: float, leading: float) -> list[str]:
    out = []
    for i, line in enumerate(lines):
        x = (WIDTH - _advance(font, line, size)) / 2
        out.append(text_path(font, line, x, top + i * size * leading, size))
    return out


def cover_svg(cfg: Config, theme: Theme) -> str:
    """The cover as SVG: brand panel, title, subtitle, author, logo."""
    c = theme.tokens["colours"]
    heading = _font(theme.asset(theme.tokens["fonts"]["heading"]["files"][0]["file"]))
    body = _font(theme.asset(theme.tokens["fonts"]["body"]["files"][0]["file"]))
    title_lines = wrap(heading, cfg.title, 150, WIDTH - 260)
    sub_lines = wrap(body, cfg.subtitle, 58, WIDTH - 360)
    title_top = 1020
    sub_top = title_top + len(title_lines) * 165 + 60
    paths = [
        f'<path fill="{c["tint"]}" d="{d}"/>'
        for d in _centred(heading, title_lines, title_top, 150, 1.1)
    ]
    paths += [
        f'<path fill="{c["brand_tint"]}" d="{d}"/>'
        for d in _centred(body, sub_lines, sub_top, 58, 1.35)
    ]
    paths += [
        f'<path fill="{c["tint"]}" d="{d}"/>'
        for d in _centred(body, [cfg.author.name.upper()], 2040, 54, 1)
    ]
    paths += [
        f'<path fill="{c["brand_tint"]}" d="{d}"/>'
        for d in _centred(body, [cfg.publisher], 2120, 44, 1)
    ]
    logo_inner = ""
    if theme.logo is not None:
        logo = theme.logo.read_text(encoding="utf-8")
        logo_inner = logo.split(">", 1)[1].rsplit("</svg>", 1)[0]
    return f"""<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" \
viewBox="0 0 {WIDTH} {HEIGHT}">
<title>{html.escape(cfg.title)}</title>
<rect width="{WIDTH}" height="{HEIGHT}" fill="{c["brand"]}"/>
<rect x="70" y="70" width="{WIDTH - 140}" height="{HEIGHT - 140}" fill="none" \
stroke="{c["tint"]}" stroke-width="4" stroke-opacity="0.6"/>
<circle cx="{WIDTH / 2}" cy="2700" r="1050" fill="{c["brand_dark"]}" fill-opacity="0.55"/>
<g transform="translate({WIDTH / 2 - 150} 420) scale(2.5)">{logo_inner}</g>
<rect x="{WIDTH / 2 - 90}" y="{title_top - 190}" width="180" height="6" fill="{c["accent"]}"/>
{chr(10).join(paths)}
</svg>"""


# Bump when cover_svg's drawing changes: the cache key is the drawing's inputs, not its output.
# (2: fill-/stroke-opacity instead of group opacity: at most 6/255 apart, half resvg's time;
# 3: outlines through HarfBuzz instead of fontTools.)
COVER_VERSION = 3


def cover_key(cfg: Config, theme: Theme) -> bytes:
    """Everything the cover depends on: texts, colours, the logo and the two fonts' bytes."""
    tokens = theme.tokens
    fonts = [theme.asset(tokens["fonts"][k]["files"][0]["file"]) for k in ("heading", "body")]
    digests = [hashlib.sha256(p.read_bytes()).hexdigest() for p in fonts]
    logo = hashlib.sha256(theme.logo.read_bytes()).hexdigest() if theme.logo else None
    return json.dumps([COVER_VERSION, cfg.title, cfg.subtitle, cfg.author.name, cfg.publisher,
                       dict(tokens["colours"]), digests, logo, WIDTH, HEIGHT]).encode("utf-8")


def _raster(cfg: Config, theme: Theme) -> Forked:
    """The cover drawn and rasterised in a forked process (see :class:`PendingCover`)."""
    # Imported here, not in the child: the build subsets the ebook's fonts with it anyway.
    import uharfbuzz  # noqa: F401

    name = f"the cover image (with the logo {where(theme.logo)})" if theme.logo else None
    return Forked(lambda: rasterise(cover_svg(cfg, theme).encode("utf-8"), WIDTH, HEIGHT,
                                    name=name or "the cover image"), "the cover image")


def cover_png(pub: Publication, theme: Theme) -> bytes:
    """The cover as 1600x2400 PNG bytes; may fill the derived-file cache, keyed by the cover's
    inputs (drawing and rasterising take ~0.4 s, mostly resvg)."""
    with PendingCover(pub, theme) as cover:
        return cover.result()


class PendingCover:
    """The cover PNG being made beside the caller: drawn and rasterised in a forked process
    (resvg keeps the GIL: in a thread its ~0.4 s would stall the caller), or taken from the
    one :func:`cover_started` began. :meth:`result` waits for the bytes and fills the
    derived-file cache; :meth:`close` stops a child still running (``with`` closes it)."""

    def __init__(self, pub: Publication, theme: Theme) -> None:
        self.project, self.key = pub.config.project, raster_key(cover_key(pub.config, theme))
        self.png = peek(self.project, self.key, "png")
        self.job = None
        if self.png is None:
            self.job = _STARTED.pop(self.key, None) or _raster(pub.config, theme)

    def result(self) -> bytes:
        """The cover's PNG bytes (a RenderError when it could not be made)."""
        if self.png is None:
            assert self.job is not None
            png = self.job.result()
            self.png = cached(self.project, self.key, "png", lambda: png)
        return self.png

    def close(self) -> None:
        """Stop and reap the child if it is still running; idempotent."""
        if self.job is not None:
            self.job.close()

    def __enter__(self) -> PendingCover:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# Cover rasters begun by cover_started, by raster key: the first renderer that needs that
# cover (the ebook's or the site's) takes the process over.
_STARTED: dict[bytes, Forked] = {}


@contextmanager
def cover_started(config: Config, formats: Iterable[str]) -> Iterator[None]:
    """Begin the cover's raster before the load phase, so its ~0.4 s runs on another core
    while the content loads and the documents render: when ``formats`` include one with a
    cover (ebook, site) and the derived-file cache lacks it. The theme is read here for the
    cover's key only; its errors are left to the load phase. Leaving the block stops and
    reaps a raster no renderer took.

    Example::

        with cover_started(config, ("epub",)):
            pub, theme = load(config)
            files = render_epub(pub, theme)
    """
    job = key = None
    if {"epub", "site"} & set(formats):
        try:
            theme = load_theme(config)
            key = raster_key(cover_key(config, theme))
        except (PressroomError, OSError):
            key = None  # the load phase reports what is wrong, in its own order
        if key is not None and key not in _STARTED and peek(config.project, key, "png") is None:
            job = _STARTED[key] = _raster(config, theme)
    try:
        yield
    finally:
        if job is not None:
            if key is not None and _STARTED.get(key) is job:
                del _STARTED[key]
            job.close()
