"""The static site renderer: which files, what the landing page holds, the sign-up form, links
that resolve, nothing loaded from third parties, no scripts or inline styles, reproducible."""

from __future__ import annotations

import shutil
import struct
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

from pressroom.build import build
from pressroom.config import load_config
from pressroom.content import load_publication
from pressroom.outputs import download_names
from pressroom.render.site import downloads, render_site, signup_page
from pressroom.theme import load_theme

FIXTURES = Path(__file__).parent / "fixtures"
THEMES = Path(__file__).resolve().parents[1] / "themes"
SLUG = "test-booklet"


@pytest.fixture(scope="module")
def pub(tmp_path_factory):
    project = tmp_path_factory.mktemp("site") / "project"
    shutil.copytree(FIXTURES / "minimal" / "content", project / "content")
    return load_publication(load_config(project))


@pytest.fixture(scope="module")
def theme(pub):
    return load_theme(pub.config)


@pytest.fixture(scope="module")
def files(pub, theme):
    return render_site(pub, theme)


class Page(HTMLParser):
    """Every start tag of a page, with its attributes, and the text."""

    def __init__(self, html: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.stack: list[tuple[str, dict]] = []
        self.hidden_inputs: list[str] = []  # inputs inside aria-hidden containers
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append((tag, a))
        if tag == "input" and any(p.get("aria-hidden") == "true" for _, p in self.stack):
            self.hidden_inputs.append(a.get("name") or "")
        if tag not in ("img", "input", "meta", "link", "br"):
            self.stack.append((tag, a))

    def handle_endtag(self, tag):
        while self.stack and self.stack.pop()[0] != tag:
            pass

    def handle_data(self, data):
        self.text.append(data)

    def all(self, tag: str) -> list[dict]:
        return [a for t, a in self.tags if t == tag]

    @property
    def plain(self) -> str:
        return " ".join(" ".join(self.text).split())


def page(files, name: str) -> Page:
    return Page(files[f"site/{name}"])


def test_the_site_is_every_page_and_asset_under_site(files, pub):
    names = set(files)
    assert all(name.startswith("site/") for name in names)
    expected = {"site/index.html", "site/newsletters/index.html", "site/404.html",
                "site/style.css", "site/cover.png", "site/logo.svg",
                "site/newsletter/index.html"}  # newsletter.signup_url is a page of the site
    assert expected <= names
    for ex in pub.exercises:
        assert f"site/images/{ex.illustration.stem}.svg" in names
    fonts = sorted(n for n in names if n.startswith("site/fonts/"))
    assert fonts and all(files[n][:4] == b"wOFF" for n in fonts)
    png = files["site/cover.png"]
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", png[16:24]) == (1600, 2400)


def test_same_input_gives_byte_identical_files(pub, files, tmp_path):
    # From a second copy of the project: nothing comes from the first render's derived files.
    project = tmp_path / "project"
    shutil.copytree(pub.config.project / "content", project / "content")
    twin = load_publication(load_config(project))
    again = render_site(twin, load_theme(twin.config))
    assert (project / ".pressroom").is_dir()
    assert sorted(again) == sorted(files)
    assert [n for n in files if files[n] != again[n]] == []


def test_landing_page_offers_the_downloads_the_build_copies(files, pub):
    p = page(files, "index.html")
    links = [a["href"] for a in p.all("a") if "download" in a]
    assert links == [f"downloads/{SLUG}.epub", f"downloads/{SLUG}-handout.pdf",
                     f"downloads/{SLUG}-quick-reference.pdf"]
    assert [f"downloads/{n}" for n in download_names(pub.config)] == links
    text = p.plain
    assert "Download the ebook" in text and "EPUB" in text and "PDF, A4" in text


def test_no_quick_reference_without_a_daily_routine(pub, theme):
    no_daily = replace(pub, routines=tuple(r for r in pub.routines if r.kind != "daily"))
    assert [d.key for d in downloads(no_daily, theme.strings)] == ["ebook", "handout"]
    links = [a["href"] for a in Page(render_site(no_daily, theme)["site/index.html"]).all("a")
             if "download" in a]
    assert links == [f"downloads/{SLUG}.epub", f"downloads/{SLUG}-handout.pdf"]


def test_landing_page_says_what_the_guide_contains(files, pub):
    text = page(files, "index.html").plain
    cfg = pub.config
    for needle in (cfg.title, cfg.subtitle, pub.articles[0].title,
                   f"{len(pub.exercises)} illustrated exercises", pub.daily.title,
                   pub.programme.title, *(ex.title for ex in pub.exercises)):
        assert needle in text, needle
    assert "Medical disclaimer" in text and "not medical advice" in text
    assert "What the evidence can and cannot tell us" in text


def test_landing_page_shows_the_cover_and_the_author(files, pub):
    p = page(files, "index.html")
    cover = next(a for a in p.all("img") if a["src"] == "cover.png")
    assert pub.config.title in cover["alt"] and cover["width"] == "1600"
    text = p.plain
    assert "About the author" in text and "Test Author" in text and "twenty" in text
    assert "Nurse" in text


def test_signup_form_posts_to_subscribe_with_consent_and_a_honeypot(files):
    p = page(files, "index.html")
    form = next(a for a in p.all("form") if a.get("action") == "subscribe")
    assert form["method"] == "post"
    inputs = {a["name"]: a for a in p.all("input")}
    assert inputs["email"]["type"] == "email" and "required" in inputs["email"]
    assert inputs["email"]["autocomplete"] == "email"
    assert inputs["first_name"]["autocomplete"] == "given-name"
    assert inputs["consent"]["type"] == "checkbox" and "required" in inputs["consent"]
    assert "checked" not in inputs["consent"]  # consent is never pre-ticked
    assert inputs["website"]["tabindex"] == "-1" and inputs["website"]["autocomplete"] == "off"
    assert p.hidden_inputs == ["website"]  # only the honeypot is hidden from people
    labels = {a["for"] for a in p.all("label")}
    assert {inputs[n]["id"] for n in ("email", "first_name", "consent", "website")} <= labels


@pytest.mark.parametrize("name", ["index.html", "newsletters/index.html", "404.html",
                                  "newsletter/index.html"])
def test_pages_are_accessible_and_self_contained(files, pub, name):
    html = files[f"site/{name}"]
    p = Page(html)
    assert p.all("html")[0]["lang"] == pub.config.language
    assert p.all("meta")[0] == {"charset": "utf-8"}
    assert any(a.get("name") == "viewport" for a in p.all("meta"))
    assert len(p.all("h1")) == 1 and p.all("main")
    # The Content-Security-Policy allows neither scripts nor inline styles.
    assert not p.all("script") and not p.all("style")
    assert all("style" not in a for _, a in p.tags)
    assert all(not k.startswith("on") for _, a in p.tags for k in a)
    assert all("alt" in a for a in p.all("img"))
    ids = [a["id"] for _, a in p.tags if "id" in a]
    assert len(ids) == len(set(ids))
    # Nothing is loaded from another site (links to other sites are fine).
    for tag, a in p.tags:
        for attr in ("src", "srcset") + (("href",) if tag == "link" else ()):
            if a.get(attr):
                assert not urlsplit(a[attr]).netloc and not a[attr].startswith("//"), a


def test_every_internal_link_resolves(files, pub):
    slugs = {i.slug for i in pub.newsletters}
    # Written by other build steps: the email job's web versions, the copied downloads.
    elsewhere = {f"site/newsletters/{s}.html" for s in slugs}
    elsewhere |= {f"site/downloads/{n}" for n in download_names(pub.config)}
    service = {"site/subscribe"}  # answered by the subscription service
    for name in ("index.html", "newsletters/index.html", "newsletter/index.html"):
        base = f"https://host/site/{name}"
        for tag, a in Page(files[f"site/{name}"]).tags:
            for attr in ("href", "src", "action"):
                url = a.get(attr)
                if not url or url.startswith(("#", "mailto:", "tel:")) or urlsplit(url).scheme:
                    continue
                target = urlsplit(urljoin(base, url)).path.lstrip("/")
                if target.endswith("/") or target == "site":
                    target = target.rstrip("/") + "/index.html"
                assert target in files or target in elsewhere | service, (name, url)


def test_404_page_links_from_the_site_root(files):
    p = page(files, "404.html")
    assert {"href": "/style.css", "rel": "stylesheet"} in p.all("link")
    assert any(a["href"] == "/newsletters/" for a in p.all("a"))


def test_archive_lists_every_issue_newest_first(pub, theme):
    first = pub.newsletters[0]
    later = replace(first, slug="02-later", number=2, subject="The second issue",
                    date=first.date.replace(day=first.date.day + 7))
    two = replace(pub, newsletters=(first, later))
    p = Page(render_site(two, theme)["site/newsletters/index.html"])
    links = [a["href"] for a in p.all("a") if a["href"].endswith(".html")]
    assert links == ["02-later.html", f"{first.slug}.html"]
    assert "The second issue" in p.plain and first.subject in p.plain and first.preheader in p.plain


def test_content_is_escaped(pub, theme):
    cfg = replace(pub.config, title="Faces <script>alert(1)</script> & more")
    html = render_site(replace(pub, config=cfg), theme)["site/index.html"]
    assert "<script>" not in html
    assert "Faces &lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in html


def test_stylesheet_uses_the_theme_tokens_and_local_fonts(files, theme):
    css = files["site/style.css"]
    colours = theme.tokens["colours"]
    for token in ("brand", "ink", "tint", "dark_bg", "dark_text"):
        assert colours[token] in css, token
    assert css.count("@font-face") == 4 and 'url("fonts/lato-regular.woff")' in css
    assert "prefers-color-scheme: dark" in css
    assert "http" not in css and "@import" not in css


def test_web_fonts_cover_the_characters_pages_use(demo_out):
    """Every character the demo's styled pages show is in every subset web font they load."""
    from io import BytesIO

    from fontTools.ttLib import TTFont

    site = demo_out / "site"
    styled = [p for p in sorted(site.rglob("*.html")) if "style.css" in p.read_text("utf-8")]
    assert len(styled) >= 4  # landing page, sign-up page, archive, 404
    shown = set().union(*(Page(p.read_text("utf-8")).plain for p in styled)) - {" "}
    assert {"’", "—", "é"} & shown  # typographic text, so the check has something to find
    fonts = sorted((site / "fonts").glob("*.woff"))
    assert len(fonts) == 4
    for font in fonts:
        cmap = TTFont(BytesIO(font.read_bytes())).getBestCmap()
        missing = sorted(ch for ch in shown if ord(ch) not in cmap)
        assert missing == [], f"{font.name} lacks {missing}"


@pytest.mark.parametrize("url, expected", [
    ("https://clinic.example/newsletter", "newsletter/index.html"),
    ("https://clinic.example/join/", "join/index.html"),
    ("https://clinic.example/signup.html", "signup.html"),
    ("https://elsewhere.example/newsletter", None),   # another site
    ("https://clinic.example/newsletters", None),     # the archive's folder
    ("https://clinic.example/", None),
    ("https://clinic.example/a b", None),
])
def test_signup_page_lives_at_the_configured_signup_url(pub, url, expected):
    cfg = replace(pub.config, newsletter=replace(pub.config.newsletter, signup_url=url))
    assert signup_page(cfg) == expected


@pytest.mark.parametrize("rel, edit", [
    (None, None),  # unchanged: the site is not rebuilt (the control)
    ("content/publication.yaml", lambda t: t.replace('title: "', 'title: "Edited ', 1)),
    ("content/articles/intro.md", lambda t: t + "\nOne more sentence.\n"),
    ("content/exercises/jaw-release.md", lambda t: t + "\nOne more sentence.\n"),
    ("content/images/face.svg", lambda t: t.replace("</svg>", "<!-- edited --></svg>")),
    ("content/routines/programme.md", lambda t: t + "\nOne more sentence.\n"),
    ("content/newsletters/01-hello.md", lambda t: t + "\nOne more sentence.\n"),
    ("themes/default/site/404.html", None),  # a project-level theme override appears
])
def test_the_site_rebuilds_after_any_input_it_shows_changes(tmp_path, rel, edit):
    project = tmp_path / "project"
    shutil.copytree(FIXTURES / "minimal" / "content", project / "content")
    assert build(load_config(project), ("site",)).rendered == ["site"]
    if rel is not None:
        path = project / rel
        if edit is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes((THEMES / "default/site/404.html").read_bytes() + b"\n")
        else:
            path.write_text(edit(path.read_text("utf-8")), encoding="utf-8")
    result = build(load_config(project), ("site",))
    assert (result.rendered, result.skipped) == ((["site"], []) if rel else ([], ["site"]))
