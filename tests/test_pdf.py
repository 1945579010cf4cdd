"""The PDF handout and quick-reference sheet, checked with real tools: poppler (pdfinfo,
pdffonts, pdftotext, pdftoppm), zbarimg and pikepdf."""

from __future__ import annotations

import re
import sys
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pikepdf
import pytest
from PIL import Image

from pressroom.build import build
from pressroom.config import load_config
from pressroom.content import load_publication
from pressroom.errors import PressroomError, RenderError
from pressroom.render.pdf import BLEED_MM, quickref_pdf, utm_url
from pressroom.theme import load_theme

from projects import ROOT, copy_project

SLUG = "facial-yoga"
MM = 72 / 25.4
SIZES = {"a4": (595, 842), "letter": (612, 792)}
THEME_FONTS = {"Lato", "Lato-Bold", "Lato-Italic", "Lato-BoldItalic", "EB-Garamond",
               "EB-Garamond-Italic"}


def run(*cmd: str) -> str:
    return subprocess.run(cmd, check=True, capture_output=True, text=True).stdout


def build_pdf(project: Path, **overrides) -> Path:
    """Build only the PDFs of ``project``; WeasyPrint must not have warned about anything."""
    config = load_config(project).with_overrides(**overrides)
    result = build(config, ("pdf",))
    assert result.warnings == []
    return config.out


@pytest.fixture(scope="session")
def demo():
    return load_publication(load_config(ROOT))


@pytest.fixture(scope="module")
def letter_out(tmp_path_factory) -> Path:
    """The demo on US Letter, built once for this module."""
    return build_pdf(copy_project("demo", tmp_path_factory.mktemp("letter")), paper="letter")


@pytest.fixture(scope="module")
def shop_out(tmp_path_factory) -> Path:
    """The demo on A4 for a print shop (3 mm bleed, crop marks), built once for this module."""
    return build_pdf(copy_project("demo", tmp_path_factory.mktemp("shop")), print_shop=True)


@pytest.fixture(scope="module")
def mini_shop_letter_out(tmp_path_factory) -> Path:
    """The tiny fixture on Letter for a print shop: both options together, cheaply."""
    return build_pdf(copy_project("minimal", tmp_path_factory.mktemp("mini-shop")),
                     paper="letter", print_shop=True)


@pytest.fixture(scope="module")
def handout(demo_out) -> Path:
    return demo_out / f"{SLUG}-handout.pdf"


@pytest.fixture(scope="module")
def quickref(demo_out) -> Path:
    return demo_out / f"{SLUG}-quick-reference.pdf"


@pytest.fixture(scope="module")
def pages(handout) -> list[str]:
    """The handout's text, one string per page (pdftotext -layout)."""
    return run("pdftotext", "-layout", str(handout), "-").split("\f")[:-1]


@pytest.fixture(scope="module")
def letter_pages(letter_out) -> list[str]:
    pdf = letter_out / f"{SLUG}-handout.pdf"
    return run("pdftotext", "-layout", str(pdf), "-").split("\f")[:-1]


def info(pdf: Path) -> dict[str, str]:
    out = run("pdfinfo", "-box", str(pdf))
    return {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in out.splitlines())}


def all_pdfs(*outs: Path) -> list[Path]:
    return sorted(pdf for out in outs for pdf in out.glob("*.pdf"))


# --- Fonts, page size, tagging: pdffonts and pdfinfo ------------------------------------------

def test_every_font_is_a_theme_font_embedded_and_subset(demo_out, letter_out, shop_out,
                                                        minimal_out):
    # The minimal project's illustration labels its SVG text in plain "sans-serif".
    assert (
        'font-family="sans-serif"' in (minimal_out.parent / "content/images/face.svg").read_text()
    )
    for pdf in all_pdfs(demo_out, letter_out, shop_out, minimal_out):
        rows = run("pdffonts", str(pdf)).splitlines()[2:]
        assert rows, pdf
        for row in rows:
            name, *_rest = row.split()
            emb, sub, uni = row.split()[-5:-2]
            assert (emb, sub, uni) == ("yes", "yes", "yes"), f"{pdf.name}: {row}"
            prefix, _, family = name.partition("+")
            assert re.fullmatch(r"[A-Z]{6}", prefix), f"{pdf.name}: {name} is not a subset"
            # Nothing from the machine (DejaVu...): SVG labels use the theme's fonts too.
            assert family in THEME_FONTS, f"{pdf.name}: unexpected font {name}"


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_page_size_tagged_and_titled(paper, demo_out, letter_out):
    out = demo_out if paper == "a4" else letter_out
    pdfs = sorted(out.glob("*.pdf"))
    assert [p.name for p in pdfs] == [f"{SLUG}-handout.pdf", f"{SLUG}-quick-reference.pdf"]
    for pdf in pdfs:
        meta = info(pdf)
        width, height = (round(float(n)) for n in meta["Page size"].split()[0:3:2])
        assert (width, height) == SIZES[paper], pdf.name
        assert meta["Tagged"] == "yes"
        assert meta["Title"]
        # Every page, not only the first.
        with pikepdf.open(pdf) as doc:
            boxes = {tuple(round(float(v)) for v in page.mediabox) for page in doc.pages}
        assert boxes == {(0, 0, *SIZES[paper])}, pdf.name


def test_print_shop_adds_bleed_and_keeps_trim_at_paper_size(shop_out, mini_shop_letter_out):
    """MediaBox = paper + 3 mm bleed on every side (what pdfinfo calls the page size);
    TrimBox = the paper, where the print shop cuts."""
    bleed = BLEED_MM * MM
    cases = [(p, "a4") for p in shop_out.glob("*.pdf")]
    cases += [(p, "letter") for p in mini_shop_letter_out.glob("*.pdf")]
    assert len(cases) == 4
    for pdf, paper in cases:
        w, h = (s * MM for s in {"a4": (210, 297), "letter": (215.9, 279.4)}[paper])
        size = info(pdf)["Page size"].split()
        assert float(size[0]) == pytest.approx(w + 2 * bleed, abs=0.01), pdf.name
        assert float(size[2]) == pytest.approx(h + 2 * bleed, abs=0.01), pdf.name
        with pikepdf.open(pdf) as doc:
            for page in doc.pages:
                assert [float(v) for v in page.trimbox] == pytest.approx([0, 0, w, h], abs=0.01)
                assert [float(v) for v in page.mediabox] == pytest.approx(
                    [-bleed, -bleed, w + bleed, h + bleed], abs=0.01)
                assert [float(v) for v in page.obj.BleedBox] == pytest.approx(
                    [float(v) for v in page.mediabox], abs=0.01)


def _dark_pixels(png: Path, box: tuple[int, int, int, int]) -> int:
    with Image.open(png) as image:
        return sum(image.convert("L").crop(box).histogram()[:128])


def test_print_shop_draws_crop_marks_in_the_bleed(shop_out, handout, tmp_path):
    """Rendered, the print-shop contents page has marks in its top-left bleed corner; the
    ordinary one is blank there."""
    corner = round(BLEED_MM / 25.4 * 100)  # 3 mm at 100 dpi
    shop_png = tmp_path / "shop"
    run("pdftoppm", "-r", "100", "-f", "2", "-l", "2", "-singlefile", "-png",
        str(shop_out / f"{SLUG}-handout.pdf"), str(shop_png))
    assert _dark_pixels(shop_png.with_suffix(".png"), (0, 0, corner, corner + 2)) > 0
    plain_png = tmp_path / "plain"
    run("pdftoppm", "-r", "100", "-f", "2", "-l", "2", "-singlefile", "-png", str(handout),
        str(plain_png))
    assert _dark_pixels(plain_png.with_suffix(".png"), (0, 0, corner, corner + 2)) == 0


def test_quick_reference_is_exactly_one_page(quickref, letter_out, shop_out, mini_shop_letter_out):
    sheets = [quickref, letter_out / f"{SLUG}-quick-reference.pdf",
              shop_out / f"{SLUG}-quick-reference.pdf",
              *mini_shop_letter_out.glob("*-quick-reference.pdf")]
    assert len(sheets) == 4
    for pdf in sheets:
        assert info(pdf)["Pages"] == "1", pdf


def _long_routine(project: Path, items: int):
    item = ("  - exercise: cheek-lift\n    minutes: 1\n"
            "    note: Soft smile, hold five seconds, then release slowly and breathe out.\n")
    (project / "content" / "routines" / "daily.md").write_text(
        "---\ntitle: Daily routine\nkind: daily\nsummary: A long one.\nitems:\n"
        + item * items + "---\nEvery day.\n", encoding="utf-8")
    config = load_config(project)
    return load_publication(config), load_theme(config)


def test_quick_reference_shrinks_a_long_routine_to_one_page(project, tmp_path):
    pdf = tmp_path / "sheet.pdf"
    pdf.write_bytes(quickref_pdf(*_long_routine(project, 12), "a4", False, "sheet.pdf"))
    assert info(pdf)["Pages"] == "1"


def test_quick_reference_refuses_a_routine_that_cannot_fit(project):
    """Rather than quietly spilling onto a second page, the sheet is a clear build error."""
    with pytest.raises(RenderError) as err:
        quickref_pdf(*_long_routine(project, 30), "a4", False, "test-booklet-quick-reference.pdf")
    assert err.value.message == (
        "test-booklet-quick-reference.pdf: the daily routine 'Daily routine' does not fit on "
        "one page (30 exercises, notes included); shorten the notes or move exercises into "
        "another routine")


def test_a_parallel_build_reports_the_quick_references_error_and_writes_nothing(project):
    """The quick reference renders in a process forked from the handout's (which imported
    WeasyPrint once for both): its error still comes back whole, and the build writes nothing."""
    _long_routine(project, 30)
    with pytest.raises(PressroomError) as err:
        build(load_config(project), ("pdf",), parallel=True)
    assert err.value.message == (
        "test-booklet-quick-reference.pdf: the daily routine 'Daily routine' does not fit on "
        "one page (30 exercises, notes included); shorten the notes or move exercises into "
        "another routine")
    assert not list((project / "output").glob("*.pdf"))


# --- Structure and metadata: pikepdf ------------------------------------------------------------

def _struct_nodes(node):
    if isinstance(node, pikepdf.Dictionary):
        yield node
        kids = node.get("/K")
        if isinstance(kids, pikepdf.Array):
            for kid in kids:
                yield from _struct_nodes(kid)
        elif isinstance(kids, pikepdf.Dictionary):
            yield from _struct_nodes(kids)


@pytest.mark.parametrize("name", ["handout", "quick-reference"])
def test_tagged_structure_language_and_title(demo_out, demo, name):
    with pikepdf.open(demo_out / f"{SLUG}-{name}.pdf") as pdf:
        root = pdf.Root
        assert root.MarkInfo.Marked is True
        assert "/StructTreeRoot" in root
        assert str(root.Lang) == demo.config.language
        assert root.ViewerPreferences.DisplayDocTitle is True
        nodes = list(_struct_nodes(root.StructTreeRoot))
        assert len(nodes) > 50


@pytest.mark.parametrize("name", ["handout", "quick-reference"])
def test_metadata_in_info_and_xmp(demo_out, demo, name):
    cfg = demo.config
    keywords = ", ".join(cfg.subjects)
    with pikepdf.open(demo_out / f"{SLUG}-{name}.pdf") as pdf:
        docinfo = pdf.docinfo
        meta = pdf.open_metadata()
        title = str(docinfo.Title)
        sheet_title = f"{demo.daily.title} · {cfg.publisher}"
        assert title == (cfg.title if name == "handout" else sheet_title)
        assert meta["dc:title"] == title
        assert str(docinfo.Author) == cfg.author.name
        assert list(meta["dc:creator"]) == [cfg.author.name]
        subject = cfg.description if name == "handout" else demo.daily.summary
        assert str(docinfo.Subject) == subject
        assert meta["dc:description"] == subject
        assert str(docinfo.Keywords) == keywords
        assert meta["pdf:Keywords"] == keywords


def test_figures_have_alt_text(handout, demo):
    with pikepdf.open(handout) as pdf:
        figures = [n for n in _struct_nodes(pdf.Root.StructTreeRoot) if n.get("/S") == "/Figure"]
        alts = [str(f.get("/Alt", "")) for f in figures]
    assert all(alt.strip() for alt in alts), alts
    for ex in demo.exercises:
        assert ex.illustration.alt in alts
    for image in demo.articles[0].body.images:
        assert image.alt in alts


def _outline(pdf: Path) -> list[tuple[str, list[str]]]:
    with pikepdf.open(pdf) as doc, doc.open_outline() as outline:
        return [(item.title, [child.title for child in item.children]) for item in outline.root]


def test_outline_has_every_chapter_and_exercise(handout, letter_out, demo):
    for pdf in (handout, letter_out / f"{SLUG}-handout.pdf"):
        outline = dict(_outline(pdf))
        chapters = [a.title for a in demo.articles] + ["The exercises", "Your routines",
                                                       "About the author"]
        assert list(outline) == chapters
        assert outline["The exercises"] == [ex.title for ex in demo.exercises]
        assert outline["Your routines"] == [r.title for r in demo.routines] + ["Progress tracker"]


def test_quick_reference_outline(quickref, demo):
    assert _outline(quickref) == [(demo.daily.title, [])]


def _links(pdf: Path) -> tuple[list[str], int]:
    """(external URIs, number of internal links) over every page."""
    uris, internal = [], 0
    with pikepdf.open(pdf) as doc:
        for page in doc.pages:
            for annot in page.get("/Annots", []):
                if annot.get("/Subtype") != "/Link":
                    continue
                action = annot.get("/A")
                if action is not None and action.get("/URI") is not None:
                    uris.append(str(action.URI))
                else:
                    internal += 1
    return uris, internal


def test_links_are_clickable(handout, quickref, demo):
    cfg = demo.config
    uris, internal = _links(handout)
    signup = utm_url(cfg.newsletter.signup_url, "handout", "print", cfg.slug)
    for url in (f"mailto:{cfg.contact.email}", cfg.website, cfg.newsletter.booking_url, signup):
        assert url in uris
    # Contents entries, the exercise index, routine tables and footnotes jump inside the file.
    toc_entries = 4 + len(demo.articles[0].body.headings) + len(demo.exercises) + len(demo.routines)
    assert internal >= toc_entries + len(demo.exercises)
    uris, _ = _links(quickref)
    assert utm_url(cfg.newsletter.signup_url, "quick-reference", "print", cfg.slug) in uris


# --- Text on the page: pdftotext -layout -------------------------------------------------------

TOC_LINE = re.compile(r"^\s*(\S.*?)\s{2,}(\d+)\s*$")


def _toc(pages: list[str]) -> list[tuple[str, int]]:
    contents = next(i for i, text in enumerate(pages) if re.search(r"^Contents$", text, re.M))
    entries = [(m[1], int(m[2])) for m in map(TOC_LINE.match, pages[contents].splitlines()) if m]
    return contents, entries


def squash(text: str) -> str:
    """Text without whitespace or hyphens: line wrapping and hyphenation cannot break a match."""
    return re.sub(r"[\s\-\u00ad]+", "", text)


def _heading_page(pages: list[str], title: str, after: int) -> int:
    """The first page after ``after`` (0-based) with ``title`` alone on a line, 1-based."""
    for number, text in enumerate(pages[after + 1:], start=after + 2):
        if any(line.strip() == title for line in text.splitlines()):
            return number
    raise AssertionError(f"heading {title!r} not found")


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_toc_page_numbers_match_the_pages(paper, pages, letter_pages, demo):
    text = pages if paper == "a4" else letter_pages
    contents, entries = _toc(text)
    titles = [title for title, _ in entries]
    assert titles[:2] == [demo.articles[0].title, demo.articles[0].body.headings[0].text]
    assert [ex.title for ex in demo.exercises] == titles[titles.index("The exercises") + 1:][
        :len(demo.exercises)]
    assert titles[-1] == "About the author"
    # The dot leaders are drawn (a background), not text a screen reader or a copy reads out.
    assert ".." not in text[contents]
    for title, page in entries:
        assert _heading_page(text, title, contents) == page, title
    # The page numbers also match the footer: "Page N of M".
    for title, page in entries:
        assert f"Page {page} of {len(text)}" in text[page - 1]


def test_exercise_index_page_numbers(pages, demo):
    """The visual index opening the exercises says the right page for every card."""
    index = _heading_page(pages, "The exercises", 2) - 1
    flat = " ".join(pages[index].split())
    _, entries = _toc(pages)
    toc = dict(entries)
    for ex in demo.exercises:
        assert re.search(rf"{re.escape(ex.title)} .*?Page {toc[ex.title]}\b", flat), ex.title


@pytest.mark.parametrize("paper", ["a4", "letter"])
def test_exercise_cards_never_split(paper, pages, letter_pages, demo):
    """Each card (title ... last caution) sits on one page, at both paper sizes."""
    text = pages if paper == "a4" else letter_pages
    contents, _ = _toc(text)
    for ex in demo.exercises:
        page = _heading_page(text, ex.title, contents + 1)
        flat = squash(text[page - 1])
        for caution in ex.cautions:
            assert squash(caution) in flat, (paper, ex.title, caution)
        assert squash(ex.steps[-1]) in flat


def test_progress_tracker_is_one_full_page(pages, demo):
    """Every week of the programme on the tracker's page, each row with its seven boxes."""
    page = _heading_page(pages, "Progress tracker", 3)
    weeks = [int(m[1]) for m in map(re.compile(r"^\s*(\d{1,2})(?:\s|$)").match,
                                     pages[page - 1].splitlines()) if m]
    assert weeks == list(range(1, demo.programme.total_weeks + 1))


def test_running_heads_and_footer(pages, demo):
    """Header: the current chapter (never on the cover or the back page); footer: the website
    and "Page X of Y"."""
    cfg = demo.config
    site = cfg.website.split("://", 1)[1]
    assert "Page 1 of" not in pages[0]
    for number, text in enumerate(pages[1:], start=2):
        footer = [line for line in text.splitlines() if line.strip()][-1].split()
        assert footer == [site, "Page", str(number), "of", str(len(pages))], number
    for chapter in ("The exercises", "Your routines"):
        first = _heading_page(pages, chapter, 2)
        for text in pages[first - 1:first + 1]:
            head = text.splitlines()[0]
            assert head.startswith(chapter) and head.replace(" ", "").endswith("JUVENOLOGYCLINIC")
    assert pages[-1].lstrip().startswith("About the author")  # no running head on the back


def test_text_extracts_as_words(pages, demo_out):
    """Letter-spaced labels still extract as words (search, copy, text-to-speech)."""
    sheet = run("pdftotext", "-layout", str(demo_out / f"{SLUG}-quick-reference.pdf"), "-")
    for text in [*pages, sheet]:
        assert not re.search(r"\b(?:[A-Z] ){4,}", text), text[:200]
    assert "JUVENOLOGY CLINIC" in pages[1]


def test_back_page_has_bio_contact_and_disclaimer(pages, demo):
    back = " ".join(pages[-1].split())
    cfg = demo.config
    assert "About the author" in back
    assert cfg.author.name in back
    assert cfg.contact.email in back
    assert "Medical disclaimer".upper().replace(" ", "") in back.replace(" ", "").upper()
    assert " ".join(cfg.disclaimer.split()[:8]) in back


# --- QR codes: pdftoppm + zbarimg -----------------------------------------------------------

def _decode_qr(pdf: Path, page: int, tmp_path: Path) -> list[str]:
    png = tmp_path / f"{pdf.stem}-{page}"
    run("pdftoppm", "-r", "150", "-f", str(page), "-l", str(page), "-singlefile", "-png",
        str(pdf), str(png))
    out = run("zbarimg", "--quiet", "--raw", str(png.with_suffix(".png")))
    return out.split()


@pytest.mark.parametrize("name, source", [("handout", "handout"),
                                          ("quick-reference", "quick-reference")])
def test_qr_code_decodes_to_signup_url_with_utm(demo_out, demo, tmp_path, name, source):
    pdf = demo_out / f"{SLUG}-{name}.pdf"
    last = int(info(pdf)["Pages"])
    (url,) = _decode_qr(pdf, last, tmp_path)
    cfg = demo.config
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == cfg.newsletter.signup_url
    assert parse_qs(parts.query) == {"utm_source": [source], "utm_medium": ["print"],
                                     "utm_campaign": [cfg.slug]}


# --- The renderer itself -----------------------------------------------------------------------

def test_renderer_is_pure_and_imports_weasyprint_lazily(tmp_path, monkeypatch):
    code = ("import sys, pressroom.render.pdf, pressroom.render.urlfetch; "
            "print('weasyprint' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], check=True,
                         capture_output=True, text=True).stdout
    assert out.strip() == "False"

    from pressroom.render.pdf import render_pdf

    project = copy_project("minimal", tmp_path / "project")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    pub = load_publication(load_config(project))
    theme = load_theme(pub.config)

    def files_outside_the_cache() -> dict[Path, bytes]:
        return {p: p.read_bytes() for p in tmp_path.rglob("*")
                if p.is_file() and ".pressroom" not in p.relative_to(tmp_path).parts}

    before = files_outside_the_cache()
    files = render_pdf(pub, theme)
    # Pure: the PDFs come back as bytes; nothing is written (no output/, nothing in the
    # project or the working folder) except derived files in the project's cache.
    assert files_outside_the_cache() == before
    slug = pub.config.slug
    assert sorted(files) == [f"{slug}-handout.pdf", f"{slug}-quick-reference.pdf"]
    assert all(isinstance(data, bytes) and data.startswith(b"%PDF-") for data in files.values())
    assert render_pdf(pub, theme) == files  # and no hidden state: the same input, the same bytes


def test_weasyprint_warnings_reach_the_build_log(project, caplog):
    """WeasyPrint's own warnings are re-logged under pressroom, so `--strict` can fail on them."""
    from pressroom.render.pdf import html_to_pdf

    config = load_config(project)
    pub, theme = load_publication(config), load_theme(config)
    html = ('<html lang="en"><head><title>t</title></head>'
            '<body><p style="colour: red">x</p></body></html>')
    with caplog.at_level("WARNING", logger="pressroom"):
        html_to_pdf(html, pub, theme, "odd.pdf")
    messages = [r.getMessage() for r in caplog.records if r.name == "pressroom.render.pdf"]
    assert any(m.startswith("odd.pdf: Ignored `colour: red`") for m in messages), messages


def test_render_is_reproducible(handout, quickref, tmp_path):
    from pressroom.render.pdf import render_pdf

    # Another copy of the demo with an empty derived-file cache, rendered in this process.
    twin = load_publication(load_config(copy_project("demo", tmp_path / "twin")))
    files = render_pdf(twin, load_theme(twin.config))
    assert files[handout.name] == handout.read_bytes()
    assert files[quickref.name] == quickref.read_bytes()
