"""Publication -> the PDF handout and the one-page quick-reference sheet (WeasyPrint, tagged)."""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import math
import os
import re
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pressroom.errors import RenderError
from pressroom.render.forked import Forked
from pressroom.render.urlfetch import make_fetcher
from pressroom.model import Publication, Routine
from pressroom.outputs import build_time, handout_name, quickref_name, website_label
from pressroom.render.fontconfig import font_configuration
from pressroom.render.pagemap import HandoutPages, page_starts
from pressroom.render.pdftags import finish_tags
from pressroom.theme import Theme

log = logging.getLogger(__name__)

# Trim size in millimetres (what the reader holds; --print-shop adds the bleed around it).
PAPER_MM = {"a4": (210.0, 297.0), "letter": (215.9, 279.4)}
BLEED_MM = 3
# Quick-reference sheet: its page margins (quickref.css), header and footer heights (mm), and
# how many times to shrink the exercise tiles (6 % each) before giving up on one page.
QUICKREF_MARGINS_MM, QUICKREF_HEADER_MM, QUICKREF_FOOTER_MM = 24, 30, 42
QUICKREF_FIT_LEVELS = 6
QUICKREF_TILE_MAX_MM = 60
# How handout.html marks a card's blank stand-in (a theme without them: the handout is whole).
STUB_MARKUP = '<section class="exercise-card card-stub"'


def utm_url(url: str, source: str, medium: str, campaign: str) -> str:
    """``url`` with UTM parameters marking where the visitor came from."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.update(utm_source=source, utm_medium=medium, utm_campaign=campaign)
    return urlunsplit(parts._replace(query=urlencode(query)))


def qr_data_uri(url: str, colour: str) -> str:
    """A vector (SVG) QR code as a data: URI."""
    import segno

    svg = segno.make(url, error="m").svg_inline(scale=4, dark=colour, border=2, omitsize=False)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def _context(pub: Publication, theme: Theme, paper: str, print_shop: bool, source: str) -> dict:
    cfg = pub.config

    def asset_url(rel: str) -> str:
        return theme.asset(rel).as_uri()

    width, height = PAPER_MM[paper]
    qr_url = utm_url(cfg.newsletter.signup_url, source, "print", cfg.slug)
    return dict(pub=pub, paper=paper, print_shop=print_shop, font_url=asset_url,
                asset_url=asset_url, qr_url=qr_url,
                logo_url=theme.logo.as_uri() if theme.logo else None, page_w=width, page_h=height,
                bleed=BLEED_MM if print_shop else 0,
                qr_src=qr_data_uri(qr_url, theme.tokens["colours"]["ink"]),
                website_label=website_label(cfg),
                created=build_time(cfg.date).strftime("%Y-%m-%dT%H:%M:%SZ"))


def handout_html(pub: Publication, theme: Theme, paper: str, print_shop: bool,
                 stub_cards: bool = False) -> str:
    """The exact HTML document fed to WeasyPrint for the handout; ``stub_cards`` lays out a
    blank one-page stand-in for each exercise card (see :func:`cards_html`)."""
    ctx = _context(pub, theme, paper, print_shop, "handout")
    css = theme.render("pdf/base.css", **ctx) + theme.render("pdf/handout.css", **ctx)
    return theme.render("pdf/handout.html", css=css, stub_cards=stub_cards, **ctx)


def cards_html(pub: Publication, theme: Theme, paper: str, print_shop: bool) -> str:
    """The handout's exercise cards alone, one a page, styled as in the handout."""
    ctx = _context(pub, theme, paper, print_shop, "handout")
    css = theme.render("pdf/base.css", **ctx) + theme.render("pdf/handout.css", **ctx)
    return theme.render("pdf/cards.html", css=css, **ctx)


def _daily(pub: Publication) -> Routine:
    """The daily routine; the quick-reference sheet is only made for a publication with one."""
    assert pub.daily is not None
    return pub.daily


def quickref_html(pub: Publication, theme: Theme, paper: str, print_shop: bool,
                  fit: int = 0) -> str:
    """The exact HTML document fed to WeasyPrint for the quick-reference sheet.

    The exercise tiles share the height left between the header and the footer; ``fit``
    (0 = roomiest) shrinks them and the type step by step (see :func:`quickref_pdf`).
    """
    ctx = _context(pub, theme, paper, print_shop, "quick-reference")
    daily = _daily(pub)
    rows = max(1, math.ceil(len(daily.items) / 2))
    # The page less its margins (quickref.css), header, footer and the 3 mm gaps between rows.
    tiles_mm = (ctx["page_h"] - QUICKREF_MARGINS_MM - QUICKREF_HEADER_MM - QUICKREF_FOOTER_MM
                - 3 * (rows - 1))
    tile_mm = min(QUICKREF_TILE_MAX_MM, tiles_mm / rows)
    # A short routine leaves space under its tiles: it goes above the footer, which so stays
    # at the foot of the page.
    spare_mm = tiles_mm - tile_mm * rows
    ctx.update(fit=fit, tile_mm=round(tile_mm * (1 - 0.06 * fit), 1),
               foot_gap_mm=round(4 + spare_mm, 1))
    css = theme.render("pdf/base.css", **ctx) + theme.render("pdf/quickref.css", **ctx)
    return theme.render("pdf/quickref.html", css=css, **ctx)


def _pdf_options() -> dict:
    # PDF/UA-1: tagged structure tree, /Lang, DisplayDocTitle, XMP metadata.
    return dict(pdf_variant="pdf/ua-1", uncompressed_pdf=False, custom_metadata=True)


class _Forward(logging.Handler):
    """Re-log WeasyPrint's warnings and errors under pressroom, so ``--strict`` sees them."""

    def __init__(self, document: str) -> None:
        super().__init__(logging.WARNING)
        self.document = document

    def emit(self, record: logging.LogRecord) -> None:
        log.warning("%s: %s", self.document, record.getMessage())


@contextlib.contextmanager
def _forward_weasyprint_logs(document: str):
    logger = logging.getLogger("weasyprint")
    handler = _Forward(document)
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)


def render_document(html: str, pub: Publication, theme: Theme, document: str):
    """Lay out ``html`` with the project-confined fetcher; a WeasyPrint ``Document``.

    A reference outside the project (or any fetch failure) is a RenderError naming
    ``document`` and the reference.
    """
    import weasyprint
    from weasyprint.urls import FatalURLFetchingError

    fonts = theme.tokens["fonts"]
    generic = {"sans-serif": fonts["body"]["family"], "serif": fonts["heading"]["family"]}
    fetcher = make_fetcher([pub.config.content_dir, *theme.folders], document, svg_fonts=generic)
    font_config = font_configuration(theme, pub.config.project)
    try:
        with _forward_weasyprint_logs(document):
            return weasyprint.HTML(string=html, base_url=pub.config.content_dir.as_uri() + "/",
                                   url_fetcher=fetcher).render(font_config=font_config,
                                                               **_pdf_options())
    except FatalURLFetchingError as exc:
        raise RenderError(_fetch_message(exc, document)) from None


def write_document(doc, document: str) -> bytes:
    """Draw a laid-out ``Document`` as tagged PDF bytes (attachments are fetched here)."""
    from weasyprint.urls import FatalURLFetchingError

    try:
        with _forward_weasyprint_logs(document):
            return doc.write_pdf(finisher=finish_tags, **_pdf_options())
    except FatalURLFetchingError as exc:
        raise RenderError(_fetch_message(exc, document)) from None


def _fetch_message(exc: BaseException, document: str) -> str:
    if str(exc).startswith(f"{document}: "):
        return str(exc)  # our own refusal: already names the document and the reference
    cause = exc.__cause__
    return f"{document}: {exc}" + (f" ({cause})" if cause else "")


def html_to_pdf(html: str, pub: Publication, theme: Theme, document: str) -> bytes:
    """Run WeasyPrint with the project-confined fetcher; tagged PDF/UA output as bytes."""
    return write_document(render_document(html, pub, theme, document), document)


def quickref_pdf(pub: Publication, theme: Theme, paper: str, print_shop: bool,
                 document: str) -> bytes:
    """The quick-reference sheet at the roomiest fit level that keeps it to exactly one page.

    Tries the roomiest level, then the most compact one (so a routine that can never fit
    fails after two layouts), then the levels in between.
    """
    def layout(fit: int):
        return render_document(quickref_html(pub, theme, paper, print_shop, fit), pub, theme,
                               document)

    last = QUICKREF_FIT_LEVELS - 1
    doc = layout(0)
    if len(doc.pages) > 1:
        compact = layout(last)
        if len(compact.pages) > 1:
            raise RenderError(
                f"{document}: the daily routine '{_daily(pub).title}' does not fit on one page "
                f"({len(_daily(pub).items)} exercises, notes included); shorten the notes or move "
                "exercises into another routine")
        doc = next((d for d in map(layout, range(1, last)) if len(d.pages) == 1), compact)
    return write_document(doc, document)


def pdf_parts(pub: Publication) -> tuple[str, ...]:
    """The documents of the PDF job: the handout, and the quick reference when there is a
    daily routine. Each can render alone (a parallel build gives each its own process)."""
    return ("handout", "quick-reference") if pub.daily is not None else ("handout",)


def handout_page_map(pub: Publication, theme: Theme) -> HandoutPages:
    """Lay the handout out (without drawing it) and return its page map: for an ebook built
    without the PDF when no page map is cached. The handout with stand-ins is laid out here
    while its cards are counted in a forked process (the merged PDF has the same pages); when
    a card runs over one page, or the theme has no stand-ins, the handout is laid out whole."""
    cfg = pub.config
    handout = handout_name(cfg)
    html = handout_html(pub, theme, cfg.paper, cfg.print_shop, stub_cards=True)
    if pub.exercises and html.count(STUB_MARKUP) == len(pub.exercises):
        card_html = cards_html(pub, theme, cfg.paper, cfg.print_shop)
        cards = _Cards(pub, theme, card_html, [], handout, fork=True)
        try:
            doc = render_document(html, pub, theme, handout)
            stubs = _stub_pages(doc, pub)
            if stubs is not None and cards.page_count() == len(stubs):
                return page_starts(doc, cfg.paper)
        finally:
            cards.close()  # only its page count was wanted: it is stopped before drawing ends
    doc = render_document(handout_html(pub, theme, cfg.paper, cfg.print_shop), pub, theme,
                          handout)
    return page_starts(doc, cfg.paper)


def _linked_anchors(cards: str, book: str) -> list[str]:
    """The anchors of the rest of the handout (``book``) that the cards link to."""
    ids = set(re.findall(r'\sid="([^"]+)"', book)) - set(re.findall(r'\sid="([^"]+)"', cards))
    return sorted(set(re.findall(r'\shref="#([^"]+)"', cards)) & ids)


def _cards_pdf(pub: Publication, theme: Theme, html: str, linked: list[str], document: str,
               laid_out: Callable[[int], None]) -> bytes:
    """The cards document (``html``), drawn; ``laid_out(pages)`` is told its page count first.

    Its links to the rest of the handout (to the ``linked`` anchors) are kept: it pretends to
    have those anchors (on its first page), and the merge keeps the handout's destinations.
    """
    doc = render_document(html, pub, theme, document)
    laid_out(len(doc.pages))
    if doc.pages:
        for name in linked:
            doc.pages[0].anchors[name] = (0, 0, 0, 0)
    return write_document(doc, document)


class _Cards:
    """The cards document, laid out and drawn beside the rest of the handout: in a forked
    process when ``fork`` (its page count comes back first, through its own pipe), else
    here when asked for."""

    def __init__(self, pub: Publication, theme: Theme, html: str, linked: list[str],
                 document: str, fork: bool) -> None:
        self.make = lambda tell: _cards_pdf(pub, theme, html, linked, document, tell)
        self.job: Forked | None = None
        self.pages: int | None = None
        self.data: bytes | None = None
        if fork:
            read, write = os.pipe()

            def tell(pages: int) -> None:
                os.write(write, b"%d\n" % pages)

            self.job = Forked(lambda: self.make(tell), f"{document}: the exercise cards")
            os.close(write)
            self._counted = os.fdopen(read, "rb")  # read when the page count is needed

    def page_count(self) -> int | None:
        """The cards document's page count (None: its process died before telling)."""
        if self.job is None:
            self.data = self.make(lambda n: setattr(self, "pages", n))
        elif self.pages is None:
            line = self._counted.readline()
            self.pages = int(line) if line.strip() else None
        return self.pages

    def result(self) -> bytes:
        if self.data is None:
            assert self.job is not None
            self.data = self.job.result()
        return self.data

    def close(self) -> None:
        """Stop the cards' process if it still runs."""
        if self.job is not None:
            self.job.close()
            self._counted.close()


def _stub_pages(doc, pub: Publication) -> list[int] | None:
    """The 0-based page of each card's stand-in, in order; None if the theme's handout has
    no stand-ins (then it is the whole handout)."""
    where = {name: i for i, page in enumerate(doc.pages) for name in page.anchors}
    pages = [where.get(f"exercise-{ex.slug}") for ex in pub.exercises]
    if any(p is None for p in pages) or len(set(pages)) != len(pages):
        return None
    return [p for p in pages if p is not None]


def _assets(pub: Publication, theme: Theme) -> bytes:
    """What the handout's HTML names but does not contain: every image, the theme's files
    (fonts, logo) and the machine's renderers, by content."""
    from pressroom import environment
    from pressroom.fastpath import file_digest

    files = sorted({*(i.path for i in pub.images), pub.cover_image.path,
                    *(p for folder in theme.folders for p in folder.rglob("*") if p.is_file())})
    return environment.fingerprint().encode() + b"".join(
        str(p).encode() + b"\0" + file_digest(p) for p in files)


class _StaleCache(Exception):
    """A cached half of the handout would not merge: both are drawn afresh."""


def handout_pdf(pub: Publication, theme: Theme, document: str,
                on_page_map: Callable[[HandoutPages], None] | None = None,
                fork: bool = False) -> bytes:
    """The handout. Its exercise cards (one page each, by design) are laid out and drawn as a
    document of their own, in another process when ``fork``, while the rest is laid out with
    a blank stand-in page for each; the two are then merged (:mod:`render.pdfmerge`). Each
    of the two is kept in the derived-file cache, so an edit to a card's text redraws only the
    cards, and an edit elsewhere only the rest. A theme without stand-ins, or a card that runs
    over one page, gets the handout laid out whole. ``on_page_map`` receives the page map as
    soon as it is known (once)."""
    told: list[HandoutPages] = []

    def tell(pages: HandoutPages) -> None:
        if not told and on_page_map is not None:
            on_page_map(pages)
        told.append(pages)

    try:
        return _split_handout(pub, theme, document, tell, fork, use_cache=True)
    except _StaleCache as exc:
        log.info("%s: a cached part would not merge (%s): drawing both afresh", document, exc)
        return _split_handout(pub, theme, document, tell, fork, use_cache=False)


def _split_handout(pub: Publication, theme: Theme, document: str,
                   tell: Callable[[HandoutPages], None], fork: bool, use_cache: bool) -> bytes:
    from pressroom import derived
    from pressroom.render.pdfmerge import MergeError, merge_cards

    cfg = pub.config
    html = handout_html(pub, theme, cfg.paper, cfg.print_shop, stub_cards=True)
    if not pub.exercises or html.count(STUB_MARKUP) != len(pub.exercises):
        return _whole_handout(pub, theme, document, tell)
    assets = _assets(pub, theme)
    book_key = b"handout-book\0" + assets + html.encode()
    card_html = cards_html(pub, theme, cfg.paper, cfg.print_shop)
    linked = _linked_anchors(card_html, html)
    cards_key = b"handout-cards\0" + assets + card_html.encode() + "\0".join(linked).encode()
    cards_pdf = derived.peek(cfg.project, cards_key, "pdf") if use_cache else None
    cards = (None if cards_pdf is not None
             else _Cards(pub, theme, card_html, linked, document, fork))
    try:
        laid = _book(pub, theme, document, html, book_key if use_cache else None, cards, tell)
        if laid is None:
            log.info("%s: an exercise card runs over one page: laying the handout out whole",
                     document)
            return _whole_handout(pub, theme, document, tell)
        book, stubs, pages, cached_book = laid
        drawn = cards.result() if cards is not None else cards_pdf
        assert drawn is not None
        try:
            merged = merge_cards(book, drawn, stubs)
        except MergeError as exc:
            if cached_book or cards is None:
                raise _StaleCache(str(exc)) from None
            raise RenderError(f"{document}: could not merge the exercise cards ({exc})") from None
        derived.cached(cfg.project, cards_key, "pdf", lambda: drawn)
        derived.cached(cfg.project, book_key, "pdf", lambda: book)
        derived.cached(cfg.project, book_key, "json", lambda: json.dumps(
            {"stubs": stubs, "pages": pages.to_json()}).encode())
        return merged
    finally:
        if cards is not None:
            cards.close()


def _book(pub: Publication, theme: Theme, document: str, html: str, key: bytes | None,
          cards: _Cards | None, tell: Callable[[HandoutPages], None]
          ) -> tuple[bytes, list[int], HandoutPages, bool] | None:
    """The handout with stand-ins: drawn, its stand-in pages, its page map (told as soon as
    it is laid out, before it is drawn), and whether it came from the cache (``key``: where
    this exact document was kept); None if a card runs over one page."""
    cached = _cached_book(pub.config.project, key) if key is not None else None
    if cached is not None:
        book, stubs, pages = cached
        if cards is not None and cards.page_count() != len(stubs):
            return None
        tell(pages)
        return book, stubs, pages, True
    doc = render_document(html, pub, theme, document)
    found = _stub_pages(doc, pub)
    if found is None or (cards is not None and cards.page_count() != len(found)):
        return None
    pages = page_starts(doc, pub.config.paper)
    tell(pages)
    return write_document(doc, document), found, pages, False


def _cached_book(project: Path, key: bytes) -> tuple[bytes, list[int], HandoutPages] | None:
    from pressroom import derived

    book, meta = derived.peek(project, key, "pdf"), derived.peek(project, key, "json")
    if book is None or meta is None:
        return None
    try:
        data = json.loads(meta)
        stubs = [int(i) for i in data["stubs"]]
        pages = HandoutPages.from_json(data["pages"])
    except (ValueError, KeyError, TypeError):
        return None  # a damaged cache entry only costs the time to draw it again
    return (book, stubs, pages) if pages is not None else None


def _whole_handout(pub: Publication, theme: Theme, document: str,
                   on_page_map: Callable[[HandoutPages], None] | None) -> bytes:
    cfg = pub.config
    doc = render_document(handout_html(pub, theme, cfg.paper, cfg.print_shop), pub, theme,
                          document)
    if on_page_map is not None:
        on_page_map(page_starts(doc, cfg.paper))
    return write_document(doc, document)


def render_pdf(pub: Publication, theme: Theme, parts: tuple[str, ...] | None = None,
               on_page_map: Callable[[HandoutPages], None] | None = None,
               fork: bool = False) -> dict[str, bytes]:
    """``{"<slug>-handout.pdf": ..., "<slug>-quick-reference.pdf": ...}`` for the configured
    paper (``a4``/``letter``) and ``print_shop`` (3 mm bleed and crop marks); ``parts`` picks
    some of :func:`pdf_parts` (default: all).

    ``on_page_map`` receives the handout's page map as soon as it is laid out, before it is
    drawn (the ebook's print page list needs it; it is never laid out twice).

    Example::

        files = render_pdf(load_publication(config), load_theme(config))
    """
    cfg = pub.config
    paper, shop = cfg.paper, cfg.print_shop
    parts = pdf_parts(pub) if parts is None else parts
    out = {}
    if "handout" in parts:
        handout = handout_name(cfg)
        out[handout] = handout_pdf(pub, theme, handout, on_page_map, fork)
    if "quick-reference" in parts and pub.daily is not None:
        from pressroom import derived

        quickref = quickref_name(cfg)
        # Its tiles carry titles and notes, not a card's steps: an edit to those reuses it.
        key = (b"quick-reference\0" + _assets(pub, theme)
               + quickref_html(pub, theme, paper, shop).encode())
        out[quickref] = derived.cached(cfg.project, key, "pdf",
                                       lambda: quickref_pdf(pub, theme, paper, shop, quickref))
    return out
