"""PDF/UA-1 structure of both demo PDFs (handout and quick reference), walked with pikepdf: the
structure tree reads in the visual order on every page (the rule is in tests/pdfstructure.py),
all content is tagged or an artifact, figures have Alt and decoration is an artifact, TH cells
have /Scope, heading levels never skip, links are tagged and described, and the catalogue has
/Lang, /MarkInfo, DisplayDocTitle, a title and the PDF/UA identifier.

Matterhorn Protocol 1.1 failure conditions checked here: 01-003, 01-004, 01-005, 02-001 and
02-004 (no role map, standard types only), 06-002, 06-003, 07-001, 07-002, 11-001/11-006
(/Lang), 13-004, 14-002, 14-003, 15-003, 18-001 (running heads and page numbers are pagination
artifacts), 28-008/28-009 (/Tabs /S), 28-011, 28-012; 09-001 (reading order, a human check in
the protocol) through the rule above. The README's "Accessibility" section lists what is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import pikepdf
import pytest
from pdfstructure import Element, PageMarks, order_problems, page_marks, structure

SLUG = "facial-yoga"
NAMES = ["handout", "quick-reference"]
MM = 72 / 25.4
# ISO 32000-1 standard structure types (14.8.4); PDF/UA-1 needs no role map when only these occur.
STANDARD = {
    "Document", "Part", "Art", "Sect", "Div", "BlockQuote", "Caption", "TOC", "TOCI", "Index",
    "NonStruct", "Private", "P", "H", "H1", "H2", "H3", "H4", "H5", "H6", "L", "LI", "Lbl",
    "LBody", "Table", "TR", "TH", "TD", "THead", "TBody", "TFoot", "Span", "Quote", "Note",
    "Reference", "BibEntry", "Code", "Link", "Annot", "Ruby", "RB", "RT", "RP", "Warichu", "WT",
    "WP", "Figure", "Formula", "Form"}


@dataclass
class Parsed:
    """One PDF opened once: the file, its structure tree and what each page draws."""

    pdf: pikepdf.Pdf
    root: Element
    marks: list[PageMarks]


@pytest.fixture(scope="module")
def pub(demo_out):
    from pressroom.config import load_config
    from pressroom.content import load_publication

    return load_publication(load_config(demo_out.parent))


@pytest.fixture(scope="module")
def parsed(demo_out):
    opened = {}
    for name in NAMES:
        pdf = pikepdf.open(demo_out / f"{SLUG}-{name}.pdf")
        opened[name] = Parsed(pdf, structure(pdf), [page_marks(p) for p in pdf.pages])
    yield opened
    for item in opened.values():
        item.pdf.close()


def elements(doc: Parsed, tag: str) -> list[Element]:
    return [e for e in doc.root.walk() if e.tag == f"/{tag}"]


@pytest.mark.parametrize("name", NAMES)
def test_structure_tree_reads_in_the_visual_order_on_every_page(parsed, name):
    """09-001: top to bottom, side-by-side blocks left to right, at every level of the tree
    (the quick-reference tiles 1 2 / 3 4 ..., its footer text before its QR code)."""
    doc = parsed[name]
    assert order_problems(doc.root, doc.marks) == []


@pytest.mark.parametrize("name", NAMES)
def test_all_content_is_tagged_or_an_artifact(parsed, name):
    """01-005 nothing painted outside marked content; 01-003/01-004 no artifact inside
    tagged content or back; every marked-content id drawn on a page is in the structure tree
    (WeasyPrint's running heads were not, until marked as pagination artifacts)."""
    doc = parsed[name]
    in_tree = set(doc.root.mcids())
    drawn = {(i, mcid) for i, marks in enumerate(doc.marks) for mcid in marks.boxes}
    assert [m.unmarked for m in doc.marks if m.unmarked] == []
    assert [m.nesting for m in doc.marks if m.nesting] == []
    assert sorted(drawn - in_tree) == []
    assert len(drawn) > 50


def test_running_heads_and_page_numbers_are_pagination_artifacts(parsed):
    """18-001: on every page after the cover the running head and the page number are drawn
    as /Artifact <</Type /Pagination>>, and no tagged text sits in the top or bottom 12 mm."""
    doc = parsed["handout"]
    for number, (page, marks) in enumerate(zip(doc.pdf.pages, doc.marks), start=1):
        height = float(page.mediabox[3])
        edge = [mcid for mcid, box in marks.boxes.items()
                if box.top < 12 * MM or box.bottom > height - 12 * MM]
        assert edge == [], f"page {number}: tagged content in the page margin"
        if number > 1:
            assert marks.pagination_text >= 2, f"page {number}"


@pytest.mark.parametrize("name", NAMES)
def test_figures_have_alt_and_decoration_is_an_artifact(parsed, pub, name):
    """13-004 every Figure has Alt. The logo beside the publisher's name and the index
    thumbnails beside their titles are decoration: drawn inside artifacts, not Figures."""
    doc = parsed[name]
    alts = [str(f.obj.get("/Alt", "")).strip() for f in elements(doc, "Figure")]
    assert alts and all(alts), alts
    logo = f"{pub.config.publisher} logo"
    assert not [a for a in alts if a == logo or a.startswith("Thumbnail")]
    if name == "quick-reference":
        exercises = [item.exercise.illustration.alt for item in pub.daily.items]
        assert alts[:-1] == exercises and alts[-1].startswith("QR code linking to ")
        assert doc.marks[0].artifacts.get("image", 0) >= 1  # the logo
    else:
        # The exercise index: the page with the most artifact images, the thumbnails.
        index = max(range(len(doc.marks)), key=lambda i: doc.marks[i].artifacts.get("image", 0))
        assert doc.marks[index].artifacts["image"] >= len(pub.exercises)
        assert not [f for f in elements(doc, "Figure") if f.page == index]
        for ex in pub.exercises:
            assert ex.illustration.alt in alts


@pytest.mark.parametrize("name", NAMES)
def test_table_headers_have_scope(parsed, name):
    """15-003: every TH has /A /Scope: /Column in a header row, /Row beside a row's data."""
    doc = parsed[name]
    scopes = []
    for row in elements(doc, "TR"):
        cells = [k for k in row.kids if isinstance(k, Element)]
        for cell in cells:
            if cell.tag == "/TH":
                attrs = cell.obj.get("/A")
                scope = str(attrs.get("/Scope")) if attrs is not None else None
                has_data = any(c.tag == "/TD" for c in cells)
                assert scope == ("/Row" if has_data else "/Column"), cell.obj
                scopes.append(scope)
    if name == "handout":
        assert {"/Row", "/Column"} <= set(scopes)


@pytest.mark.parametrize("name", NAMES)
def test_heading_levels_start_at_h1_and_never_skip(parsed, name):
    """14-002 the first heading is H1; 14-003 no level is skipped going down."""
    doc = parsed[name]
    levels = [int(e.tag[2]) for e in doc.root.walk()
              if e.tag.startswith("/H") and e.tag[2:].isdigit()]
    assert levels and levels[0] == 1
    skips = [(a, b) for a, b in zip(levels, levels[1:]) if b > a + 1]
    assert skips == []


@pytest.mark.parametrize("name", NAMES)
def test_links_are_tagged_and_described(parsed, name):
    """28-011 every Link annotation hangs under a Link element; 28-012 it has /Contents that
    describe it;
    28-008/009 pages with annotations have /Tabs /S."""
    doc = parsed[name]
    tagged = {a.objgen for e in elements(doc, "Link") for a in e.annots}
    links = [(i, a) for i, page in enumerate(doc.pdf.pages)
             for a in page.get("/Annots", []) if a.get("/Subtype") == "/Link"]
    assert links
    for i, annot in links:
        assert annot.objgen in tagged, f"page {i + 1}: untagged link"
        contents = str(annot.get("/Contents", "")).strip()
        assert contents, f"page {i + 1}: link without /Contents"
        # The link's words, not WeasyPrint's default (its target: an anchor name or URL).
        target = annot.get("/Dest") or annot.get("/A", {}).get("/URI")
        assert contents != str(target), f"page {i + 1}: /Contents is the bare target"
        assert doc.pdf.pages[i].obj.get("/Tabs") == "/S"


@pytest.mark.parametrize("name", NAMES)
def test_catalogue_language_title_and_identifier(parsed, pub, name):
    """11-001/11-006 /Lang; /MarkInfo Marked; 07-001/07-002 DisplayDocTitle true; 06-003 a
    dc:title (and Info /Title); 06-002 pdfuaid:part 1; 02-001/02-004 no role map, standard
    structure types only."""
    doc = parsed[name]
    catalogue = doc.pdf.Root
    assert str(catalogue.Lang) == pub.config.language
    assert catalogue.MarkInfo.Marked is True
    assert catalogue.ViewerPreferences.DisplayDocTitle is True
    meta = doc.pdf.open_metadata()
    assert meta["dc:title"] and str(doc.pdf.docinfo.Title) == meta["dc:title"]
    assert meta["{http://www.aiim.org/pdfua/ns/id/}part"] == "1"
    assert "/RoleMap" not in catalogue.StructTreeRoot
    assert {e.tag[1:] for e in doc.root.walk() if e.obj.get("/S") is not None} <= STANDARD
