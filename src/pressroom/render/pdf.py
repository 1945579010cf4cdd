"""Publication -> the PDF handout and the one-page quick-reference sheet (WeasyPrint, tagged)."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit, parse_qsl

from pressroom.errors import RenderError
from pressroom.fetch import make_fetcher
from pressroom.model import Publication
from pressroom.render.epub import build_time
from pressroom.theme import Theme

log = logging.getLogger(__name__)


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

    qr_url = utm_url(cfg.newsletter.signup_url, source, "print", cfg.slug)
    return dict(pub=pub, paper=paper, print_shop=print_shop, font_url=asset_url,
                asset_url=asset_url, qr_url=qr_url,
                qr_src=qr_data_uri(qr_url, theme.tokens["colours"]["ink"]),
                website_label=cfg.website.split("://", 1)[-1].rstrip("/"),
                created=build_time().strftime("%Y-%m-%dT%H:%M:%SZ"))


def handout_html(pub: Publication, theme: Theme, paper: str, print_shop: bool) -> str:
    """The exact HTML document fed to WeasyPrint for the handout."""
    ctx = _context(pub, theme, paper, print_shop, "handout")
    css = theme.render("pdf/base.css", **ctx) + theme.render("pdf/handout.css", **ctx)
    return theme.render("pdf/handout.html", css=css, **ctx)


def quickref_html(pub: Publication, theme: Theme, paper: str, print_shop: bool) -> str:
    """The exact HTML document fed to WeasyPrint for the quick-reference sheet."""
    ctx = _context(pub, theme, paper, print_shop, "quick-reference")
    css = theme.render("pdf/base.css", **ctx) + theme.render("pdf/quickref.css", **ctx)
    return theme.render("pdf/quickref.html", css=css, **ctx)


def html_to_pdf(html: str, pub: Publication, theme: Theme, document: str) -> bytes:
    """Run WeasyPrint with the project-confined fetcher; tagged PDF/UA output."""
    import weasyprint

    roots = [pub.config.content_dir, *theme.folders]
    fetcher = make_fetcher(roots, document)
    try:
        doc = weasyprint.HTML(string=html, base_url=str(pub.config.content_dir) + "/",
                              url_fetcher=fetcher)
        return doc.write_pdf(pdf_variant="pdf/ua-1", uncompressed_pdf=False,
                             custom_metadata=True)
    except fetcher.refused as exc:
        raise RenderError(str(exc)) from None


def render_pdf(pub: Publication, theme: Theme) -> dict[str, bytes]:
    """``{"<slug>-handout.pdf": ..., "<slug>-quick-reference.pdf": ...}``."""
    cfg = pub.config
    paper, shop = cfg.paper, cfg.print_shop
    out = {f"{cfg.slug}-handout.pdf": html_to_pdf(handout_html(pub, theme, paper, shop), pub, theme,
                                                  f"{cfg.slug}-handout.pdf")}
    if pub.daily is not None:
        out[f"{cfg.slug}-quick-reference.pdf"] = html_to_pdf(
            quickref_html(pub, theme, paper, shop), pub, theme, f"{cfg.slug}-quick-reference.pdf")
    return out
