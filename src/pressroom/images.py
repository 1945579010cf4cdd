"""Image files checked at load: rasters decoded within size limits, SVG parsed safely and
confined to the project, so no renderer ever meets a broken or hostile image."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from xml.etree.ElementTree import Element

# Limits for raster images (PNG, JPEG). A full-page photo at 300 dpi is about 2500 x 3500.
MAX_BYTES = 20 * 1024 * 1024
MAX_PIXELS = 30_000_000
MAX_SVG_BYTES = 5 * 1024 * 1024

_URL_IN_CSS = re.compile(r"""url\(\s*['"]?([^'")]*)""", re.IGNORECASE)
_IMPORT_IN_CSS = re.compile(r"""@import\s+(?:url\()?\s*['"]?([^'");\s]*)""", re.IGNORECASE)
_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*:")
_HREF = ("href", "{http://www.w3.org/1999/xlink}href", "src")


def problem(path: Path, root: Path) -> str | None:
    """What is wrong with the image file at ``path`` (None when it is fine).

    ``root`` is the folder every reference inside an SVG must stay within.
    """
    size = path.stat().st_size
    if path.suffix.lower() == ".svg":
        if size > MAX_SVG_BYTES:
            return (
                f"is {size / 1e6:.1f} MB; SVG drawings must be at most {MAX_SVG_BYTES // 2**20} MB"
            )
        return _svg_problem(path.read_bytes(), path, root)
    if size > MAX_BYTES:
        return (
            f"is {size / 1e6:.1f} MB; images must be at most {MAX_BYTES // 2**20} MB "
            "(save a smaller copy)"
        )
    return _raster_problem(path)


def _raster_problem(path: Path) -> str | None:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            # Pillow's own bomb warning; our limit below is lower and reported as an error.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            width, height = img.size
            if width * height > MAX_PIXELS:
                return (
                    f"is {width} x {height} pixels; images must be at most "
                    f"{MAX_PIXELS / 1e6:.0f} million pixels (save a smaller copy)"
                )
            if img.format not in ("PNG", "JPEG"):
                return f"is a {img.format} file, not PNG or JPEG"
            img.load()
    except Image.DecompressionBombError:
        return (
            f"has over {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} million pixels; "
            "images must be at "
            f"most {MAX_PIXELS / 1e6:.0f} million pixels (save a smaller copy)"
        )
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        return f"cannot be read as an image ({_first_line(exc)}); export it again"
    return None


def _svg_problem(data: bytes, path: Path, root: Path) -> str | None:
    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        tree = fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException:
        return (
            "declares a DTD or entities, which are not allowed in SVG here; remove the <!DOCTYPE>"
        )
    except ParseError as exc:
        return f"is not well-formed SVG ({_first_line(exc)}); export it again"
    if tree.tag != "{http://www.w3.org/2000/svg}svg":
        return "is not an SVG drawing (its root element is not <svg> in the SVG namespace)"
    for ref in _references(tree):
        bad = _reference_problem(ref, path, root)
        if bad:
            return bad
    return None


def _references(tree: Element) -> list[str]:
    refs: list[str] = []
    for el in tree.iter():
        refs.extend(el.get(attr) or "" for attr in _HREF if el.get(attr) is not None)
        refs.extend(m for value in el.attrib.values() for m in _URL_IN_CSS.findall(value))
        if str(el.tag).endswith("}style"):
            refs.extend(_URL_IN_CSS.findall(el.text or "") + _IMPORT_IN_CSS.findall(el.text or ""))
    return refs


def _reference_problem(ref: str, path: Path, root: Path) -> str | None:
    ref = ref.strip()
    if not ref or ref.startswith(("#", "data:")):
        return None
    if _SCHEME.match(ref):
        return f"refers to '{ref}'; an SVG may only use files inside the project, not URLs"
    target = (path.parent / ref.split("#")[0]).resolve()
    if not target.is_relative_to(root.resolve()):
        return f"refers to '{ref}', outside the project; move that file into the project"
    return None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0]
