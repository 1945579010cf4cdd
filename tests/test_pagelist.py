"""The ebook's print page list: a marker where each page of the printed handout begins (checked
against pdftotext of that page), the page-list navigation, pageBreakSource, and the page map
reused from the PDF job and the build cache instead of laying the handout out again."""

from __future__ import annotations

import html
import json
import re
import subprocess
import unicodedata
import zipfile
from pathlib import Path

import pytest

from pressroom import jobs
from pressroom.build import build
from pressroom.config import load_config

from projects import copy_project

MARKER = re.compile(r'<span epub:type="pagebreak" role="doc-pagebreak" id="page-(\d+)" '
                    r'aria-label="(\d+)"></span>')
BLOCK_END = re.compile(r"</(?:h[1-6]|p|li|figcaption|caption|th|td|dt|dd)>")


def words(text: str) -> list[str]:
    """Lowercase words of letters and digits (ligatures and typographic marks folded)."""
    text = unicodedata.normalize("NFKC", html.unescape(text)).casefold()
    return [w for w in re.split(r"[^\w]+", text) if w]


def spine_documents(book: zipfile.ZipFile) -> list[str]:
    opf = book.read("EPUB/content.opf").decode("utf-8")
    hrefs = dict(re.findall(r'<item [^>]*?href="([^"]+)"[^>]*?id="([^"]+)"', opf))
    ids = {v: k for k, v in hrefs.items()}
    return [ids[i] for i in re.findall(r'<itemref idref="([^"]+)"', opf)]


def markers(book: zipfile.ZipFile) -> list[tuple[int, str, list[str]]]:
    """(page, document, first words of the block that follows) for every marker, in reading
    order."""
    found = []
    for name in spine_documents(book):
        text = book.read(f"EPUB/{name}").decode("utf-8")
        for match in MARKER.finditer(text):
            assert match.group(1) == match.group(2)
            after = text[match.end():]
            block = re.sub(r"<[^>]+>", " ", BLOCK_END.split(after, maxsplit=1)[0])
            found.append((int(match.group(1)), name, words(block)[:8]))
    return found


def page_text(pdf: Path, page: int) -> str:
    out = subprocess.run(["pdftotext", "-f", str(page), "-l", str(page), str(pdf), "-"],
                         capture_output=True, text=True, check=True).stdout
    return "".join(words(out))


def pdf_pages(pdf: Path) -> int:
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    return int(re.search(r"^Pages:\s+(\d+)", info.stdout, re.M).group(1))


@pytest.fixture(scope="module")
def demo_book(demo_out) -> zipfile.ZipFile:
    return zipfile.ZipFile(demo_out / "facial-yoga.epub")


def test_each_marker_begins_its_handout_page(demo_book, demo_out):
    handout = demo_out / "facial-yoga-handout.pdf"
    found = markers(demo_book)
    assert found, "no page markers"
    for page, name, first in found:
        assert first, f"page {page} ({name}): no text after the marker"
        text, at = page_text(handout, page), 0
        for word in first:  # in order; hyphenation and leaders may come between
            at = text.find(word, at)
            assert at >= 0, f"page {page} ({name}): {' '.join(first)!r} not on that page"


def test_one_marker_per_handout_page_in_reading_order(demo_book, demo_out):
    """Every page of the demo handout carries ebook content (cover: title page, contents: the
    navigation, the articles, every exercise card, both routines, the tracker, the author)."""
    pages = [page for page, _name, _first in markers(demo_book)]
    assert pages == list(range(1, pdf_pages(demo_out / "facial-yoga-handout.pdf") + 1))
    by_page = {page: name for page, name, _ in markers(demo_book)}
    assert by_page[2] == "nav.xhtml" and by_page[1] == "title.xhtml"
    assert by_page[pages[-1]] == "about.xhtml"
    assert sum(name.startswith("exercise-") for name in by_page.values()) == 12


def test_page_list_nav_matches_the_markers(demo_book):
    nav = demo_book.read("EPUB/nav.xhtml").decode("utf-8")
    page_list = re.search(r'<nav epub:type="page-list"[^>]*hidden="hidden">(.*?)</nav>', nav,
                          re.S)
    assert page_list, "no hidden page-list nav"
    listed = re.findall(r'<a href="([^"#]+)#page-(\d+)">(\d+)</a>', page_list.group(1))
    assert [(doc, int(n)) for doc, n, label in listed if n == label] == [
        (name, page) for page, name, _ in markers(demo_book)]


def test_package_names_the_handout_edition(demo_book):
    opf = demo_book.read("EPUB/content.opf").decode("utf-8")
    assert ('<meta property="pageBreakSource">Facial Yoga: The Secret to Symmetry?, printable '
            "handout, A4</meta>") in opf
    for feature in ("printPageNumbers", "pageBreakMarkers", "pageNavigation"):
        assert f'<meta property="schema:accessibilityFeature">{feature}</meta>' in opf


def test_markers_are_invisible_in_reading(demo_out, tmp_path, browser):
    """Chromium lays out the marked chapters: each marker takes no space and shows nothing,
    and the page list is hidden."""
    zipfile.ZipFile(demo_out / "facial-yoga.epub").extractall(tmp_path)
    context = browser.new_context(viewport={"width": 600, "height": 900})
    try:
        page = context.new_page()
        for name in ("article-facial-yoga-symmetry.xhtml", "routines.xhtml", "nav.xhtml"):
            page.goto((tmp_path / "EPUB" / name).as_uri())
            boxes = page.evaluate("""[...document.querySelectorAll('[role=doc-pagebreak]')]
                .map(e => { const r = e.getBoundingClientRect();
                            return [r.width, r.height, e.textContent]; })""")
            assert boxes and all(box == [0, 0, ""] for box in boxes), (name, boxes)
        hidden = page.evaluate("getComputedStyle(document.querySelector("
                               "'nav[role=doc-pagelist]')).display")
    finally:
        context.close()
    assert hidden == "none"


def test_page_list_off_leaves_the_handout_out(project):
    text = (project / "content/publication.yaml").read_text(encoding="utf-8")
    (project / "content/publication.yaml").write_text(text + "epub:\n  page_list: false\n",
                                                      encoding="utf-8")
    config = load_config(project)
    build(config, formats=("epub",))
    (epub,) = config.out.glob("*.epub")
    book = zipfile.ZipFile(epub)
    assert not any(MARKER.search(book.read(n).decode("utf-8"))
                   for n in book.namelist() if n.endswith(".xhtml"))
    opf = book.read("EPUB/content.opf").decode("utf-8")
    assert "pageBreakSource" not in opf and "printPageNumbers" not in opf
    assert 'epub:type="page-list"' not in book.read("EPUB/nav.xhtml").decode("utf-8")
    assert "page_map" not in json.loads((config.out / jobs.MANIFEST).read_text())


def test_an_ebook_only_rebuild_reuses_the_cached_page_map(project, monkeypatch):
    """The full build keeps the PDF's page map; rebuilding only the ebook takes it from the
    cache (laying the handout out again would fail here) and gives the same bytes."""
    config = load_config(project)
    build(config, formats=("epub", "pdf"))
    (epub,) = config.out.glob("*.epub")
    first = epub.read_bytes()
    assert MARKER.search(zipfile.ZipFile(epub).read("EPUB/nav.xhtml").decode("utf-8"))
    epub.unlink()

    def no_layout(*args):
        raise AssertionError("the handout was laid out again")

    monkeypatch.setattr("pressroom.render.pdf.handout_page_map", no_layout)
    result = build(config, formats=("epub",))
    assert result.rendered == ["epub"] and epub.read_bytes() == first


def test_an_ebook_only_build_lays_the_handout_out_once(tmp_path):
    """Without a cache, an ebook-only build makes the same ebook as a full build."""
    full = copy_project("minimal", tmp_path / "full")
    alone = copy_project("minimal", tmp_path / "alone")
    build(load_config(full), formats=("epub", "pdf"))
    build(load_config(alone), formats=("epub",))
    (a,), (b,) = (full / "output").glob("*.epub"), (alone / "output").glob("*.epub")
    assert a.read_bytes() == b.read_bytes()
