"""The handout's page map: which elements begin on each printed page, read from WeasyPrint's
layout, so the ebook can mark where the handout's pages begin (its print page list)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Iterator


@dataclass(frozen=True)
class HandoutPages:
    """For each handout page (1-based, in order), the ids of the elements that begin on it, in
    layout order; ``paper`` is the edition laid out (``a4`` or ``letter``)."""

    paper: str
    starts: tuple[tuple[str, ...], ...]

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready form (the build's cache keeps it beside the PDF)."""
        return {"paper": self.paper, "starts": [list(ids) for ids in self.starts]}

    @classmethod
    def from_json(cls, data: Any) -> HandoutPages | None:
        """Read :meth:`to_json` back; None for anything else (an old or damaged cache)."""
        try:
            return cls(str(data["paper"]), tuple(tuple(map(str, ids)) for ids in data["starts"]))
        except (KeyError, TypeError, ValueError):
            return None

    @property
    def paper_label(self) -> str:
        """The paper as readers know it: 'A4' or 'US Letter'."""
        return {"a4": "A4", "letter": "US Letter"}.get(self.paper, self.paper)

    def __str__(self) -> str:
        return json.dumps(self.to_json())


def _boxes(box: Any) -> Iterator[Any]:
    yield box
    for child in getattr(box, "children", None) or ():
        yield from _boxes(child)


def page_starts(document: Any, paper: str) -> HandoutPages:
    """The page map of a laid-out WeasyPrint ``Document``: an element begins on the first page
    where one of its boxes appears (a paragraph split over two pages begins on the first)."""
    seen: set[str] = set()
    starts = []
    for page in document.pages:
        ids = []
        for box in _boxes(page._page_box):
            element = getattr(box, "element", None)
            anchor = element.get("id") if element is not None else None
            if anchor and anchor not in seen:
                seen.add(anchor)
                ids.append(anchor)
        starts.append(tuple(ids))
    return HandoutPages(paper, tuple(starts))

