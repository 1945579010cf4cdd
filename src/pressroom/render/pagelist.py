"""The ebook's print page list: a page-break marker where each page of the printed handout
begins, and the page-list navigation that leads to them (EPUB 3, DPUB-ARIA)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from pressroom.render.pagemap import HandoutPages
from pressroom.theme import Theme

_ID = re.compile(r'<[A-Za-z][^<>]*?\sid="([^"]+)"')
_BODY = re.compile(r"<body\b[^>]*>")


@dataclass(frozen=True)
class PageMarker:
    """Handout page ``page`` begins at character ``at`` of the book's document ``doc``."""

    page: int
    doc: str
    at: int


def find_markers(docs: dict[str, str], pages: HandoutPages,
                 starts_of: dict[str, str]) -> list[PageMarker]:
    """Where each handout page begins in ``docs`` (name -> XHTML, in reading order): before the
    first element that begins on that page and carries the same id in the ebook; ``starts_of``
    maps handout ids to a whole document instead (its body's start). A page with no such element
    after the previous page's marker (a page that only continues one) gets no marker."""
    index: dict[str, tuple[int, int]] = {}
    names = list(docs)
    for d, name in enumerate(names):
        text = docs[name]
        for match in _ID.finditer(text):
            index.setdefault(match.group(1), (d, match.start()))
        body = _BODY.search(text)
        for anchor, doc in starts_of.items():
            if doc == name and body is not None:
                index[anchor] = (d, body.end())
    markers: list[PageMarker] = []
    last = (-1, -1)
    for page, ids in enumerate(pages.starts, 1):
        found = next((index[i] for i in ids if i in index and index[i] > last), None)
        if found is not None:
            markers.append(PageMarker(page, names[found[0]], found[1]))
            last = found
    return markers


def insert_markers(docs: dict[str, str], markers: list[PageMarker],
                   theme: Theme) -> dict[str, str]:
    """The documents that get markers, with them inserted (``epub/pagebreak.xhtml``)."""
    out: dict[str, str] = {}
    for marker in sorted(markers, key=lambda m: m.at, reverse=True):
        text = out.get(marker.doc, docs[marker.doc])
        span = theme.render("epub/pagebreak.xhtml", page=marker.page).strip()
        out[marker.doc] = text[:marker.at] + span + text[marker.at:]
    return out


def page_list_nav(nav: str, markers: list[PageMarker], theme: Theme) -> str:
    """The navigation document with its (hidden) page list added (``epub/page-list.xhtml``)."""
    items = [(m.page, f"{m.doc}#page-{m.page}") for m in markers]
    block = theme.render("epub/page-list.xhtml", pages=items)
    end = nav.rindex("</body>")
    return nav[:end] + block + nav[end:]
