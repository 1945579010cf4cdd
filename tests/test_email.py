"""Newsletters: the HTML email's markup, size budget, validation errors, the plain-text part,
personalisation, the web version and reproducibility (browser checks: test_email_browser.py)."""

from __future__ import annotations

import html as htmlmod
import logging
import re
import shutil
import struct
from html.parser import HTMLParser
from pathlib import Path

import pytest

from pressroom import mergefields
from pressroom.build import build
from pressroom.jobs import MANIFEST
from pressroom.config import load_config
from pressroom.content import load_publication
from pressroom.errors import PressroomError, RenderError, where
from pressroom.render.email import (LONGEST_NAME, MAX_BYTES, PREHEADER_PADDING, WARN_BYTES,
                                    EmailRenderer, check_html, size_parts)
from pressroom.render.text import WIDTH
from pressroom.theme import load_theme

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
ISSUES = sorted(p.stem for p in (ROOT / "content/newsletters").glob("*.md"))
LONG_UNSUBSCRIBE = "https://www.juvenology.co.uk/unsubscribe?t=" + "x" * 120
VIEW = "https://www.juvenology.co.uk/newsletters/x.html"
URL_LINE = re.compile(r"\s*(?:[-*]|\d+\.)?\s*\S*(?:https?://|mailto:|\{\{ \w+ \}\})\S*")
# The fattened issue: plain ASCII paragraphs, so only the email templates change its size.
PARAGRAPH = ("Breathe in slowly through your nose, let your shoulders drop and let your jaw "
             "soften, then rest your face for a moment before the next gentle movement.")


class Node:
    """A parsed HTML element: tag, attributes, children and its own text."""

    def __init__(self, tag: str, attrs: dict[str, str | None], parent: "Node | None") -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node] = []
        self.text: list[str] = []

    def iter(self, tag: str | None = None):
        """This element and every descendant, optionally only one tag."""
        if tag is None or self.tag == tag:
            yield self
        for child in self.children:
            yield from child.iter(tag)

    def all_text(self) -> str:
        """Every text inside, whitespace collapsed."""
        parts = list(self.text) + [c.all_text() for c in self.children]
        return " ".join(" ".join(parts).split())

    def classes(self) -> list[str]:
        """The class attribute as a list."""
        return (self.attrs.get("class") or "").split()


class Tree(HTMLParser):
    """Just enough of a DOM to assert on an email: elements, styles and comments."""

    VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source",
            "track", "wbr"}

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.current = self.root
        self.comments: list[str] = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.current)
        self.current.children.append(node)
        if tag not in self.VOID:
            self.current = node

    def handle_startendtag(self, tag, attrs):
        self.current.children.append(Node(tag, dict(attrs), self.current))

    def handle_endtag(self, tag):
        node = self.current
        while node is not self.root and node.tag != tag:
            node = node.parent
        if node is not self.root:
            self.current = node.parent

    def handle_data(self, data):
        self.current.text.append(data)

    def handle_comment(self, data):
        self.comments.append(data)

    def find(self, tag: str) -> list[Node]:
        """Every element with this tag."""
        return list(self.root.iter(tag))

    def css(self) -> str:
        """All CSS: <style> blocks and style attributes."""
        blocks = ["".join(s.text) for s in self.find("style")]
        attrs = [n.attrs["style"] or "" for n in self.root.iter() if "style" in n.attrs]
        return "\n".join(blocks + attrs)


def words(text: str) -> str:
    """Whitespace collapsed, for comparing wrapped text with HTML text."""
    return " ".join(text.split())


@pytest.fixture(scope="module")
def pub():
    """The clinic's real content, loaded (read only)."""
    return load_publication(load_config(ROOT))


@pytest.fixture(scope="module")
def renderer(pub):
    return EmailRenderer(pub, load_theme(pub.config))


def read(demo_out: Path, slug: str, ext: str = "html") -> str:
    return (demo_out / f"newsletters/{slug}.{ext}").read_text(encoding="utf-8")


def personalised(html: str, name: str = LONGEST_NAME) -> str:
    return mergefields.personalise_html(html, first_name=name, fallback="there",
                                  unsubscribe_url=LONG_UNSUBSCRIBE, view_url=VIEW)


def with_theme_case(case: str, dest: Path) -> Path:
    """The minimal project's content plus the theme override of tests/fixtures/<case>."""
    # (Not conftest's copy_project: "conftest" is ambiguous beside tests/mail/conftest.py.)
    shutil.copytree(FIXTURES / "minimal/content", dest / "content")
    shutil.copytree(FIXTURES / case / "themes", dest / "themes")
    return dest


def write_long_issue(project: Path, paragraphs: int) -> Path:
    path = project / "content/newsletters/02-long.md"
    body = "\n\n".join(f"Step {i + 1}. {PARAGRAPH}" for i in range(paragraphs))
    path.write_text("---\nsubject: A very long letter\npreheader: Far too much to read in one "
                    "go.\ndate: 2026-05-11\nnumber: 2\ncta:\n  label: Book a consultation\n"
                    "  url: https://clinic.example/book\n---\n" + body + "\n", encoding="utf-8")
    return path


# --- what the build writes ------------------------------------------------------------------

@pytest.mark.parametrize("slug", ISSUES)
def test_each_issue_has_email_text_description_web_version_and_images(demo_out, slug):
    for rel in (f"newsletters/{slug}.html", f"newsletters/{slug}.txt",
                f"newsletters/{slug}.json", f"site/newsletters/{slug}.html"):
        assert (demo_out / rel).is_file(), rel
    for img in Tree(read(demo_out, slug)).find("img"):
        rel = img.attrs["src"].removeprefix("https://www.juvenology.co.uk/")
        data = (demo_out / "site" / rel).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), rel
        # 2x rasters for sharp screens: at least twice the displayed width.
        assert struct.unpack(">I", data[16:20])[0] >= 2 * int(img.attrs["width"]), rel


@pytest.mark.parametrize("slug", ISSUES)
def test_head_and_structure_email_clients_need(demo_out, pub, slug):
    tree = Tree(read(demo_out, slug))
    issue = next(i for i in pub.newsletters if i.slug == slug)
    html_el = tree.find("html")[0]
    assert (html_el.attrs["lang"], html_el.attrs["dir"]) == ("en-GB", "ltr")
    assert tree.find("title")[0].all_text() == issue.subject
    metas = {m.attrs.get("name"): m.attrs.get("content") for m in tree.find("meta")}
    assert metas["color-scheme"] == "light dark"
    assert metas["supported-color-schemes"] == "light dark"
    assert metas["viewport"] == "width=device-width, initial-scale=1"
    for table in tree.find("table"):
        if not list(table.iter("th")):  # data tables (the card's facts) keep their semantics
            assert table.attrs.get("role") == "presentation", table.attrs
    css = tree.css()
    assert "@media (prefers-color-scheme: dark)" in css
    assert "[data-ogsc] .dm-text" in css and "[data-ogsb] .dm-body" in css
    assert "color-scheme: light dark" in css
    assert any(c.startswith("[if mso") for c in tree.comments), "Outlook conditional markup lost"


@pytest.mark.parametrize("slug", ISSUES)
def test_preheader_is_hidden_and_padded(demo_out, pub, slug):
    issue = next(i for i in pub.newsletters if i.slug == slug)
    hidden = [d for d in Tree(read(demo_out, slug)).find("div")
              if "display:none" in (d.attrs.get("style") or "").replace(" ", "")]
    text = "".join(hidden[0].text)
    assert text.startswith(issue.preheader)
    padding = text[len(issue.preheader):]
    assert padding == PREHEADER_PADDING and len(padding) >= 200


@pytest.mark.parametrize("slug", ISSUES)
def test_nothing_email_clients_reject(demo_out, slug):
    for html in (read(demo_out, slug), (demo_out / f"site/newsletters/{slug}.html").read_text()):
        tree = Tree(html)
        for tag in ("script", "form", "svg", "link", "iframe"):
            assert not tree.find(tag), tag
        for img in tree.find("img"):
            assert img.attrs.get("alt"), img.attrs
            assert int(img.attrs["width"]) > 0
            assert re.search(r"\.(png|jpe?g|gif)$", img.attrs["src"]), img.attrs["src"]
        css = tree.css()
        assert not re.search(r"(?<![\w-])--[\w-]+\s*:|var\(", css), "CSS custom property"
        assert "@import" not in css and "fonts.googleapis" not in html
        for a in tree.find("a"):
            assert (a.attrs.get("href") or "").strip(), a.attrs


CUSTOM_PROPERTIES = ("CSS custom properties (--name / var()) don't work in most email "
                     "clients; use the theme's tokens")


@pytest.mark.parametrize("snippet,problem", [
    ('<img src="https://x.test/a.png" width="10">',
     'image without alt text: <img src="https://x.test/a.png" width="10">'),
    ('<img src="https://x.test/a.png" alt="A">',
     'image without a width attribute: <img src="https://x.test/a.png" alt="A">'),
    ('<img src="https://x.test/a.svg" alt="A" width="9">',
     "image is not PNG, JPEG or GIF (clients don't show SVG): "
     '<img src="https://x.test/a.svg" alt="A" width="9">'),
    ("<a>Book now</a>", "link without href: <a>"),
    ("<script>alert(1)</script>", "<script> is not allowed in email HTML: <script>"),
    ('<form action="/x"></form>', '<form> is not allowed in email HTML: <form action="/x">'),
    ('<p style="color: var(--ink)">x</p>', CUSTOM_PROPERTIES),
    ("<style>:root { --ink: #000; }</style>", CUSTOM_PROPERTIES),
    ('<style>@import url("https://fonts.example/x.css");</style>',
     "@import is not allowed in email CSS (fonts and styles must not load from third parties)"),
])
def test_check_html_messages(snippet, problem):
    with pytest.raises(RenderError) as err:
        check_html(f"<html><body>{snippet}</body></html>", "01-hello.md")
    assert err.value.message == f"01-hello.md: {problem}"


def test_check_html_ignores_outlook_conditional_markup():
    check_html('<html><body><!--[if mso]><v:roundrect href="x"><![endif]--><p>ok</p>'
               "</body></html>", "x")


# --- size budget ----------------------------------------------------------------------------

@pytest.mark.parametrize("slug", ISSUES)
def test_every_issue_fits_gmail_with_the_longest_name(demo_out, renderer, pub, slug):
    html = read(demo_out, slug)
    assert len(personalised(html).encode("utf-8")) < MAX_BYTES
    issue = next(i for i in pub.newsletters if i.slug == slug)
    assert renderer.check_size(issue, html) < 90 * 1024  # no warning either


def test_size_parts_name_the_sections(demo_out, renderer, pub):
    issue = next(i for i in pub.newsletters if len(i.featured) == 2)
    labels = {f"card-{ex.slug}": f"exercise card '{ex.title}'" for ex in issue.featured}
    parts = dict(size_parts(read(demo_out, issue.slug), labels))
    assert set(parts) == {"head", "header", "body", "signoff", "limitations", "footer",
                          *labels.values()}
    assert sum(parts.values()) == len(read(demo_out, issue.slug).encode("utf-8"))


def test_a_fattened_issue_fails_the_build_saying_how_large_and_what_is_largest(project):
    path = write_long_issue(project, 600)
    with pytest.raises(PressroomError) as err:
        build(load_config(project), ("email",))
    # The sizes follow the theme; the structure does not: total, then the three largest parts.
    found = re.fullmatch(
        re.escape(f"{where(path)}: the email is ") + r"(\d+\.\d) KB with the longest subscriber "
        r"name; Gmail clips emails over 102 KB\. Largest parts: body text (\d+\.\d) KB, "
        r"([a-z ,()'-]+) (\d+\.\d) KB, ([a-z ,()'-]+) (\d+\.\d) KB\. Shorten the body or "
        r"feature fewer exercises\.", err.value.message)
    assert found, err.value.message
    total, body, _, second, _, third = found.groups()
    assert float(total) > 102 and float(body) >= float(second) >= float(third)
    assert float(body) > float(total) / 2  # 600 paragraphs: the body text dominates
    assert not (project / "output").exists()


def test_an_issue_near_the_limit_warns(project, caplog):
    path = write_long_issue(project, 400)
    with caplog.at_level(logging.WARNING, logger="pressroom"):
        result = build(load_config(project), ("email",), parallel=False)
    [message] = result.warnings
    found = re.fullmatch(re.escape(f"{where(path)}: the email is ") + r"(\d+\.\d) KB with the "
                         r"longest subscriber name, close to Gmail's 102 KB clipping limit",
                         message)
    assert found and WARN_BYTES / 1024 < float(found.group(1)) <= MAX_BYTES / 1024, message
    assert (project / "output/newsletters/02-long.html").is_file()


# --- validation -----------------------------------------------------------------------------

def test_unknown_mjml_tag_names_the_template_and_line(tmp_path):
    project = with_theme_case("email-unknown-tag", tmp_path / "proj")
    template = project.resolve() / "themes/default/email/newsletter.mjml"
    message = (f"{where(template, 8)}: unknown MJML tag <mj-sparkle>, while rendering "
               "01-hello.md; use a standard mj-* component, or put HTML inside <mj-text>")
    pub = load_publication(load_config(project))
    with pytest.raises(RenderError) as err:
        EmailRenderer(pub, load_theme(pub.config)).html(pub.newsletters[0])
    assert err.value.message == message
    with pytest.raises(PressroomError) as err:
        build(load_config(project), ("email",))
    assert err.value.message == message
    assert not (project / "output").exists()


def test_malformed_template_names_the_template_and_line(tmp_path):
    project = with_theme_case("email-malformed", tmp_path / "proj")
    template = project.resolve() / "themes/default/email/newsletter.mjml"
    pub = load_publication(load_config(project))
    with pytest.raises(RenderError) as err:
        EmailRenderer(pub, load_theme(pub.config)).html(pub.newsletters[0])
    assert err.value.message == (
        f"{where(template, 8)}: malformed MJML: mismatched tag, while rendering 01-hello.md; "
        "check that every tag is closed and every & is written &amp;")


@pytest.mark.parametrize("field", ["subject", "preheader"])
def test_empty_subject_or_preheader_stops_the_build(project, field):
    path = project / "content/newsletters/01-hello.md"
    path.write_text(re.sub(rf"(?m)^{field}: .*$", f'{field}: "  "', path.read_text()))
    with pytest.raises(PressroomError) as err:
        build(load_config(project), ("email",))
    line = 2 if field == "subject" else 3
    assert err.value.message == f"{where(path, line)}: '{field}' must not be empty"


def test_body_images_become_sized_pngs(project):
    path = project / "content/newsletters/01-hello.md"
    path.write_text(path.read_text() + "\n![A relaxed face, eyes closed](images/face.svg)\n")
    build(load_config(project), ("email",))
    out = project / "output"
    imgs = [i for i in Tree((out / "newsletters/01-hello.html").read_text()).find("img")
            if i.attrs["alt"] == "A relaxed face, eyes closed"]
    assert [(i.attrs["src"], i.attrs["width"]) for i in imgs] == [
        ("https://clinic.example/newsletters/images/images-face.png", "552")]
    assert (out / "site/newsletters/images/images-face.png").read_bytes().startswith(b"\x89PNG")
    text = (out / "newsletters/01-hello.txt").read_text()
    assert "[Illustration: A relaxed face, eyes closed]" in text


# --- plain-text part ------------------------------------------------------------------------

@pytest.mark.parametrize("slug", ISSUES)
def test_text_part_has_every_heading_step_and_link_of_the_html(demo_out, slug):
    tree, text = Tree(read(demo_out, slug)), read(demo_out, slug, "txt")
    flat = words(text)
    headings = [h.all_text() for tag in ("h1", "h2", "h3", "h4") for h in tree.find(tag)]
    assert len(headings) >= 4
    for heading in headings:
        assert heading in flat, heading
    steps = [li.all_text() for ol in tree.find("ol") if "card-steps" in ol.classes()
             for li in ol.iter("li")]
    assert steps
    for step in steps:
        assert step in flat, step
    hrefs = {a.attrs["href"] for a in tree.find("a")}
    assert {mergefields.UNSUBSCRIBE_URL, mergefields.VIEW_URL} <= hrefs
    for href in hrefs - {h for h in hrefs if h.startswith("#")}:
        assert href.removeprefix("mailto:") in text, href


@pytest.mark.parametrize("slug", ISSUES)
def test_text_part_is_wrapped_at_78_columns(demo_out, slug):
    raw = read(demo_out, slug, "txt")
    filled = mergefields.personalise_text(raw, first_name=LONGEST_NAME, fallback="there",
                                    unsubscribe_url=LONG_UNSUBSCRIBE, view_url=VIEW)
    for text in (raw, filled):
        for line in text.splitlines():
            assert len(line) <= WIDTH or URL_LINE.fullmatch(line), line
    assert "\n\n\n" not in raw and raw.endswith("\n") and not raw.endswith("\n\n")


def test_text_part_wraps_long_headings_and_lists_notes():
    from pressroom.render.text import heading, markdown_to_text

    long = "A heading that goes on and on, well past the width of any plain-text email line"
    assert heading(long, 1) == (
        "A heading that goes on and on, well past the width of any plain-text email\nline\n"
        + "=" * 74)
    assert markdown_to_text("Said so.[^1]\n\n[^1]: A source.\n") == (
        "Said so.[1]\n\nNotes\n-----\n\n[1] A source.\n")


# --- personalisation and web version --------------------------------------------------------

def test_personalise_fills_every_marker_with_escaped_values(demo_out):
    html = read(demo_out, ISSUES[0])
    out = mergefields.personalise_html(html, first_name='<b>Zoë "Z" O\'Neil & co</b>',
                                       fallback="there",
                                       unsubscribe_url="https://x.test/u?a=1&b=<2>",
                                       view_url="https://x.test/v?i=1&j=2")
    assert "{{" not in out
    assert "Hi &lt;b&gt;Zoë &quot;Z&quot; O&#x27;Neil &amp; co&lt;/b&gt;," in out
    assert 'href="https://x.test/u?a=1&amp;b=&lt;2&gt;"' in out
    assert 'href="https://x.test/v?i=1&amp;j=2"' in out
    assert "<b>Zoë" not in out
    fallback = mergefields.personalise_html(html, first_name="  ", fallback="there",
                                      unsubscribe_url="u", view_url="v")
    assert "Hi there," in fallback


def test_personalise_text_fills_plain_values(demo_out):
    out = mergefields.personalise_text(read(demo_out, ISSUES[0], "txt"), first_name="Zoë & co",
                                 fallback="there", unsubscribe_url="https://x.test/u?a=1&b=2",
                                 view_url="https://x.test/v")
    assert "Hi Zoë & co," in out and "\nhttps://x.test/u?a=1&b=2\n" in out
    assert "{{" not in out


@pytest.mark.parametrize("slug", ISSUES)
def test_web_version_has_no_per_subscriber_data(demo_out, slug):
    web = (demo_out / f"site/newsletters/{slug}.html").read_text()
    assert "{{" not in web and "Unsubscribe" not in web
    assert "Hi there," in web
    assert 'href="https://www.juvenology.co.uk/newsletter"' in web
    # The email's "view in browser" links are markers the sender fills with this page's URL.
    assert 'href="{{ view_url }}"' in read(demo_out, slug)


# --- reproducibility and the preview command ------------------------------------------------

def test_building_twice_gives_byte_identical_emails(project, tmp_path):
    # Two copies of the project: the second build cannot reuse the first one's derived files.
    twin = tmp_path / "twin"
    shutil.copytree(project, twin)
    first, second = tmp_path / "one", tmp_path / "two"
    build(load_config(project).with_overrides(out=first), ("email",), force=True)
    build(load_config(twin).with_overrides(out=second), ("email",), force=True)
    assert (project / ".pressroom").is_dir() and (twin / ".pressroom").is_dir()
    files = sorted(p.relative_to(first) for p in first.rglob("*.*")
                   if p.suffix in (".html", ".txt", ".json") and p.name != MANIFEST)
    assert len(files) >= 4
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_html_escaping_in_the_plain_part_is_undone(demo_out):
    # Typographic quotes and ampersands appear as characters, never as entities.
    for slug in ISSUES:
        text = read(demo_out, slug, "txt")
        assert htmlmod.unescape(text) == text


def test_web_versions_link_their_images_relatively(demo_out):
    # The page works wherever the site is hosted, and opened straight from disk.
    folder = demo_out / "site" / "newsletters"
    for slug in ISSUES:
        page = (folder / f"{slug}.html").read_text()
        sources = re.findall(r'<img[^>]*\bsrc="([^"]+)"', page)
        assert sources and all(src.startswith("images/") for src in sources), sources
        assert all((folder / src).is_file() for src in sources)
