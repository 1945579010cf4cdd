"""The theme's fonts: subset to the characters a book uses, for embedding in the EPUB."""

from __future__ import annotations

import html
import re
import string

from pressroom.assets import cached
from pressroom.model import Publication
from pressroom.theme import Theme

_TAGS = re.compile(r"<[^>]+>")


def font_files(theme: Theme) -> list[tuple[str, str]]:
    """(family key, theme-relative file) for every font face the theme declares."""
    return [(key, f["file"]) for key in ("body", "heading") for f in theme.tokens["fonts"][key]["files"]]


def subset(data: bytes, text: str) -> bytes:
    """A subset of a TrueType/OpenType font holding only the glyphs for ``text`` (HarfBuzz).

    Every name record is kept: the OFL asks for the copyright and licence names to travel
    with the font.
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


def embed_epub_fonts(book, pub: Publication, theme: Theme) -> None:
    """Add the theme's fonts, subset to the text of the book's documents, as EPUB items."""
    from ebooklib import epub
    import ebooklib

    chars = set(string.printable) | set("–—‘’“”…·•→©")
    for item in book.get_items_of_type(ebooklib.ITEM_DOCUMENT):
        content = item.content.decode("utf-8") if isinstance(item.content, bytes) else item.content
        chars |= set(html.unescape(_TAGS.sub(" ", content or "")))
    text = "".join(sorted(chars))
    for _key, rel in font_files(theme):
        name = rel.split("/")[-1]
        media = "font/otf" if name.endswith(".otf") else "font/ttf"
        data = theme.asset(rel).read_bytes()
        # Cached by font and character set: an unchanged book needs no HarfBuzz at all.
        content = cached(pub.config.project, data + text.encode("utf-8"), name.rsplit(".", 1)[1],
                         lambda data=data: subset(data, text))
        book.add_item(epub.EpubItem(uid=f"font-{name.rsplit('.', 1)[0]}", file_name=f"fonts/{name}",
                                    media_type=media, content=content))
