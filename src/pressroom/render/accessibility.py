"""The ebook's own accessibility checks, and the metadata they allow it to declare: EPUB
Accessibility 1.1 / WCAG 2.2 AA conformance only when every check passes."""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from pathlib import Path

from pressroom.config import Config
from pressroom.contrast import AA_TEXT, contrast, hex_rgb
from pressroom.errors import where
from pressroom.fields import load_yaml, read_text
from pressroom.theme import Theme

CONFORMANCE = "EPUB Accessibility 1.1 - WCAG 2.2 Level AA"
# The only text the ebook shows in the theme's colours: the cover's lettering (render/cover.py).
# Everything else leaves text colour to the reading system.
TEXT_COLOURS = (("tint", "brand", "the cover's title and author"),
                ("brand_tint", "brand", "the cover's subtitle and publisher"))
DECORATIVE_ROLES = {"presentation", "none"}
XML_LANG = "http://www.w3.org/XML/1998/namespace lang"
_ANIMATION = (b"<animate", b"<set ", b"@keyframes", b"<audio", b"<video")
UNTIL = "the ebook declares no accessibility conformance until this is fixed"


@dataclass
class BookFacts:
    """What the checks found: counts for the summary, and the problems, as warnings."""

    images: int = 0  # with a text alternative
    decorative: int = 0
    tables: int = 0
    problems: list[str] = field(default_factory=list)
    kinds: set[str] = field(default_factory=set)  # "alt", "lang", "headings", "tables", "order"

    def add(self, kind: str, location: str, message: str) -> None:
        """Record one problem (``location`` is ``file:line``)."""
        self.kinds.add(kind)
        self.problems.append(f"{location}: {message}; {UNTIL}")


def _template_line(template: Path | None, pattern: str) -> int | None:
    if template is None or not template.is_file():
        return None
    for number, line in enumerate(template.read_text(encoding="utf-8").splitlines(), 1):
        if re.search(pattern, line):
            return number
    return None


def _locate(book: str, doc: str, line: int | None, template: Path | None, pattern: str) -> str:
    """The template line that made the element when it can be found there, else the line in
    the ebook's document."""
    found = _template_line(template, pattern)
    if found is not None and template is not None:
        return where(template, found)
    return f"{book}: EPUB/{doc}:{line or 1}"


class _Document:
    """One XHTML document read with expat (line numbers, no dependency beyond the stdlib)."""

    def __init__(self, text: str) -> None:
        from xml.parsers import expat

        self.root: dict[str, str] | None = None
        self.images: list[tuple[dict[str, str], int]] = []
        self.headings: list[tuple[int, int]] = []  # (level, line)
        self.tables: list[tuple[int, bool]] = []  # (line, has header cells)
        self._open: list[list] = []
        parser = expat.ParserCreate(namespace_separator=" ")
        parser.StartElementHandler = lambda tag, attrs: self._start(parser, tag, attrs)
        parser.EndElementHandler = self._end
        parser.Parse(text.encode("utf-8"), True)

    def _start(self, parser, tag: str, attrs: dict[str, str]) -> None:
        name = tag.rsplit(" ", 1)[-1]
        line = parser.CurrentLineNumber
        if self.root is None:
            self.root = attrs
        if name == "img":
            self.images.append((attrs, line))
        elif re.fullmatch(r"h[1-6]", name):
            self.headings.append((int(name[1]), line))
        elif name == "table":
            self._open.append([line, False])
        elif name == "th" and self._open:
            self._open[-1][1] = True

    def _end(self, tag: str) -> None:
        if tag.rsplit(" ", 1)[-1] == "table" and self._open:
            line, header = self._open.pop()
            self.tables.append((line, header))


def check_documents(book: str, docs: dict[str, str], templates: dict[str, Path],
                    spine: list[str], toc: list[str]) -> BookFacts:
    """Alt text (or a decorative mark) on every image, ``lang`` and ``xml:lang`` on every
    document, headings that never skip a level, header cells in every table, and a table of
    contents in reading (spine) order. ``docs`` are the book's XHTML documents by name."""
    facts = BookFacts()
    for name, text in docs.items():
        doc, template = _Document(text), templates.get(name)
        root = doc.root or {}
        if not root.get("lang") or not root.get(XML_LANG):
            facts.add("lang", _locate(book, name, 1, None, ""),
                      "the document has no lang and xml:lang; give the publication's language")
        _check_images(facts, book, name, doc, template)
        _check_headings(facts, book, name, doc, template)
        for line, header in doc.tables:
            facts.tables += 1
            if not header:
                facts.add("tables", _locate(book, name, line, template, r"<table\b"),
                          "a table has no header cells; mark its headings with <th scope=...>")
    positions = [spine.index(entry) for entry in toc if entry in spine]
    for before, after, entry in zip(positions, positions[1:], toc[1:]):
        if after < before:
            facts.add("order", f"{book}: EPUB/nav.xhtml",
                      f"the table of contents lists {entry} out of reading order")
            break
    return facts


def _check_images(facts: BookFacts, book: str, name: str, doc: _Document,
                  template: Path | None) -> None:
    for attrs, line in doc.images:
        alt, src = attrs.get("alt"), attrs.get("src", "")
        decorative = attrs.get("role") in DECORATIVE_ROLES or attrs.get("aria-hidden") == "true"
        if alt is None or (not alt.strip() and not decorative):
            facts.add("alt", _locate(book, name, line, template,
                                     r"<img\b(?![^>]*\balt=)" if alt is None else r"<img\b"),
                      f"image '{src}' has no alt text; describe it in alt=\"...\", or mark it "
                      "decorative with alt=\"\" role=\"presentation\"")
        elif not alt.strip():
            facts.decorative += 1
        else:
            facts.images += 1


def _check_headings(facts: BookFacts, book: str, name: str, doc: _Document,
                    template: Path | None) -> None:
    for (before, _), (level, line) in zip(doc.headings, doc.headings[1:]):
        if level > before + 1:
            facts.add("headings", _locate(book, name, line, template, rf"<h{level}\b"),
                      f"heading h{level} follows h{before}, skipping a level; make it "
                      f"h{before + 1}")
            return


def colour_origin(config: Config, theme: Theme, key: str) -> str:
    """``file:line`` where colour token ``key`` is set: publication.yaml's brand, else the first
    theme folder whose theme.yaml sets it."""
    if key in config.brand.colours:
        return where(config.path, config.line_of(f"brand.colours.{key}"))
    for folder in theme.folders:
        path = folder / "theme.yaml"
        if path.is_file():
            data, lines = load_yaml(read_text(path), path)
            if key in (data.get("colours") or {}):
                return where(path, lines.get(f"colours.{key}"))
    return "theme.yaml"


def colour_problems(config: Config, theme: Theme) -> list[str]:
    """Theme text colours under WCAG AA contrast (4.5:1) on their background, as warnings."""
    colours = theme.tokens["colours"]
    out = []
    for fg, bg, what in TEXT_COLOURS:
        ratio = contrast(hex_rgb(colours[fg]), hex_rgb(colours[bg]))
        if ratio < AA_TEXT:
            out.append(f"{colour_origin(config, theme, fg)}: colour '{fg}' {colours[fg]} on "
                       f"'{bg}' {colours[bg]} ({what}) has contrast {ratio:.2f}:1, under WCAG "
                       f"AA's {AA_TEXT}:1; make one darker or lighter; {UNTIL}")
    return out


def animated(images: list[bytes]) -> bool:
    """True when an image may move, flash or sound (SVG animation, CSS keyframes, media)."""
    return any(mark in data for data in images for mark in _ANIMATION)


@dataclass(frozen=True)
class Declaration:
    """Everything the metadata says, decided from the facts."""

    facts: BookFacts
    declared: bool
    exercises: int
    pages: int
    page_source: str | None
    moving: bool


def metadata(cfg: Config, strings, d: Declaration) -> str:
    """The accessibility ``<meta>`` elements of the package document."""
    f = d.facts
    alt_ok = "alt" not in f.kinds
    meta = [("schema:accessMode", "textual"), ("schema:accessMode", "visual")]
    meta += [("schema:accessModeSufficient", "textual")] if alt_ok else []
    meta += [("schema:accessModeSufficient", "textual,visual")]
    features = ["tableOfContents", "displayTransformability"]
    features += [] if "headings" in f.kinds else ["structuralNavigation"]
    features += [] if "order" in f.kinds else ["readingOrder"]
    features += ["alternativeText"] if alt_ok and f.images else []
    features += ["printPageNumbers", "pageBreakMarkers", "pageNavigation"] if d.pages else []
    meta += [("schema:accessibilityFeature", v) for v in sorted(features)]
    hazards = (["unknownFlashingHazard", "unknownMotionSimulationHazard"] if d.moving
               else ["noFlashingHazard", "noMotionSimulationHazard"]) + ["noSoundHazard"]
    meta += [("schema:accessibilityHazard", v) for v in hazards]
    meta += [("schema:accessibilitySummary", summary(strings, d))]
    if d.page_source:
        meta += [("pageBreakSource", d.page_source)]
    lines = [f'<meta property="{p}">{escape(v)}</meta>' for p, v in meta]
    if d.declared:
        e = cfg.epub
        lines += [f'<meta property="dcterms:conformsTo">{CONFORMANCE}</meta>',
                  f'<meta property="a11y:certifiedBy" id="certifier">'
                  f'{escape(e.certified_by or cfg.brand.name or cfg.publisher)}</meta>']
        if e.certifier_credential:
            lines.append(f'<meta property="a11y:certifierCredential" refines="#certifier">'
                         f'{escape(e.certifier_credential)}</meta>')
    return "\n    ".join(lines)


def escape(text: str) -> str:
    """``&``, ``<`` and ``>`` as entities (xml.sax.saxutils.escape's output, without its
    ~25 ms import of urllib.request, http and email)."""
    return html.escape(text, quote=False)


def summary(strings, d: Declaration) -> str:
    """The accessibility summary: the theme's sentences for what is true of this book."""
    f = d.facts
    values = {"images": f.images, "exercises": d.exercises, "tables": f.tables,
              "pages": d.pages, "source": d.page_source or ""}
    keys = [("a11y_images", f.images and "alt" not in f.kinds),
            ("a11y_exercises", d.exercises),
            ("a11y_structure", not f.kinds & {"headings", "order"}),
            ("a11y_tables", f.tables and "tables" not in f.kinds),
            ("a11y_pages", d.pages), ("a11y_display", True), ("a11y_hazards", not d.moving),
            ("a11y_conformance", d.declared)]
    return " ".join(strings[k].format_map(values) for k, wanted in keys if wanted)
