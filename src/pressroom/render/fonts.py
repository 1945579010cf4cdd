"""The theme's fonts: subset to the characters a book uses, for embedding in the EPUB."""

from __future__ import annotations

import html
import logging
import io
import re
import string

from pressroom.model import Publication
from pressroom.theme import Theme

_TAGS = re.compile(r"<[^>]+>")
# fontTools reports routine subsetting decisions as warnings; they are not the user's problem.
for _name in ("fontTools.subset", "fontTools.ttLib", "fontTools.ttLib.tables._h_e_a_d"):
    logging.getLogger(_name).setLevel(logging.ERROR)


def font_files(theme: Theme) -> list[tuple[str, str]]:
    """(family key, theme-relative file) for every face the theme declares."""
    return [(key, f["file"]) for key in ("body", "heading") for f in theme.tokens["fonts"][key]["files"]]


def subset(data: bytes, text: str) -> bytes:
    """A subset of a TrueType/OpenType font holding only the glyphs for ``text``."""
    from fontTools import subset as ft_subset
    from fontTools.ttLib import TTFont

    options = ft_subset.Options()
    options.layout_features = ["kern", "liga", "onum", "lnum", "pnum", "tnum"]
    options.name_IDs = ["*"]  # keep copyright and licence names (OFL requires them)
    options.notdef_outline = True
    options.recalc_timestamp = False  # reproducible bytes
    font = TTFont(io.BytesIO(data), recalcTimestamp=False)
    subsetter = ft_subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


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
        book.add_item(epub.EpubItem(uid=f"font-{name.rsplit('.', 1)[0]}", file_name=f"fonts/{name}",
                                    media_type=media,
                                    content=subset(theme.asset(rel).read_bytes(), text)))
