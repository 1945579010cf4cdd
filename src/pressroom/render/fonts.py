"""The theme's fonts, subset to the characters a book uses, embedded in the EPUB."""

from __future__ import annotations

import html
import re
import string

from pressroom.derived import font_subset
from pressroom.mediatypes import media_type
from pressroom.model import Publication
from pressroom.theme import Theme

_TAGS = re.compile(r"<[^>]+>")


def font_files(theme: Theme) -> list[tuple[str, str]]:
    """(family key, theme-relative file) for every font file the theme declares."""
    return [
        (key, f["file"]) for key in ("body", "heading") for f in theme.tokens["fonts"][key]["files"]
    ]


def embed_epub_fonts(book, pub: Publication, theme: Theme) -> None:
    """Add the theme's fonts, subset to the text of the book's documents, as EPUB items; may
    fill the derived-file cache."""
    from ebooklib import epub
    import ebooklib

    chars = set(string.printable) | set("–—‘’“”…·•→©")
    for item in book.get_items_of_type(ebooklib.ITEM_DOCUMENT):
        content = item.content.decode("utf-8") if isinstance(item.content, bytes) else item.content
        chars |= set(html.unescape(_TAGS.sub(" ", content or "")))
    text = "".join(sorted(chars))
    for _key, rel in font_files(theme):
        name = rel.split("/")[-1]
        data = theme.asset(rel).read_bytes()
        # Cached by font and character set: an unchanged book needs no HarfBuzz at all.
        content = font_subset(pub.config.project, data, text, name.rsplit(".", 1)[1])
        book.add_item(epub.EpubItem(uid=f"font-{name.rsplit('.', 1)[0]}", file_name=f"fonts/{name}",
                                    media_type=media_type(name), content=content))
