"""Publication -> EPUB 3 bytes (ebooklib), then re-zipped so the same input gives the same bytes."""

from __future__ import annotations

import datetime as _dt
import io
import logging
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from pressroom.config import Config
from pressroom.mediatypes import media_type
from pressroom.model import Exercise, Publication
from pressroom.outputs import build_time, download_url, ebook_name, handout_name
from pressroom.render import fonts
from pressroom.render import accessibility as a11y
from pressroom.render.cover import PendingCover, cover_png
from pressroom.render.pagelist import find_markers, insert_markers, page_list_nav
from pressroom.render.pagemap import HandoutPages
from pressroom.theme import Theme

log = logging.getLogger(__name__)

PageSource = Callable[[], "HandoutPages | None"]


def render_epub(pub: Publication, theme: Theme,
                pages: HandoutPages | PageSource | None = None) -> dict[str, bytes]:
    """The ebook as ``{"<slug>.epub": bytes}``; may fill the derived-file cache (the cover PNG,
    the font subsets). Reads as the steps of Sphinx's EPUB builder: metadata, documents,
    navigation, package, then the print page list and the accessibility checks and metadata.

    ``pages`` is the handout's page map (from the PDF's layout), or a function that waits for
    it (asked only once the documents are rendered, so they render while a PDF worker is still
    laying the handout out); with ``epub.page_list`` on and none given, the handout is laid
    out here. Failed accessibility checks are logged as
    warnings, and the ebook then declares no conformance.

    Example::

        files = render_epub(load_publication(config), load_theme(config))
    """
    with PendingCover(pub, theme) as cover:  # drawn in another process meanwhile
        data, problems = assemble(pub, theme, _page_source(pub, theme, pages), cover.result)
    for message in problems:
        log.warning(message)
    return {ebook_name(pub.config): data}


def _page_source(pub: Publication, theme: Theme,
                 pages: HandoutPages | PageSource | None) -> PageSource:
    """The page map when the package asks for it: None with ``epub.page_list`` off."""
    def source() -> HandoutPages | None:
        if not pub.config.epub.page_list:
            return None
        if callable(pages):
            return pages()
        if pages is None:
            from pressroom.render.pdf import handout_page_map

            return handout_page_map(pub, theme)
        return pages
    return source


# What ebooklib writes before a document's body content (XML declaration, doctype, <html>, the
# rebuilt <head>): check's copies put the content on the same lines as the packaged book's.
_HEAD_LINES = 7


def accessibility_warnings(pub: Publication, theme: Theme) -> list[str]:
    """The ebook's accessibility problems as ``file:line: ...`` warnings, from its templates
    alone (no ebooklib, no packaging: ``check`` stays light). The package's language and
    reading order are made by the build itself and checked there."""
    lang = pub.config.language
    docs, sources = {}, {}
    for name, _title, template, ctx in content_documents(pub, theme.strings):
        body = theme.render(f"epub/{template}", pub=pub, **ctx)
        docs[name] = ('<html xmlns="http://www.w3.org/1999/xhtml" xmlns:epub="http://www.idpf.org'
                      f'/2007/ops" lang="{lang}" xml:lang="{lang}">' + "\n" * _HEAD_LINES
                      + f"<body>{body}</body></html>")
        sources[name] = Path(theme.env.get_template(f"epub/{template}").filename or template)
    facts = a11y.check_documents(ebook_name(pub.config), docs, sources, list(docs), [])
    return facts.problems + a11y.colour_problems(pub.config, theme)


def assemble(pub: Publication, theme: Theme, pages: PageSource,
             cover: Callable[[], bytes] | None = None) -> tuple[bytes, list[str]]:
    """The packaged ebook and its accessibility problems (none: it declares conformance);
    ``cover`` returns the cover PNG when it is drawn beside the documents."""
    from ebooklib import epub

    book = epub.EpubBook()
    build_metadata(book, pub.config)
    docs = build_documents(book, pub, theme, cover)
    build_navigation(book, pub, docs, theme.strings)
    raw = build_package(book, pub, theme)
    extra, problems = finish_package(raw, book, pub, theme, docs.sources, pages())
    extra["META-INF/com.apple.ibooks.display-options.xml"] = theme.render(
        "epub/display-options.xml").encode("utf-8")
    return normalise_zip(raw, extra, build_time(pub.config.date)), problems


def build_metadata(book, cfg: Config) -> None:
    """Dublin Core metadata with EPUB 3 refinements (the accessibility metadata comes last,
    from the checks: see :func:`finish_package`)."""
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
    sources: dict[str, Path]  # document name -> the theme template that made it


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

    sources: dict[str, Path] = {}

    def doc(name: str, title: str, template: str, **ctx) -> epub.EpubHtml:
        item = epub.EpubHtml(title=title, file_name=name, lang=cfg.language,
                             uid=name.rsplit(".", 1)[0])
        sources[name] = Path(theme.env.get_template(f"epub/{template}").filename or template)
        item.content = theme.render(f"epub/{template}", pub=pub, **ctx).encode("utf-8")
        item.add_item(css)
        book.add_item(item)
        return item

    items = {name: doc(name, title, template, **ctx)
             for name, title, template, ctx in content_documents(pub, theme.strings)}
    documents = Documents(
        css=css, cover=items["cover.xhtml"], title=items["title.xhtml"],
        articles=[items[f"article-{a.slug}.xhtml"] for a in pub.articles],
        part=items["exercises.xhtml"], exercises=[items[exercise_file(ex)] for ex in pub.exercises],
        routines=items.get("routines.xhtml"), about=items["about.xhtml"],
        back=items["back.xhtml"], sources=sources)
    book.get_item_with_id("cover-img").content = cover() if cover else cover_png(pub, theme)
    return documents


def content_documents(pub: Publication, words: Mapping[str, str]) -> list[tuple[str, str, str,
                                                                                dict]]:
    """The book's content documents in reading order: (file name, title, template, context)."""
    cfg = pub.config
    return [
        ("cover.xhtml", words["nav_cover"], "cover.xhtml", {}),
        ("title.xhtml", words["nav_title_page"], "title.xhtml", {}),
        *((f"article-{a.slug}.xhtml", a.title, "article.xhtml",
           {"article": a, "loop_first": i == 0}) for i, a in enumerate(pub.articles)),
        ("exercises.xhtml", words["nav_exercises"], "exercises.xhtml", {}),
        *((exercise_file(ex), ex.title, "exercise.xhtml", {"ex": ex}) for ex in pub.exercises),
        *([("routines.xhtml", words["nav_routines"], "routines.xhtml", {"link": exercise_file})]
          if pub.routines else []),
        ("about.xhtml", words["nav_about"], "about.xhtml", {}),
        ("back.xhtml", words["nav_back"], "back.xhtml",
         {"handout_url": download_url(cfg, handout_name(cfg))})]


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
    """The embedded font subsets, then the packaged OCF zip (as ebooklib writes it)."""
    from ebooklib import epub

    fonts.embed_epub_fonts(book, pub, theme)
    raw = io.BytesIO()
    epub.write_epub(raw, book, {"mtime": build_time(pub.config.date), "epub3_landmark": True,
                                "landmark_title": "Landmarks", "epub3_pages": False,
                                "compresslevel": 0,  # normalise_zip compresses, once
                                "play_order": {"enabled": True}})
    return raw.getvalue()


def finish_package(data: bytes, book, pub: Publication, theme: Theme, sources: dict[str, Path],
                   pages: HandoutPages | None) -> tuple[dict[str, bytes], list[str]]:
    """The files to replace in the package: the print page markers and page list (when
    ``pages`` is given), then the package document with its language and the accessibility
    metadata the checks allow. Returns those files and the checks' problems."""
    cfg = pub.config
    spine = [item.file_name for item in book.spine]
    zf = zipfile.ZipFile(io.BytesIO(data))
    texts = {name: zf.read(f"EPUB/{name}").decode("utf-8") for name in spine}
    changed: dict[str, str] = {}
    markers = find_markers(texts, pages, {"toc": "nav.xhtml"}) if pages else []
    if markers:
        changed = insert_markers(texts, markers, theme)
        changed["nav.xhtml"] = page_list_nav(changed.get("nav.xhtml", texts["nav.xhtml"]),
                                             markers, theme)
        texts.update(changed)
    facts = a11y.check_documents(ebook_name(cfg), texts, sources, spine,
                                 _toc_documents(texts["nav.xhtml"]))
    problems = facts.problems + a11y.colour_problems(cfg, theme)
    source = None
    if markers and pages is not None:
        source = theme.strings["page_break_source"].format(title=cfg.title,
                                                          paper=pages.paper_label)
    declaration = a11y.Declaration(
        facts, declared=not problems, exercises=len(pub.exercises), pages=len(markers),
        page_source=source, moving=a11y.animated([i.path.read_bytes() for i in pub.images]))
    out = {f"EPUB/{name}": text.encode("utf-8") for name, text in changed.items()}
    out["EPUB/content.opf"] = package_document(
        zf.read("EPUB/content.opf").decode("utf-8"), cfg.language,
        a11y.metadata(cfg, theme.strings, declaration)).encode("utf-8")
    return out, problems


def _toc_documents(nav: str) -> list[str]:
    """The documents the table of contents links to, in its order."""
    toc = re.search(r'<nav [^>]*epub:type="toc".*?</nav>', nav, re.S)
    return [h.split("#")[0] for h in re.findall(r'href="([^"]+)"', toc.group(0))] if toc else []


def package_document(opf: str, language: str, metadata: str) -> str:
    """The OPF with ``xml:lang`` on its ``<package>`` (ebooklib 0.20 leaves it out; reading
    systems and DAISY Ace take the book's language from there) and ``metadata`` added."""
    if not re.search(r"<package\b[^>]*\bxml:lang=", opf):
        opf = re.sub(r"<package\b", f'<package xml:lang="{language}"', opf, count=1)
    return opf.replace("</metadata>", f"  {metadata}\n  </metadata>", 1)


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
