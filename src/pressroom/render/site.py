"""Publication -> the static site: landing page, newsletter archive, sign-up page, 404 page,
stylesheet, cover, illustrations and web fonts. Returns files and writes no output; the cover
comes through the derived-file cache (derived.py), which it may fill."""

from __future__ import annotations

import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from urllib.parse import urlsplit

from pressroom.config import Config
from pressroom.model import Publication
from pressroom.outputs import address_lines, download_names, download_path
from pressroom.render.cover import cover_png
from pressroom.derived import subset
from pressroom.theme import Theme

log = logging.getLogger(__name__)

# Web fonts are subset to a fixed repertoire (Latin-1 plus typographic punctuation) rather than
# to the page text, so the pages the subscription service renders at run time are covered too.
FONT_RANGES = ((0x20, 0x7E), (0xA0, 0xFF), (0x2013, 0x2014), (0x2018, 0x201E), (0x2022, 0x2022),
               (0x2026, 0x2026), (0x2032, 0x2033), (0x20AC, 0x20AC), (0x2192, 0x2192))
FONT_CHARS = "".join(chr(c) for lo, hi in FONT_RANGES for c in range(lo, hi + 1))
# (theme family key, theme font file index) -> the faces the site's CSS declares.
_FACES = (("body", "normal", "normal"), ("body", "normal", "italic"), ("body", "bold", "normal"),
          ("heading", "normal", "normal"))
# Folders the site itself uses: a sign-up page is never written over them.
RESERVED = {"newsletters", "downloads", "fonts", "images", "subscribe", "confirm", "unsubscribe"}
_PATH = re.compile(r"^[a-z0-9][a-z0-9-]*(?:/[a-z0-9][a-z0-9-]*)*$")


@dataclass(frozen=True)
class Download:
    """One downloadable file as the landing page offers it."""

    key: str  # ebook | handout | quickref
    href: str  # relative to the site root
    title: str
    label: str
    format: str
    note: str


@dataclass(frozen=True)
class FontFace:
    """One @font-face rule of the site's stylesheet."""

    family: str
    weight: str
    style: str
    file: str  # relative to the site root


def site_inputs(pub: Publication) -> list[Path]:
    """The content files ``render_site`` reads, besides publication.yaml and the theme's files
    (for the build cache): articles, exercises and their illustrations, routines, newsletters."""
    paths = {a.path for a in pub.articles} | {r.path for r in pub.routines}
    paths |= {n.path for n in pub.newsletters} | {e.path for e in pub.exercises}
    paths |= {e.illustration.path for e in pub.exercises}
    return sorted(paths)


def downloads(pub: Publication, strings: Mapping[str, str]) -> list[Download]:
    """What the landing page offers for download, in the order it shows them."""
    cfg = pub.config
    paper = "A4" if cfg.paper == "a4" else "US Letter"
    names = download_names(cfg, pub.daily is not None)
    out = [
        Download("ebook", download_path(names[0]), strings["ebook_title"],
                 strings["ebook_button"], "EPUB", strings["ebook_note"]),
        Download("handout", download_path(names[1]), strings["handout_title"],
                 strings["handout_button"], f"PDF, {paper}",
                 strings["handout_note_tracker" if pub.programme else "handout_note"]),
    ]
    if pub.daily is not None:
        out.append(Download("quickref", download_path(names[2]), strings["quickref_title"],
                            strings["quickref_button"], f"PDF, one {paper} page",
                            f"{pub.daily.title}, on one page {strings['quickref_keep']}."))
    return out


def signup_page(config: Config) -> str | None:
    """Where the sign-up page goes (e.g. ``newsletter/index.html``) when the configured
    ``newsletter.signup_url`` is a page of this site, else None."""
    site, url = urlsplit(config.website), urlsplit(config.newsletter.signup_url)
    path = url.path.strip("/")
    if url.netloc.lower() != site.netloc.lower() or url.query or not path:
        return None
    if path.endswith(".html"):
        folder, _, name = path.rpartition("/")
        target = f"{folder}/{name}" if folder else name
        check = path[:-5]
    else:
        target, check = f"{path}/index.html", path
    if not _PATH.match(check) or check.split("/")[0] in RESERVED:
        log.debug("newsletter.signup_url %s is not a page the site can hold", url.geturl())
        return None
    return target


def _woff(data: bytes) -> bytes:
    from fontTools.ttLib import TTFont

    font = TTFont(io.BytesIO(data), recalcTimestamp=False)  # byte-identical rebuilds
    font.flavor = "woff"
    out = io.BytesIO()
    font.save(out, reorderTables=True)
    return out.getvalue()


def web_fonts(theme: Theme) -> tuple[list[FontFace], dict[str, bytes]]:
    """The theme's faces the site uses, subset and packed as WOFF: (faces, files)."""
    faces, files = [], {}
    for key, weight, style in _FACES:
        family = theme.tokens["fonts"][key]
        match = next((f for f in family["files"]
                      if f.get("weight", "normal") == weight and f.get("style", "normal") == style),
                     None)
        if match is None:
            continue
        stem = match["file"].rsplit("/", 1)[-1].rsplit(".", 1)[0].lower()
        rel = f"fonts/{stem}.woff"
        files[rel] = _woff(subset(theme.asset(match["file"]).read_bytes(), FONT_CHARS))
        faces.append(FontFace(family["family"], weight, style, rel))
    return faces, files


def page_context(config: Config, root: str) -> dict:
    """What every page template needs: the config, the relative path to the site root and the
    address lines of the footer. Shared with the subscription service's pages."""
    return dict(cfg=config, root=root, home=root or "./", address_lines=address_lines(config),
                phone_href="tel:" + re.sub(r"[^0-9+]", "", config.contact.phone or ""),
                site_host=urlsplit(config.website).netloc)


def render_site(pub: Publication, theme: Theme) -> dict[str, bytes | str]:
    """Every file of the static site, keyed ``site/<path>``.

    The pages link to each other and to their assets with relative URLs (the 404 page, which
    can be served at any depth, with root-relative ones), so the folder can be hosted as plain
    files anywhere. The EPUB and PDFs are not included: the build copies them into
    ``site/downloads/`` under the names ``download_names()`` gives.

    Example::

        files = render_site(load_publication(config), load_theme(config))
    """
    cfg = pub.config
    issues = sorted(pub.newsletters, key=lambda i: (i.date, i.number), reverse=True)
    images = {ex.slug: f"images/{ex.illustration.stem}{ex.illustration.path.suffix.lower()}"
              for ex in pub.exercises}
    shared = dict(pub=pub, issues=issues, downloads=downloads(pub, theme.strings),
                  exercise_images=images)
    faces, font_files = web_fonts(theme)
    files: dict[str, bytes | str] = {
        "site/index.html": theme.render("site/index.html", **page_context(cfg, ""), **shared),
        "site/newsletters/index.html": theme.render("site/archive.html",
                                                    **page_context(cfg, "../"), **shared),
        "site/404.html": theme.render("site/404.html", **page_context(cfg, "/"), **shared),
        "site/style.css": theme.render("site/style.css", faces=faces),
        "site/cover.png": cover_png(pub, theme),
    }
    if theme.logo is not None:
        files["site/logo.svg"] = theme.logo.read_bytes()
    signup = signup_page(cfg)
    if signup:
        root = "../" * signup.count("/")
        files[f"site/{signup}"] = theme.render("site/signup.html", **page_context(cfg, root),
                                               **shared)
    for ex in pub.exercises:
        files[f"site/{images[ex.slug]}"] = ex.illustration.path.read_bytes()
    files.update({f"site/{rel}": data for rel, data in font_files.items()})
    return files
