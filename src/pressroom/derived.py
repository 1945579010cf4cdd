"""Derived files (SVG rasterised to PNG, fonts subset to a text) made through one read-through
cache, ``<project>/.pressroom/cache/<sha256>.<ext>``: slow to make, they depend only on their
own inputs. Every function here returns bytes and may fill that cache; nothing else is written."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from functools import lru_cache
from typing import Callable, Mapping, Sequence

from pressroom import __version__, environment
from pressroom.errors import RenderError
from pressroom.output import write_atomic

log = logging.getLogger(__name__)


def cache_dir(project: Path) -> Path:
    """Where derived assets are kept (git-ignored, outside output/)."""
    return project / ".pressroom" / "cache"


def _cache_path(project: Path, key: bytes, ext: str) -> Path:
    digest = hashlib.sha256(__version__.encode() + b"\0" + key).hexdigest()
    return cache_dir(project) / f"{digest}.{ext}"


def peek(project: Path, key: bytes, ext: str) -> bytes | None:
    """What :func:`cached` has for ``key``, or None (nothing is made)."""
    try:
        return _cache_path(project, key, ext).read_bytes()
    except OSError:
        return None


def cached(project: Path, key: bytes, ext: str, make: Callable[[], bytes]) -> bytes:
    """``make()``'s bytes, from the cache when the same ``key`` was made before.

    The key covers every input (the caller passes e.g. the SVG source and the size); a
    damaged or unwritable cache only costs time, never a wrong result.
    """
    path = _cache_path(project, key, ext)
    try:
        return path.read_bytes()
    except OSError:
        pass
    data = make()
    try:
        write_atomic(path, data)
    except OSError as exc:
        log.debug("could not cache %s: %s", path, exc)
    return data


def svg_png(project: Path, key: bytes, svg: Callable[[], bytes], width: int,
            height: int | None = None, url: str | None = None,
            fonts: Sequence[Path] = (), families: Mapping[str, str] | None = None) -> bytes:
    """PNG bytes of the SVG ``svg()`` returns, ``width`` (and ``height``) pixels; may fill the
    derived-file cache. ``key`` names every input of the drawing (``svg`` runs only on a cache
    miss, so the drawing itself can be costly); ``url`` (the SVG's own path) resolves its
    relative links. Text is set in ``fonts`` (the theme's files) first, with the generic
    families mapped by ``families`` (e.g. ``{"sans-serif": "Lato"}``), then the machine's."""
    families = dict(families or {})
    key = raster_key(key, fonts, families)
    return cached(project, key, "png",
                  lambda: rasterise(svg(), width, height, url, fonts, families))


def rasterise(svg: bytes, width: int, height: int | None = None, url: str | None = None,
              fonts: Sequence[Path] = (), families: Mapping[str, str] | None = None,
              name: str | None = None) -> bytes:
    """PNG bytes of ``svg`` (see :func:`svg_png`, which caches them); pure. An SVG resvg
    cannot draw is a RenderError naming ``name`` (else ``url``)."""
    # resvg (Rust) imports in ~2 ms; CairoSVG needed cairocffi, ~0.5-1.3 s to import.
    import resvg_py

    families = families or {}
    try:
        return bytes(resvg_py.svg_to_bytes(
            svg_string=svg.decode("utf-8"), width=width, height=height,
            resources_dir=str(Path(url).parent) if url else None,
            font_files=[str(f) for f in fonts] or None,
            sans_serif_family=families.get("sans-serif"),
            serif_family=families.get("serif")))
    except ValueError as exc:  # images are checked at load; this is a renderer's limit
        raise RenderError(f"{name or url or 'SVG'}: could not rasterise: {exc}") from None


# Part of every raster's cache key: another rasteriser (or version) draws other pixels.
RASTERISER = "resvg-py"


def raster_key(key: bytes, fonts: Sequence[Path] = (),
               families: Mapping[str, str] | None = None) -> bytes:
    """The derived-file cache key of a raster: the caller's ``key`` plus the rasteriser, its
    version and the fonts (peek with ``peek(project, raster_key(...), "png")``)."""
    return key + "\0".join(["", RASTERISER, environment.version(RASTERISER),
                            *map(_font_id, fonts),
                            *(f"{k}={v}" for k, v in sorted((families or {}).items()))]
                           ).encode("utf-8")


@lru_cache(maxsize=64)
def _font_id(path: Path) -> str:
    return f"{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()}"


def font_subset(project: Path, data: bytes, text: str, ext: str) -> bytes:
    """The font ``data`` subset to the characters of ``text`` (see :func:`subset`); may fill the
    derived-file cache, keyed by the font and the character set."""
    return cached(project, data + text.encode("utf-8"), ext, lambda: subset(data, text))


def subset(data: bytes, text: str) -> bytes:
    """A subset of a TrueType/OpenType font holding only the glyphs for ``text`` (HarfBuzz).

    Every name record is kept: the OFL asks for the copyright and licence names to travel
    with the font. Pure: returns bytes, uses no cache.
    """
    import uharfbuzz as hb

    face = hb.Face(data)
    request = hb.SubsetInput()
    for ch in text:
        request.unicode_set.add(ord(ch))
    names = request.sets(hb.SubsetInputSets.NAME_ID)
    for name_id in range(0, 26):
        names.add(name_id)
    return hb.subset(face, request).blob.data
