"""Publication -> EPUB 3 bytes (ebooklib), then re-zipped so the same input gives the same bytes."""

from __future__ import annotations

import datetime as _dt
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from pressroom.config import Config
from pressroom.mediatypes import media_type
from pressroom.model import Exercise, Publication
from pressroom.outputs import build_time, download_url, ebook_name, handout_name
from pressroom.render import fonts
from pressroom.render.cover import cover_png, cover_png_in_background
from pressroom.theme import Theme

log = logging.getLogger(__name__)

ACCESSIBILITY = [
    ("schema:accessMode", "textual"),
    ("schema:accessMode", "visual"),
    ("schema:accessModeSufficient", "textual"),
    ("schema:accessModeSufficient", "textual,visual"),
    ("schema:accessibilityFeature", "alternativeText"),
    ("schema:accessibilityFeature", "structuralNavigation"),
    ("schema:accessibilityFeature", "tableOfContents"),
    ("schema:accessibilityFeature", "readingOrder"),
    ("schema:accessibilityFeature", "displayTransformability"),
    ("schema:accessibilityHazard", "none"),
    ("dcterms:conformsTo", "EPUB Accessibility 1.1 - WCAG 2.1 Level AA"),
]
SUMMARY = ("All illustrations have text descriptions, and every exercise can be followed from its "
           "written steps alone. Headings are in order; the navigation lists every chapter and "
           "exercise. Text colours are left to the reading system so light, sepia and dark "
           "themes work. No flashing content, sound or motion.")


def render_epub(pub: Publication, theme: Theme) -> dict[str, bytes]:
    """The ebook as ``{"<slug>.epub": bytes}``; may fill the derived-file cache (the cover PNG,
    the font subsets). Reads as the steps of Sphinx's EPUB builder: metadata, documents,
    navigation, package.

    Example::

        files = render_epub(load_publication(config), load_theme(config))
    """
    cover = cover_png_in_background(pub, theme)  # overlaps the documents below
    from ebooklib import epub

    book = epub.EpubBook()
    build_metadata(book, pub.config)
    docs = build_documents(book, pub, theme, cover)
    build_navigation(book, pub, docs, theme.strings)
    return {ebook_name(pub.config): build_package(book, pub, theme)}


def build_metadata(book, cfg: Config) -> None:
    """Dublin Core metadata with EPUB 3 refinements, and the accessibility metadata."""
    book.set_identifier(cfg.identifier)
    book.set_language(cfg.language)
    book.title = cfg.title  # used by the NCX docTitle and the nav
    book.add_metadata("DC", "title", cfg.title, {"id": "pub-title"})
    book.add_metadata(None, "meta", "main", {"refines": "#pub-title", "property": "title-type"})
    book.add_metadata("DC", "title", cfg.subtitle, {"id": "pub-subtitle"})
    book.add_metadata(None, "meta", "subtitle", {"refines": "#pub-subtitle",
                                                 "property": "title-type"})
    book.add_metadata("DC", "creator", cfg.author.name, {"id": "pub-creator"})
    book.add_metadata(None, "meta", "aut", {"refines": "#pub-creator", "property": "role",
                                            "scheme": "marc:relators"})
    book.add_metadata(None, "meta", cfg.author.name, {"refines": "#pub-creator",
                                                      "property": "file-as"})
    book.add_metadata("DC", "publisher", cfg.publisher)
    book.add_metadata("DC", "date", cfg.date.isoformat())
    book.add_metadata("DC", "rights", cfg.rights)
    book.add_metadata("DC", "description", cfg.description)
    for subject in cfg.subjects:
        book.add_metadata("DC", "subject", subject)
    for prop, value in ACCESSIBILITY:
        book.add_metadata(None, "meta", value, {"property": prop})
    book.add_metadata(None, "meta", SUMMARY, {"property": "schema:accessibilitySummary"})


@dataclass
class Documents:
    """The book's content documents, by role, in reading order, and the stylesheet they share."""

    css: Any
    cover: Any
    title: Any
    articles: list
    part: Any
    exercises: list
    routines: Any | None
    about: Any
    back: Any


def exercise_file(ex: Exercise) -> str:
    """An exercise's document inside the book (routines link to it)."""
    return f"exercise-{ex.slug}.xhtml"


def build_documents(book, pub: Publication, theme: Theme,
                    cover: Callable[[], bytes] | None = None) -> Documents:
    """The stylesheet, cover image, illustrations and every content document, added to the book's
    manifest; ``cover()`` gives the cover PNG when it is being made meanwhile."""
    from ebooklib import epub

    cfg = pub.config
    css = epub.EpubItem(uid="style", file_name="style.css", media_type="text/css",
                        content=theme.render("epub/style.css").encode("utf-8"))
    book.add_item(css)
    # The cover item keeps its place in the manifest; its bytes are filled in at the end.
    book.set_cover("images/cover.png", b"", create_page=False)
    for img in pub.images:
        book.add_item(epub.EpubItem(uid=img.stem, file_name=img.src, media_type=media_type(img.src),
                                    content=img.path.read_bytes()))

    def doc(name: str, title: str, template: str, **ctx) -> epub.EpubHtml:
        item = epub.EpubHtml(title=title, file_name=name, lang=cfg.language,
                             uid=name.rsplit(".", 1)[0])
        item.content = theme.render(f"epub/{template}", pub=pub, **ctx).encode("utf-8")
        item.add_item(css)
        book.add_item(item)
        return item

    words = theme.strings
    documents = Documents(
        css=css, cover=doc("cover.xhtml", words["nav_cover"], "cover.xhtml"),
        title=doc("title.xhtml", words["nav_title_page"], "title.xhtml"),
        articles=[doc(f"article-{a.slug}.xhtml", a.title, "article.xhtml", article=a,
                      loop_first=i == 0) for i, a in enumerate(pub.articles)],
        part=doc("exercises.xhtml", words["nav_exercises"], "exercises.xhtml"),
        exercises=[doc(exercise_file(ex), ex.title, "exercise.xhtml", ex=ex)
                   for ex in pub.exercises],
        routines=(doc("routines.xhtml", words["nav_routines"], "routines.xhtml",
                      link=exercise_file)
                  if pub.routines else None),
        about=doc("about.xhtml", words["nav_about"], "about.xhtml"),
        back=doc("back.xhtml", words["nav_back"], "back.xhtml",
                 handout_url=download_url(cfg, handout_name(cfg))))
    book.get_item_with_id("cover-img").content = cover() if cover else cover_png(pub, theme)
    return documents


def build_navigation(book, pub: Publication, docs: Documents, words: Mapping[str, str]) -> None:
    """The navigation document, the NCX, the table of contents, the spine and the landmarks
    (labelled with the theme's ``nav_*`` strings)."""
    from ebooklib import epub

    nav = epub.EpubNav(uid="nav", file_name="nav.xhtml", title=words["nav_contents"])
    nav.add_item(docs.css)
    book.add_item(nav)
    book.add_item(epub.EpubNcx())
    toc: list = []
    for a, item in zip(pub.articles, docs.articles):
        subs = [epub.Link(f"{item.file_name}#{h.anchor}", h.text, h.anchor)
                for h in a.body.headings if h.level == 2]
        toc.append((epub.Section(a.title, item.file_name), subs) if subs else item)
    toc.append((epub.Section(words["nav_exercises"], docs.part.file_name), docs.exercises))
    routines = [docs.routines] if docs.routines is not None else []
    book.toc = [*toc, *routines, docs.about, docs.back]
    book.spine = [docs.cover, docs.title, nav, *docs.articles, docs.part, *docs.exercises,
                  *routines, docs.about, docs.back]
    first = docs.articles[0] if docs.articles else docs.part
    book.guide = [
        {"type": "cover", "href": docs.cover.file_name, "title": words["nav_cover"]},
        {"type": "toc", "href": nav.file_name, "title": words["nav_contents"]},
        {"type": "text", "href": first.file_name, "title": words["nav_start"]},
    ]


def build_package(book, pub: Publication, theme: Theme) -> bytes:
    """The embedded font subsets, then the packaged OCF zip, re-zipped for reproducibility."""
    from ebooklib import epub

    fonts.embed_epub_fonts(book, pub, theme)
    raw = io.BytesIO()
    epub.write_epub(raw, book, {"mtime": build_time(pub.config.date), "epub3_landmark": True,
                                "landmark_title": "Landmarks", "epub3_pages": False,
                                "compresslevel": 0,  # normalise_zip compresses, once
                                "play_order": {"enabled": True}})
    extra = {"META-INF/com.apple.ibooks.display-options.xml":
             theme.render("epub/display-options.xml").encode("utf-8"),
             **package_language(raw.getvalue(), pub.config.language)}
    return normalise_zip(raw.getvalue(), extra, build_time(pub.config.date))


def package_language(data: bytes, language: str) -> dict[str, bytes]:
    """The OPF with ``xml:lang`` on its ``<package>`` (ebooklib 0.20 leaves it out; reading
    systems and DAISY Ace take the book's language from there)."""
    name = "EPUB/content.opf"
    opf = zipfile.ZipFile(io.BytesIO(data)).read(name).decode("utf-8")
    if re.search(r"<package\b[^>]*\bxml:lang=", opf):
        return {}
    return {name: re.sub(r"<package\b", f'<package xml:lang="{language}"', opf, count=1)
            .encode("utf-8")}


def normalise_zip(data: bytes, extra: dict[str, bytes], when: _dt.datetime) -> bytes:
    """Re-zip: mimetype first and stored, fixed timestamps and order, extra files added."""
    stamp = when.timetuple()[:6]
    stamp = max(stamp, (1980, 1, 1, 0, 0, 0))
    src = zipfile.ZipFile(io.BytesIO(data))
    entries = {info.filename: src.read(info) for info in src.infolist()}
    entries.update(extra)
    order = ["mimetype", "META-INF/container.xml"]
    names = order + sorted(n for n in entries if n not in order)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name in names:
            info = zipfile.ZipInfo(name, date_time=stamp)
            info.external_attr = 0o644 << 16
            info.create_system = 3
            # mimetype must be stored; PNG and JPEG are compressed already.
            stored = name == "mimetype" or name.endswith((".png", ".jpg", ".jpeg"))
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            zf.writestr(info, entries[name], compresslevel=None if stored else 6)
    return out.getvalue()
