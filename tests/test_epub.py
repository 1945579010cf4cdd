"""The ebook: EPUBCheck clean, metadata, navigation, accessibility and reproducibility."""

from __future__ import annotations

import re
import struct
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from pressroom.cli import cli
from pressroom.config import load_config
from pressroom.content import load_publication
from pressroom.epubcheck import run_epubcheck

from projects import ROOT, build_project, copy_project

NS = {"opf": "http://www.idpf.org/2007/opf", "dc": "http://purl.org/dc/elements/1.1/",
      "x": "http://www.w3.org/1999/xhtml", "epub": "http://www.idpf.org/2007/ops",
      "ncx": "http://www.daisy.org/z3986/2005/ncx/"}
# EPUBCheck's only usage note for our books: CSS-028 "Use of Font-face declaration". It is
# informational: embedding the theme's openly licensed fonts is a requirement, and every
# @font-face line is reported once.
HARMLESS_USAGE = {"CSS-028"}


@pytest.fixture(scope="session")
def demo_epub(demo_out) -> Path:
    return demo_out / "facial-yoga.epub"


@pytest.fixture(scope="session")
def book(demo_epub) -> zipfile.ZipFile:
    return zipfile.ZipFile(demo_epub)


@pytest.fixture(scope="session")
def epubcheck(demo_epub):
    """One EPUBCheck run (with --usage) per session: the JVM costs 6-9 s a start."""
    return run_epubcheck(demo_epub, usage=True)


@pytest.fixture(scope="session")
def pub():
    return load_publication(load_config(ROOT))


def xml(book: zipfile.ZipFile, name: str) -> ET.Element:
    return ET.fromstring(book.read(name))


def test_epubcheck_clean(epubcheck):
    assert (epubcheck.fatals, epubcheck.errors, epubcheck.warnings) == (0, 0, 0), epubcheck.messages
    unexpected = [m for m in epubcheck.messages if m[1] not in HARMLESS_USAGE]
    assert unexpected == []


def test_zip_layout(book, demo_epub):
    first = book.infolist()[0]
    assert first.filename == "mimetype" and first.compress_type == zipfile.ZIP_STORED
    assert book.read("mimetype") == b"application/epub+zip"
    assert "META-INF/com.apple.ibooks.display-options.xml" in book.namelist()
    assert b'name="specified-fonts">true' in book.read(
        "META-INF/com.apple.ibooks.display-options.xml"
    )
    assert demo_epub.stat().st_size < 2 * 1024 * 1024  # well under the 10 MB store limits


def test_metadata(book, pub):
    opf = xml(book, "EPUB/content.opf")
    md = opf.find("opf:metadata", NS)
    cfg = pub.config
    assert md.find("dc:identifier", NS).text == cfg.identifier
    assert opf.get("unique-identifier") == md.find("dc:identifier", NS).get("id")
    titles = {t.get("id"): t.text for t in md.findall("dc:title", NS)}
    assert list(titles.values()) == [cfg.title, cfg.subtitle]
    metas = [(m.get("property"), m.get("refines"), m.text) for m in md.findall("opf:meta", NS)]
    assert ("title-type", "#pub-title", "main") in metas
    assert ("title-type", "#pub-subtitle", "subtitle") in metas
    assert md.find("dc:creator", NS).text == cfg.author.name
    assert ("role", "#pub-creator", "aut") in metas
    assert md.find("dc:publisher", NS).text == cfg.publisher
    assert md.find("dc:language", NS).text == "en-GB"
    assert md.find("dc:date", NS).text == cfg.date.isoformat()
    assert md.find("dc:rights", NS).text == cfg.rights
    assert md.find("dc:description", NS).text == cfg.description
    assert [s.text for s in md.findall("dc:subject", NS)] == list(cfg.subjects)
    # SOURCE_DATE_EPOCH is pinned to 2026-01-01 by conftest.
    assert ("dcterms:modified", None, "2026-01-01T00:00:00Z") in metas


def test_accessibility_metadata(book):
    md = xml(book, "EPUB/content.opf").find("opf:metadata", NS)
    props: dict[str, list[str]] = {}
    for m in md.findall("opf:meta", NS):
        if m.get("property"):
            props.setdefault(m.get("property"), []).append(m.text)
    assert set(props["schema:accessMode"]) == {"textual", "visual"}
    assert "textual" in props["schema:accessModeSufficient"]
    assert set(props["schema:accessibilityFeature"]) == {
        "alternativeText", "displayTransformability", "pageBreakMarkers", "pageNavigation",
        "printPageNumbers", "readingOrder", "structuralNavigation", "tableOfContents"}
    assert props["schema:accessibilityHazard"] == ["noFlashingHazard",
                                                   "noMotionSimulationHazard", "noSoundHazard"]
    (summary,) = props["schema:accessibilitySummary"]
    images = sum(text.count("<img ") for text in documents(book).values())
    assert summary.startswith(f"Every image ({images}) has a text description. Every exercise "
                              "(12) can be followed from its written steps alone.")
    assert "The 23 pages of the printed handout" in summary
    assert props["dcterms:conformsTo"] == ["EPUB Accessibility 1.1 - WCAG 2.2 Level AA"]
    assert props["a11y:certifiedBy"] == ["Juvenology"]  # brand.name, self-declared


def test_nav_lists_every_exercise_and_landmarks(book, pub):
    nav = xml(book, "EPUB/nav.xhtml")
    navs = {n.get(f"{{{NS['epub']}}}type"): n for n in nav.iter(f"{{{NS['x']}}}nav")}
    toc_links = [(a.get("href"), a.text) for a in navs["toc"].iter(f"{{{NS['x']}}}a")]
    for ex in pub.exercises:
        assert (f"exercise-{ex.slug}.xhtml", ex.title) in toc_links
    for a in pub.articles:
        assert any(h == f"article-{a.slug}.xhtml" and t == a.title for h, t in toc_links)
    marks = {
        a.get(f"{{{NS['epub']}}}type"): a.get("href")
        for a in navs["landmarks"].iter(f"{{{NS['x']}}}a")
    }
    assert marks == {"cover": "cover.xhtml", "toc": "nav.xhtml",
                     "bodymatter": f"article-{pub.articles[0].slug}.xhtml"}
    spine = [i.get("idref") for i in xml(book, "EPUB/content.opf").find("opf:spine", NS)]
    assert spine[:3] == ["cover", "title", "nav"]
    assert spine[-2:] == ["about", "back"]


def test_ncx_for_older_readers(book, pub):
    ncx = xml(book, "EPUB/toc.ncx")
    assert ncx.find("ncx:docTitle/ncx:text", NS).text == pub.config.title
    labels = [t.text for t in ncx.iter(f"{{{NS['ncx']}}}text")]
    for ex in pub.exercises:
        assert ex.title in labels


def documents(book) -> dict[str, str]:
    return {n: book.read(n).decode("utf-8") for n in book.namelist() if n.endswith(".xhtml")}


def test_every_document_is_accessible_xhtml(book):
    docs = documents(book)
    assert len(docs) > 15
    for name, text in docs.items():
        root = ET.fromstring(text)
        assert (
            root.get("lang") == "en-GB"
            and root.get("{http://www.w3.org/XML/1998/namespace}lang") == "en-GB"
        ), name
        for img in root.iter(f"{{{NS['x']}}}img"):
            assert (img.get("alt") or "").strip(), f"{name}: image without alt text"
        levels = [int(el.tag[-1]) for el in root.iter() if re.fullmatch(r"\{[^}]+\}h[1-6]", el.tag)]
        for before, after in zip(levels, levels[1:]):
            assert after <= before + 1, f"{name}: heading levels skip from h{before} to h{after}"
        for comment in re.findall(r"<!--(.*?)-->", text, re.S):
            assert "--" not in comment, name


def test_stylesheet_is_reader_safe(book):
    css = book.read("EPUB/style.css").decode("utf-8")
    assert "var(--" not in css and not re.search(r"(^|[;{\s])--[\w-]+\s*:", css)
    assert not re.search(r"display\s*:\s*(flex|grid|inline-flex|inline-grid)", css)
    for comment in re.findall(r"/\*(.*?)\*/", css, re.S):
        assert "--" not in comment
    body_rules = re.findall(r"(?:^|\})\s*(body|p|li|html)\s*\{([^}]*)\}", css)
    for selector, rule in body_rules:
        assert not re.search(r"(^|[;\s])color\s*:", rule), f"fixed text colour on {selector}"


def test_fonts_are_embedded_and_subset(book):
    fonts = [n for n in book.namelist() if n.startswith("EPUB/fonts/")]
    assert len(fonts) == 6
    for name in fonts:
        original = ROOT / "themes/default/fonts" / Path(name).name
        assert book.getinfo(name).file_size < original.stat().st_size / 3, name


def test_footnotes_are_popup_notes(book, pub):
    text = book.read(f"EPUB/article-{pub.articles[0].slug}.xhtml").decode("utf-8")
    assert 'epub:type="noteref"' in text
    assert re.search(r'<aside epub:type="footnote"[^>]*id="[^"]+fn1"', text)


def test_cover_image_is_large_enough(book):
    png = book.read("EPUB/images/cover.png")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert max(width, height) >= 1600
    opf = book.read("EPUB/content.opf").decode("utf-8")
    assert 'properties="cover-image"' in opf


def test_each_exercise_is_its_own_chapter(book, pub):
    for ex in pub.exercises:
        text = book.read(f"EPUB/exercise-{ex.slug}.xhtml").decode("utf-8")
        assert 'epub:type="chapter"' in text and 'role="doc-chapter"' in text
        for step in ex.steps:
            assert step.replace("'", "&#39;")[:30] in text or step[:30] in text


def test_routines_are_accessible_tables(book, pub):
    text = book.read("EPUB/routines.xhtml").decode("utf-8")
    assert text.count("<caption>") == len(pub.routines)
    assert 'scope="col"' in text and 'scope="row"' in text


def test_back_page_links_and_disclaimer(book, pub):
    text = book.read("EPUB/back.xhtml").decode("utf-8")
    assert f"{pub.config.slug}-handout.pdf" in text
    assert pub.config.newsletter.signup_url in text
    assert "Medical disclaimer" in text
    all_text = "".join(documents(book).values())
    assert all_text.count('class="disclaimer"') == 1  # once per output


def test_same_input_gives_identical_bytes(tmp_path, minimal_out):
    again = build_project(copy_project("minimal", tmp_path / "again"))
    for name in ("test-booklet.epub", "newsletters/01-hello.html", "newsletters/01-hello.txt"):
        assert (again / name).read_bytes() == (minimal_out / name).read_bytes(), name


def test_build_validate_prints_the_verdict(project, monkeypatch):
    monkeypatch.chdir(project)
    result = CliRunner().invoke(cli, ["build", "--format", "epub", "--validate"])
    assert result.exit_code == 0, result.output
    assert "EPUBCheck passed: 0 fatal, 0 error(s), 0 warning(s)" in result.output
