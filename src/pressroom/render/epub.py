"""Publication -> EPUB 3 bytes (ebooklib), then re-zipped so the same input gives the same bytes."""

from __future__ import annotations

import datetime as _dt
import io
import logging
import os
import zipfile

from pressroom.model import Publication
from pressroom.render import fonts
from pressroom.render.cover import cover_png
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


def build_time(published: _dt.date) -> _dt.datetime:
    """The time stamped on outputs: SOURCE_DATE_EPOCH when set (reproducible builds), else
    midnight UTC of the publication's ``date`` (so builds stay reproducible without it)."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch and epoch.strip().isdigit():
        return _dt.datetime.fromtimestamp(int(epoch), _dt.timezone.utc).replace(tzinfo=None)
    return _dt.datetime(published.year, published.month, published.day)


def render_epub(pub: Publication, theme: Theme) -> dict[str, bytes]:
    """The ebook as ``{"<slug>.epub": bytes}``."""
    from ebooklib import epub

    cfg = pub.config
    book = epub.EpubBook()
    book.set_identifier(cfg.identifier)
    book.set_language(cfg.language)
    book.title = cfg.title  # used by the NCX docTitle and the nav
    book.add_metadata("DC", "title", cfg.title, {"id": "pub-title"})
    book.add_metadata(None, "meta", "main", {"refines": "#pub-title", "property": "title-type"})
    book.add_metadata("DC", "title", cfg.subtitle, {"id": "pub-subtitle"})
    book.add_metadata(None, "meta", "subtitle", {"refines": "#pub-subtitle", "property": "title-type"})
    book.add_metadata("DC", "creator", cfg.author.name, {"id": "pub-creator"})
    book.add_metadata(None, "meta", "aut", {"refines": "#pub-creator", "property": "role",
                                            "scheme": "marc:relators"})
    book.add_metadata(None, "meta", cfg.author.name, {"refines": "#pub-creator", "property": "file-as"})
    book.add_metadata("DC", "publisher", cfg.publisher)
    book.add_metadata("DC", "date", cfg.date.isoformat())
    book.add_metadata("DC", "rights", cfg.rights)
    book.add_metadata("DC", "description", cfg.description)
    for subject in cfg.subjects:
        book.add_metadata("DC", "subject", subject)
    for prop, value in ACCESSIBILITY:
        book.add_metadata(None, "meta", value, {"property": prop})
    book.add_metadata(None, "meta", SUMMARY, {"property": "schema:accessibilitySummary"})

    css = epub.EpubItem(uid="style", file_name="style.css", media_type="text/css",
                        content=theme.render("epub/style.css").encode("utf-8"))
    book.add_item(css)
    book.set_cover("images/cover.png", cover_png(pub, theme), create_page=False)
    for img in pub.images:
        media = "image/svg+xml" if img.src.endswith(".svg") else (
            "image/png" if img.src.endswith(".png") else "image/jpeg")
        book.add_item(epub.EpubItem(uid=img.stem, file_name=img.src, media_type=media,
                                    content=img.path.read_bytes()))

    def doc(name: str, title: str, template: str, **ctx) -> epub.EpubHtml:
        item = epub.EpubHtml(title=title, file_name=name, lang=cfg.language,
                             uid=name.rsplit(".", 1)[0])
        item.content = theme.render(f"epub/{template}", pub=pub, **ctx).encode("utf-8")
        item.add_item(css)
        book.add_item(item)
        return item

    def link(ex) -> str:
        return f"exercise-{ex.slug}.xhtml"

    cover = doc("cover.xhtml", "Cover", "cover.xhtml")
    title = doc("title.xhtml", "Title page", "title.xhtml")
    articles = [doc(f"article-{a.slug}.xhtml", a.title, "article.xhtml", article=a,
                    loop_first=i == 0) for i, a in enumerate(pub.articles)]
    part = doc("exercises.xhtml", "The exercises", "exercises.xhtml")
    exercises = [doc(link(ex), ex.title, "exercise.xhtml", ex=ex) for ex in pub.exercises]
    routines = doc("routines.xhtml", "Routines", "routines.xhtml", link=link) if pub.routines else None
    about = doc("about.xhtml", "About the author", "about.xhtml")
    back = doc("back.xhtml", "Keep going", "back.xhtml",
               handout_url=f"{cfg.website.rstrip('/')}/downloads/{cfg.slug}-handout.pdf")

    nav = epub.EpubNav(uid="nav", file_name="nav.xhtml", title="Contents")
    nav.add_item(css)
    book.add_item(nav)
    book.add_item(epub.EpubNcx())

    toc: list = []
    for a, item in zip(pub.articles, articles):
        subs = [epub.Link(f"{item.file_name}#{h.anchor}", h.text, h.anchor)
                for h in a.body.headings if h.level == 2]
        toc.append((epub.Section(a.title, item.file_name), subs) if subs else item)
    toc.append((epub.Section("The exercises", part.file_name), exercises))
    if routines is not None:
        toc.append(routines)
    toc += [about, back]
    book.toc = toc
    book.spine = [cover, title, nav, *articles, part, *exercises,
                  *([routines] if routines else []), about, back]
    book.guide = [
        {"type": "cover", "href": cover.file_name, "title": "Cover"},
        {"type": "toc", "href": nav.file_name, "title": "Contents"},
        {"type": "text", "href": articles[0].file_name if articles else part.file_name,
         "title": "Start reading"},
    ]
    fonts.embed_epub_fonts(book, pub, theme)
    raw = io.BytesIO()
    epub.write_epub(raw, book, {"mtime": build_time(cfg.date), "epub3_landmark": True,
                                "landmark_title": "Landmarks", "epub3_pages": False,
                                "compresslevel": 0,  # normalise_zip compresses, once
                                "play_order": {"enabled": True}})
    extra = {"META-INF/com.apple.ibooks.display-options.xml":
             theme.render("epub/display-options.xml").encode("utf-8")}
    return {f"{cfg.slug}.epub": normalise_zip(raw.getvalue(), extra, build_time(cfg.date))}


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
