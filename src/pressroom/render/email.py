"""Newsletter issues -> responsive HTML email (Jinja2 -> MJML -> mjml-python -> css-inline),
its plain-text part, a web version, and PNG copies of the illustrations email clients need."""

from __future__ import annotations

import json
import logging
import re
import xml.etree.ElementTree as ET

from markupsafe import Markup

from pressroom import merge
from pressroom.errors import RenderError
from pressroom.model import Image, Newsletter, Publication
from pressroom.render import text
from pressroom.theme import Theme

log = logging.getLogger(__name__)

WARN_BYTES = 90 * 1024
MAX_BYTES = 102 * 1024  # Gmail clips messages above this
LONGEST_NAME = "Maximiliana-Alexandrina Featherstonehaugh-Cholmondeley"
# Invisible characters after the preheader stop clients pulling body text into the preview.
PREHEADER_PADDING = "\u034f\u200c\u00a0" * 80

MJML_TAGS = {
    "mjml", "mj-head", "mj-body", "mj-title", "mj-preview", "mj-attributes", "mj-all", "mj-class",
    "mj-style", "mj-raw", "mj-font", "mj-breakpoint", "mj-section", "mj-column", "mj-group",
    "mj-wrapper", "mj-text", "mj-image", "mj-button", "mj-divider", "mj-spacer", "mj-table",
    "mj-hero", "mj-social", "mj-social-element", "mj-navbar", "mj-navbar-link", "mj-include",
}
# Children of these are HTML, not MJML.
_HTML_CONTAINERS = {"mj-text", "mj-button", "mj-raw", "mj-table", "mj-style", "mj-title",
                    "mj-preview", "mj-navbar-link", "mj-social-element"}


def image_png_name(img: Image) -> str:
    """The file name of an illustration's PNG copy."""
    return f"{img.stem}.png"


def _png(path, width: int) -> bytes:
    import cairosvg

    if path.suffix.lower() == ".svg":
        return cairosvg.svg2png(url=str(path), output_width=width)
    return path.read_bytes()


def validate_mjml(source: str, template: str) -> None:
    """Reject malformed MJML and unknown mj- tags (mjml-python would copy them through)."""
    try:
        root = ET.fromstring(source)
    except ET.ParseError as exc:
        line = exc.position[0]
        raise RenderError(f"{template}: line {line} of the rendered MJML: {exc}; check the "
                          "template's markup") from None

    def walk(el: ET.Element, inside_html: bool) -> None:
        tag = el.tag
        if not inside_html and tag not in MJML_TAGS:
            raise RenderError(f"{template}: unknown MJML tag <{tag}>; use a standard mj-* "
                              "component or put HTML inside <mj-text>")
        for child in el:
            walk(child, inside_html or tag in _HTML_CONTAINERS)

    walk(root, False)


def check_html(html: str, where: str) -> None:
    """Every image needs alt and width; every link needs href; no scripts, forms or SVG."""
    for m in re.finditer(r"<img\b[^>]*>", html):
        tag = m.group(0)
        if not re.search(r'\balt="', tag) or not re.search(r'\bwidth="', tag):
            raise RenderError(f"{where}: image without alt or width: {tag[:120]}")
        if re.search(r'src="[^"]+\.svg"', tag):
            raise RenderError(f"{where}: SVG images don't show in email clients: {tag[:120]}")
    for m in re.finditer(r"<a\b[^>]*>", html):
        if not re.search(r'\bhref="[^"]+"', m.group(0)):
            raise RenderError(f"{where}: link without href: {m.group(0)[:120]}")
    for bad in ("<script", "<form", "<svg", "var(--"):
        if bad in html.lower():
            raise RenderError(f"{where}: '{bad}' is not allowed in email HTML")


def size_report(html: str) -> str:
    """What makes the email large, biggest first (for the over-budget error)."""
    parts = {"<style> blocks": sum(len(s) for s in re.findall(r"<style.*?</style>", html, re.S)),
             "inline style attributes": sum(len(s) for s in re.findall(r'style="[^"]*"', html)),
             "Outlook conditional comments": sum(len(s) for s in re.findall(r"<!--\[if.*?endif\]-->", html, re.S))}
    parts["text and other markup"] = len(html.encode("utf-8")) - sum(parts.values())
    return ", ".join(f"{k} {v / 1024:.1f} KB" for k, v in sorted(parts.items(), key=lambda kv: -kv[1]))


class EmailRenderer:
    """Renders every issue of a publication with one theme."""

    def __init__(self, pub: Publication, theme: Theme) -> None:
        self.pub, self.theme = pub, theme
        self.cfg = pub.config
        self.site = self.cfg.website.rstrip("/")
        colours = theme.tokens["colours"]
        self.inline_css = theme.render("email/style.css")
        self.dark_css = theme.render("email/dark.css")
        self.limitations_html = Markup(pub.limitations.html)
        self.limitations_text = text.markdown_to_text(self.cfg.limitations)
        self.colours = colours

    def image_url(self, img: Image) -> str:
        """Where the hosted PNG copy of an illustration lives."""
        return f"{self.site}/newsletters/images/{image_png_name(img)}"

    def _context(self, issue: Newsletter, web: bool) -> dict:
        cfg = self.cfg
        why = (f"You're receiving this because you signed up for {cfg.publisher}'s newsletter "
               f"at {cfg.website.split('://', 1)[-1].rstrip('/')} or in the clinic.")
        return dict(pub=self.pub, cfg=cfg, issue=issue, web=web,
                    first_name=cfg.newsletter.fallback_name if web else merge.FIRST_NAME,
                    view_url=f"{self.site}/newsletters/{issue.slug}.html" if web else merge.VIEW_URL,
                    unsubscribe_url=merge.UNSUBSCRIBE_URL, why_text=why,
                    logo_url=f"{self.site}/newsletters/images/logo.png",
                    image_url=self.image_url, preheader_padding=PREHEADER_PADDING,
                    inline_css=self.inline_css,
                    limitations_html=self.limitations_html,
                    limitations_text=self.limitations_text,
                    heading=text.heading, wrap=text.wrap,
                    body_text=text.markdown_to_text(issue.body.markdown).rstrip("\n"))

    def html(self, issue: Newsletter, web: bool = False) -> str:
        """The final HTML of one issue (markers left in place unless ``web``)."""
        import css_inline
        import mjml

        source = self.theme.render("email/newsletter.mjml", **self._context(issue, web))
        validate_mjml(source, f"email/newsletter.mjml (for {issue.path.name})")
        try:
            html = mjml.mjml2html(source, fonts={})
        except ValueError as exc:
            raise RenderError(f"email/newsletter.mjml (for {issue.path.name}): {exc}") from None
        inliner = css_inline.CSSInliner(keep_style_tags=False, keep_at_rules=True,
                                        load_remote_stylesheets=False)
        html = inliner.inline(html)
        # Dark-mode and Outlook.com rules can't be inlined: add them after inlining.
        html = html.replace("</head>", f'<style type="text/css">{self.dark_css}</style></head>', 1)
        check_html(html, issue.path.name)
        return html

    def text(self, issue: Newsletter, web: bool = False) -> str:
        """The plain-text part of one issue."""
        out = self.theme.render("email/newsletter.txt", **self._context(issue, web))
        return re.sub(r"\n{3,}", "\n\n", out)

    def check_size(self, issue: Newsletter, html: str) -> None:
        """Fail above Gmail's clipping limit (measured with the longest realistic name)."""
        final = merge.personalise_html(
            html, first_name=LONGEST_NAME, fallback=self.cfg.newsletter.fallback_name,
            unsubscribe_url=f"{self.site}/unsubscribe?t=" + "x" * 120,
            view_url=f"{self.site}/newsletters/{issue.slug}.html")
        size = len(final.encode("utf-8"))
        if size > MAX_BYTES:
            raise RenderError(f"{issue.path.name}: the email is {size / 1024:.1f} KB after "
                              f"personalisation; Gmail clips above {MAX_BYTES // 1024} KB. "
                              f"Largest parts: {size_report(final)}. Shorten the body or "
                              "feature fewer exercises.")
        if size > WARN_BYTES:
            log.warning("%s: the email is %.1f KB, close to Gmail's %d KB clipping limit",
                        issue.path.name, size / 1024, MAX_BYTES // 1024)

    def render_issue(self, issue: Newsletter) -> dict[str, bytes | str]:
        """All files for one issue."""
        html = self.html(issue)
        self.check_size(issue, html)
        meta = {"slug": issue.slug, "subject": issue.subject, "preheader": issue.preheader,
                "number": issue.number, "date": issue.date.isoformat(),
                "featured": [ex.slug for ex in issue.featured]}
        return {
            f"newsletters/{issue.slug}.html": html,
            f"newsletters/{issue.slug}.txt": self.text(issue),
            f"newsletters/{issue.slug}.json": json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
            f"site/newsletters/{issue.slug}.html": self.html(issue, web=True),
        }

    def images(self, issues) -> dict[str, bytes]:
        """PNG copies (2x for sharp screens) of the logo and every featured illustration."""
        out = {"site/newsletters/images/logo.png": _png(self.theme.asset(self.theme.tokens["logo"]), 128)}
        for issue in issues:
            for ex in issue.featured:
                out[f"site/newsletters/images/{image_png_name(ex.illustration)}"] = _png(ex.illustration.path, 440)
        return out


def render_email(pub: Publication, theme: Theme) -> dict[str, bytes | str]:
    """Every newsletter issue, its text part, web version and images."""
    renderer = EmailRenderer(pub, theme)
    out: dict[str, bytes | str] = {}
    for issue in pub.newsletters:
        out.update(renderer.render_issue(issue))
    out.update(renderer.images(pub.newsletters))
    return out
