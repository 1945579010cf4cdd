"""Newsletter issues -> responsive HTML email (Jinja2 -> MJML -> mjml-python -> css-inline),
its plain-text part, a web version, and PNG copies of the images email clients need."""

from __future__ import annotations

import html as htmlmod
import json
import logging
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit
from xml.parsers import expat

from markupsafe import Markup

from pressroom import mergefields, outputs
from pressroom.derived import svg_png
from pressroom.errors import RenderError, where
from pressroom.model import Image, Newsletter, Publication
from pressroom.render import text
from pressroom.theme import Theme
from pressroom.typography import smarten

log = logging.getLogger(__name__)

WARN_BYTES = 90 * 1024
MAX_BYTES = 102 * 1024  # Gmail clips messages above this
LONGEST_NAME = "Maximiliana-Alexandrina Featherstonehaugh-Cholmondeley"
# Invisible characters after the preheader stop clients pulling body text into the preview.
PREHEADER_PADDING = "\u034f\u200c\u00a0" * 80
TEMPLATE = "email/newsletter.mjml"
TEXT_TEMPLATE = "email/newsletter.txt"
# Each in its own <style> block: a client that rejects one block keeps the others.
HEAD_STYLES = ("email/responsive.css", "email/dark.css", "email/outlook-dark.css")
BODY_IMAGE_PX = 552  # the 600 px email less 2 x 24 px padding
RTL_LANGUAGES = {"ar", "dv", "fa", "he", "ku", "ps", "sd", "ug", "ur", "yi"}
RASTER_TYPES = (".png", ".jpg", ".jpeg", ".gif")

MJML_TAGS = {
    "mjml", "mj-head", "mj-body", "mj-title", "mj-preview", "mj-attributes", "mj-all", "mj-class",
    "mj-style", "mj-raw", "mj-font", "mj-breakpoint", "mj-section", "mj-column", "mj-group",
    "mj-wrapper", "mj-text", "mj-image", "mj-button", "mj-divider", "mj-spacer", "mj-table",
    "mj-hero", "mj-social", "mj-social-element", "mj-navbar", "mj-navbar-link",
    "mj-accordion", "mj-accordion-element", "mj-accordion-title", "mj-accordion-text",
    "mj-carousel", "mj-carousel-image",
}
# Children of these are HTML, not MJML.
_HTML_CONTAINERS = {"mj-text", "mj-button", "mj-raw", "mj-table", "mj-style", "mj-title",
                    "mj-preview", "mj-navbar-link", "mj-social-element", "mj-accordion-title",
                    "mj-accordion-text"}
_JINJA = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.S)
_PART = re.compile(r'<div class="[^"]*\bpart-([a-z0-9-]+)')
_CUSTOM_PROPERTY = re.compile(r"(?<![\w-])--[A-Za-z_][\w-]*\s*:|\bvar\(")


def image_file_name(img: Image) -> str:
    """The file name of an image's email copy: SVG becomes PNG, rasters keep their type."""
    suffix = img.path.suffix.lower()
    return f"{img.stem}{'.png' if suffix == '.svg' else suffix}"


def _raster(path: Path, width: int, project: Path, theme: Theme) -> bytes:
    """The PNG bytes email clients get for an SVG, its text in the theme's fonts (may fill the
    derived-file cache, keyed by source, width and fonts); rasters as they are."""
    if path.suffix.lower() != ".svg":
        return path.read_bytes()
    svg = path.read_bytes()
    fonts = theme.tokens["fonts"]
    files = [theme.asset(f["file"]) for k in ("body", "heading") for f in fonts[k]["files"]]
    generic = {"sans-serif": fonts["body"]["family"], "serif": fonts["heading"]["family"]}
    return svg_png(project, svg + f"\0{width}".encode(), lambda: svg, width, url=str(path),
                   fonts=files, families=generic)


def mjml_problem(source: str) -> tuple[int, str, str | None] | None:
    """The first problem in MJML source as (line, reason, unknown tag or None), else None.

    mjml-python copies unknown tags through silently, so they are looked for here.
    """
    parser = expat.ParserCreate()
    stack: list[bool] = []  # per open element: are we inside HTML content?
    found: list[tuple[int, str, str | None]] = []

    def start(name: str, _attrs) -> None:
        inside_html = bool(stack) and stack[-1]
        if not found and not stack and name != "mjml":
            found.append((parser.CurrentLineNumber, f"the root element is <{name}>, not <mjml>",
                          name))
        elif not found and not inside_html and name not in MJML_TAGS:
            found.append((parser.CurrentLineNumber, f"unknown MJML tag <{name}>", name))
        stack.append(inside_html or name in _HTML_CONTAINERS)

    parser.StartElementHandler = start
    parser.EndElementHandler = lambda _name: stack.pop()
    try:
        parser.Parse(source, True)
    except expat.ExpatError as exc:
        return exc.lineno, f"malformed MJML: {expat.ErrorString(exc.code)}", None
    return found[0] if found else None


def _blank_jinja(source: str) -> str:
    """Template source with every Jinja construct blanked out, line numbers kept."""
    return _JINJA.sub(lambda m: re.sub(r"[^\n]", " ", m.group(0)), source)


class _Audit(HTMLParser):
    """Collects what email clients can't show or won't allow (comments, i.e. Outlook's
    conditional markup, are skipped)."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.problems: list[str] = []
        self.css: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        shown = self.get_starttag_text() or tag
        shown = shown if len(shown) <= 120 else shown[:117] + "..."
        if tag in ("script", "form", "svg", "iframe", "object", "embed", "link"):
            self.problems.append(f"<{tag}> is not allowed in email HTML: {shown}")
        elif tag == "img":
            src = a.get("src") or ""
            if a.get("alt") is None:
                self.problems.append(f"image without alt text: {shown}")
            elif not a.get("width"):
                self.problems.append(f"image without a width attribute: {shown}")
            elif not urlsplit(src).path.lower().endswith(RASTER_TYPES):
                self.problems.append("image is not PNG, JPEG or GIF (clients don't show SVG): "
                                     + shown)
        elif tag == "a" and not (a.get("href") or "").strip():
            self.problems.append(f"link without href: {shown}")
        style = a.get("style")
        if style:
            self.css.append(style)
        self._in_style = tag == "style"

    def handle_endtag(self, tag: str) -> None:
        self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.css.append(data)


def check_html(html: str, where_: str) -> None:
    """Images need alt, width and a raster src; links need href; no scripts, forms, SVG,
    external stylesheets, @import or CSS custom properties."""
    audit = _Audit()
    audit.feed(html)
    audit.close()
    css = "\n".join(audit.css)
    if "@import" in css:
        audit.problems.append("@import is not allowed in email CSS (fonts and styles must not "
                              "load from third parties)")
    if _CUSTOM_PROPERTY.search(css):
        audit.problems.append("CSS custom properties (--name / var()) don't work in most email "
                              "clients; use the theme's tokens")
    if audit.problems:
        raise RenderError(f"{where_}: {audit.problems[0]}")


def size_parts(html: str, labels: dict[str, str]) -> list[tuple[str, int]]:
    """The email's sections (marked ``part-*`` in the template) and their UTF-8 sizes, biggest
    first; everything before the first section counts as the head."""
    marks = [(0, "head")] + [(m.start(), m.group(1)) for m in _PART.finditer(html)]
    sizes: dict[str, int] = {}
    for (start, name), (end, _) in zip(marks, marks[1:] + [(len(html), "")]):
        label = labels.get(name, name)
        sizes[label] = sizes.get(label, 0) + len(html[start:end].encode("utf-8"))
    return sorted(sizes.items(), key=lambda kv: (-kv[1], kv[0]))


def _kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


class EmailRenderer:
    """Renders every issue of a publication with one theme."""

    def __init__(self, pub: Publication, theme: Theme) -> None:
        self.pub, self.theme = pub, theme
        self.cfg = pub.config
        self.inline_css = theme.render("email/style.css")
        self.head_styles = "".join(f'<style type="text/css">{theme.render(name).strip()}</style>'
                                   for name in HEAD_STYLES)
        self.limitations_html = Markup(pub.limitations.html) if pub.limitations else None
        self.limitations_text = (text.markdown_to_text(self.cfg.limitations).rstrip("\n")
                                 if self.cfg.limitations else None)
        self.disclaimer_text = " ".join(text.markdown_to_text(self.cfg.disclaimer).split())
        self.address_line = ", ".join(outputs.address_lines(self.cfg))
        language = self.cfg.language.split("-")[0].lower()
        self.direction = "rtl" if language in RTL_LANGUAGES else "ltr"

    def image_url(self, img: Image) -> str:
        """Where the hosted copy of an illustration lives."""
        return outputs.email_image_url(self.cfg, image_file_name(img))

    def web_url(self, issue: Newsletter) -> str:
        """Where the web version of an issue lives (what "view in browser" opens)."""
        return outputs.issue_url(self.cfg, issue.slug)

    def _body_html(self, issue: Newsletter) -> Markup:
        # Point the body's own images at their hosted PNG copies, sized for Outlook.
        body = issue.body.html
        for img in {i.src: i for i in issue.body.images}.values():
            body = body.replace(f'<img src="{htmlmod.escape(img.src)}"',
                                f'<img src="{self.image_url(img)}" width="{BODY_IMAGE_PX}"')
        return Markup(body)

    def _context(self, issue: Newsletter, web: bool) -> dict:
        cfg = self.cfg
        site_name = outputs.website_label(cfg)
        words = self.theme.strings
        why = words["why_web" if web else "why_email"]
        for name, value in (("publisher", cfg.publisher), ("site", site_name),
                            ("signup_elsewhere", words["signup_elsewhere"])):
            why = why.replace("{" + name + "}", value)  # plain text: no format-string errors
        why = smarten(why)
        return dict(pub=self.pub, cfg=cfg, issue=issue, web=web, direction=self.direction,
                    first_name=cfg.newsletter.fallback_name if web else mergefields.FIRST_NAME,
                    view_url=self.web_url(issue) if web else mergefields.VIEW_URL,
                    unsubscribe_url=mergefields.UNSUBSCRIBE_URL, why_text=why,
                    date_label=f"{issue.date.day} {issue.date:%B %Y}",
                    address_line=self.address_line,
                    logo_url=outputs.email_image_url(cfg, "logo.png") if self.theme.logo else None,
                    image_url=self.image_url, preheader_padding=PREHEADER_PADDING,
                    body_html=self._body_html(issue),
                    limitations_html=self.limitations_html,
                    limitations_text=self.limitations_text,
                    disclaimer_text=self.disclaimer_text,
                    heading=text.heading, wrap=text.wrap,
                    body_text=text.markdown_to_text(issue.body.markdown).rstrip("\n"))

    def _template_error(self, issue: Newsletter, line: int, reason: str,
                        tag: str | None) -> RenderError:
        """Name the template file and line of a problem found in the MJML it rendered."""
        env = self.theme.env
        assert env.loader is not None  # the theme's Environment always has its folder loader
        source, found_in, _ = env.loader.get_source(env, TEMPLATE)
        filename = found_in or TEMPLATE
        location = None
        if tag:
            m = re.search(rf"<{re.escape(tag)}[\s/>]", source)
            if m:
                location = where(filename, source.count("\n", 0, m.start()) + 1)
        else:
            found = mjml_problem(_blank_jinja(source))
            if found and found[2] is None:
                location = where(filename, found[0])
        if location is None:  # it came from a partial or the content: give the rendered line
            location = f"{where(filename)} (line {line} of the MJML it rendered)"
        hint = ("use a standard mj-* component, or put HTML inside <mj-text>" if tag else
                "check that every tag is closed and every & is written &amp;")
        return RenderError(f"{location}: {reason}, while rendering {issue.path.name}; {hint}")

    def html(self, issue: Newsletter, web: bool = False) -> str:
        """The final HTML of one issue (merge markers left in place unless ``web``)."""
        import css_inline
        import mjml

        source = self.theme.render(TEMPLATE, **self._context(issue, web))
        problem = mjml_problem(source)
        if problem:
            raise self._template_error(issue, *problem)
        try:
            html = mjml.mjml2html(source, fonts={})  # no fonts from third parties
        except ValueError as exc:
            raise RenderError(f"{TEMPLATE}: MJML could not render {issue.path.name}: {exc}"
                              ) from None
        # Only the theme's CSS is inlined; MJML's own resets stay in its <style> block, where
        # every client that needs them (Outlook, Apple Mail) reads them. Inlined onto every
        # table cell they would cost about a fifth of Gmail's budget.
        inliner = css_inline.CSSInliner(inline_style_tags=False, keep_style_tags=True,
                                        load_remote_stylesheets=False, extra_css=self.inline_css)
        html = inliner.inline(html)
        # Phone, dark-mode and Outlook.com rules can't be inlined: add them after inlining.
        html = html.replace("</head>", self.head_styles + "</head>", 1)
        check_html(html, issue.path.name)
        if web:
            # The web version sits beside its images in site/newsletters/: relative links work
            # wherever the site is hosted, and when the file is opened from disk.
            html = html.replace(f'"{outputs.email_image_url(self.cfg, "")}', '"images/')
        return html

    def text(self, issue: Newsletter, web: bool = False) -> str:
        """The plain-text part of one issue."""
        out = self.theme.render(TEXT_TEMPLATE, **self._context(issue, web))
        out = "\n".join(line.rstrip() for line in out.splitlines())
        return re.sub(r"\n{3,}", "\n\n", out).strip("\n") + "\n"

    def check_size(self, issue: Newsletter, html: str) -> int:
        """Fail above Gmail's clipping limit, warn near it (measured after personalisation
        with the longest realistic name); returns the measured size in bytes."""
        final = mergefields.personalise_html(
            html, first_name=LONGEST_NAME, fallback=self.cfg.newsletter.fallback_name,
            unsubscribe_url=outputs.unsubscribe_url(self.cfg) + "?t=" + "x" * 120,
            view_url=self.web_url(issue))
        size = len(final.encode("utf-8"))
        if size > MAX_BYTES:
            labels = {"head": "head (styles, preheader)", "header": "header",
                      "body": "body text", "signoff": "button and sign-off",
                      "limitations": "research note", "footer": "footer"}
            labels.update({f"card-{ex.slug}": f"exercise card '{ex.title}'"
                           for ex in issue.featured})
            largest = ", ".join(f"{label} {_kb(n)}" for label, n in size_parts(final, labels)[:3])
            raise RenderError(f"{where(issue.path)}: the email is {_kb(size)} with the longest "
                              f"subscriber name; Gmail clips emails over {MAX_BYTES // 1024} KB. "
                              f"Largest parts: {largest}. Shorten the body or feature fewer "
                              "exercises.")
        if size > WARN_BYTES:
            log.warning("%s: the email is %s with the longest subscriber name, close to Gmail's "
                        "%d KB clipping limit", where(issue.path), _kb(size), MAX_BYTES // 1024)
        return size

    def render_issue(self, issue: Newsletter) -> dict[str, bytes | str]:
        """All files for one issue: email HTML and text, its description, the web version."""
        html = self.html(issue)
        self.check_size(issue, html)
        meta = {"slug": issue.slug, "subject": issue.subject, "preheader": issue.preheader,
                "number": issue.number, "date": issue.date.isoformat(),
                "featured": [ex.slug for ex in issue.featured]}
        return {
            outputs.issue_path(issue.slug): html,
            f"newsletters/{issue.slug}.txt": self.text(issue),
            f"newsletters/{issue.slug}.json": json.dumps(meta, indent=2, ensure_ascii=False) + "\n",
            f"site/{outputs.issue_path(issue.slug)}": self.html(issue, web=True),
        }

    def images(self, issues) -> dict[str, bytes]:
        """Raster copies (2x for sharp screens) of the logo and every image the issues show;
        may fill the derived-file cache."""
        folder = f"site/{outputs.EMAIL_IMAGES}"
        out = {} if self.theme.logo is None else {
            f"{folder}/logo.png": _raster(self.theme.logo, 128, self.cfg.project, self.theme)}
        for issue in issues:
            for ex in issue.featured:
                name = image_file_name(ex.illustration)
                out[f"{folder}/{name}"] = _raster(ex.illustration.path, 440, self.cfg.project,
                                                   self.theme)
            for img in issue.body.images:
                out[f"{folder}/{image_file_name(img)}"] = _raster(
                    img.path, 2 * BODY_IMAGE_PX, self.cfg.project, self.theme
                )
        return out


def render_email(pub: Publication, theme: Theme) -> dict[str, bytes | str]:
    """Every newsletter issue, its text part, web version and images, as files; may fill the
    derived-file cache (the PNG copies of SVG images)."""
    renderer = EmailRenderer(pub, theme)
    out: dict[str, bytes | str] = {}
    for issue in pub.newsletters:
        out.update(renderer.render_issue(issue))
    out.update(renderer.images(pub.newsletters))
    return out
