"""The handout's exercise cards are laid out and drawn as a document of their own (in another
process) and merged back onto one-page stand-ins (render.pdfmerge). Checked on the merged
file with pikepdf and poppler: every link, named destination and outline entry lands on its
card's page; the ParentTree maps every page's marked content and every link to its elements.
A card that runs over one page, a theme without stand-ins, or a cards process that dies gets
the handout laid out whole, with nothing lost."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pikepdf
import pytest
from pdfstructure import page_marks

from pressroom.build import build
from pressroom.config import load_config
from pressroom.content import load_publication
from pressroom.render import pdf as pdfrender
from pressroom.render.pdfmerge import MARGINS_XOBJECT
from pressroom.theme import load_theme

from projects import ROOT


def texts(pdf: Path) -> list[str]:
    """The text of each page (pdftotext)."""
    out = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                         text=True, check=True).stdout
    return out.split("\f")[:-1]


def squash(text: str) -> str:
    return re.sub(r"[\s\-\u00ad]+", "", text)


def destinations(doc: pikepdf.Pdf) -> dict[str, int]:
    """Named destination -> 0-based page index."""
    index = {page.obj.objgen: i for i, page in enumerate(doc.pages)}
    flat = list(doc.Root.Names.Dests.Names)
    return {str(flat[i]): index[flat[i + 1][0].objgen] for i in range(0, len(flat), 2)}


def merged(doc: pikepdf.Pdf) -> list[int]:
    """The pages that carry a card merged onto its stand-in."""
    return [i for i, page in enumerate(doc.pages)
            if MARGINS_XOBJECT in page.obj.Resources.get("/XObject", {})]


@pytest.fixture(scope="module")
def handout(demo_out) -> Path:
    return demo_out / "facial-yoga-handout.pdf"


@pytest.fixture(scope="module")
def demo():
    config = load_config(ROOT)
    return load_publication(config)


def test_links_and_outline_land_on_the_cards(handout, demo):
    pages = texts(handout)
    with pikepdf.open(handout) as doc:
        assert len(merged(doc)) == len(demo.exercises)  # the demo's cards were drawn apart
        names = destinations(doc)
        for ex in demo.exercises:
            page = names[f"exercise-{ex.slug}"]
            assert names[f"exercise-{ex.slug}-title"] == page
            assert squash(ex.steps[-1]) in squash(pages[page]), ex.title
            assert squash(ex.cautions[-1]) in squash(pages[page]), ex.title
        # Every internal link (contents, exercise index, routine tables) has its destination.
        dests = [str(a.Dest) for page in doc.pages for a in page.obj.get("/Annots", [])
                 if "/Dest" in a]
        assert len(dests) > 2 * len(demo.exercises)
        assert not [d for d in dests if d not in names]
        with doc.open_outline() as outline:
            part = next(item for item in outline.root if item.title == "The exercises")
            index = {page.obj.objgen: i for i, page in enumerate(doc.pages)}
            for item, ex in zip(part.children, demo.exercises, strict=True):
                assert item.title == ex.title
                assert index[item.destination[0].objgen] == names[f"exercise-{ex.slug}"]


def test_parent_tree_maps_each_pages_content_and_links_to_their_elements(handout):
    with pikepdf.open(handout) as doc:
        root = doc.Root.StructTreeRoot
        flat = list(root.ParentTree.Nums)
        keys = [int(k) for k in flat[0::2]]
        assert keys == sorted(set(keys))
        nums = dict(zip(keys, flat[1::2]))
        assert int(root.ParentTreeNextKey) > max(keys)
        for i, page in enumerate(doc.pages):
            entry = nums[int(page.obj.StructParents)]
            for mcid in page_marks(page).boxes:
                element = entry[mcid]
                assert element is not None, (i + 1, mcid)
                assert element.Pg.objgen == page.obj.objgen, (i + 1, mcid)
                assert mcid in [k for k in element.K if isinstance(k, int)] or element.K == mcid
            for annot in page.obj.get("/Annots", []):
                link = nums[int(annot.StructParent)]
                assert link.S == "/Link"
                assert [k for k in link.K if isinstance(k, pikepdf.Dictionary)
                        and k.get("/Type") == "/OBJR" and k.Obj.objgen == annot.objgen]


def _footers_are_consecutive(pages: list[str]) -> None:
    for number, text in enumerate(pages[1:], start=2):
        assert f"Page {number} of {len(pages)}" in text, number


def test_a_card_that_runs_over_one_page_gets_the_handout_laid_out_whole(project, caplog):
    card = project / "content/exercises/cheek-lift.md"
    long = "\n\n".join(["Keep the movement small and slow, and breathe out as you release "
                        "the hold; it is the control that matters, not the size."] * 40)
    card.write_text(card.read_text() + "\n" + long + "\n")
    caplog.set_level("INFO", logger="pressroom")
    build(load_config(project), ("pdf",), parallel=False)
    handout = project / "output/test-booklet-handout.pdf"
    pages = texts(handout)
    with pikepdf.open(handout) as doc:
        assert merged(doc) == []
        names = destinations(doc)
    assert "laying the handout out whole" in caplog.text
    _footers_are_consecutive(pages)
    start = names["exercise-cheek-lift"]
    assert names["exercise-jaw-release"] >= start + 2  # the long card took two pages or more


def test_a_theme_without_stand_ins_builds_the_handout_whole(project):
    overlay = project / "theme/pdf"
    overlay.mkdir(parents=True)
    default = (ROOT / "themes/default/pdf/handout.html").read_text()
    old = "{{ card_stub(ex) if stub_cards else exercise_card(ex, ex.illustration.src, level=2) }}"
    assert old in default
    (overlay / "handout.html").write_text(default.replace(
        old, "{{ exercise_card(ex, ex.illustration.src, level=2) }}"))
    build(load_config(project), ("pdf",), parallel=True)
    handout = project / "output/test-booklet-handout.pdf"
    pages = texts(handout)
    with pikepdf.open(handout) as doc:
        assert merged(doc) == []
        names = destinations(doc)
    _footers_are_consecutive(pages)
    pub = load_publication(load_config(project))
    for ex in pub.exercises:
        assert squash(ex.steps[-1]) in squash(pages[names[f"exercise-{ex.slug}"]])


def _dies(*args, **kwargs) -> bytes:
    os._exit(3)


def test_a_cards_process_that_dies_gets_the_handout_laid_out_whole(project, monkeypatch,
                                                                     tmp_path):
    config = load_config(project)
    pub, theme = load_publication(config), load_theme(config)
    monkeypatch.setattr(pdfrender, "_cards_pdf", _dies)  # the forked child inherits it
    files = pdfrender.render_pdf(pub, theme, parts=("handout",), fork=True)
    handout = tmp_path / "handout.pdf"
    handout.write_bytes(files["test-booklet-handout.pdf"])
    pages = texts(handout)
    with pikepdf.open(handout) as doc:
        assert merged(doc) == []
        names = destinations(doc)
    _footers_are_consecutive(pages)
    for ex in pub.exercises:
        assert squash(ex.steps[-1]) in squash(pages[names[f"exercise-{ex.slug}"]])


def test_the_cards_drawn_apart_in_a_process_or_here_give_the_same_file(project):
    config = load_config(project)
    pub, theme = load_publication(config), load_theme(config)
    forked = pdfrender.render_pdf(pub, theme, parts=("handout",), fork=True)
    shutil.rmtree(project / ".pressroom")  # both halves drawn again, here
    here = pdfrender.render_pdf(pub, theme, parts=("handout",), fork=False)
    assert forked == here
    with pikepdf.open(io.BytesIO(here["test-booklet-handout.pdf"])) as doc:
        assert len(merged(doc)) == len(pub.exercises)


def _positions(data: bytes) -> tuple[dict, list, list[str]]:
    """(named destinations, outline entries, as (page, x, y)), and each page's text."""
    with pikepdf.open(io.BytesIO(data)) as doc:
        index = {page.obj.objgen: i for i, page in enumerate(doc.pages)}

        def where(dest) -> tuple:
            return (index[dest[0].objgen], *(round(float(v), 2) for v in list(dest)[2:4]))

        flat = list(doc.Root.Names.Dests.Names)
        names = {str(flat[i]): where(flat[i + 1]) for i in range(0, len(flat), 2)}
        with doc.open_outline() as outline:
            entries = [(item.title, where(item.destination)) for top in outline.root
                       for item in (top, *top.children)]
        words = [" ".join(page.split()) for page in texts_of(data)]
    return names, entries, words


def texts_of(data: bytes) -> list[str]:
    out = subprocess.run(["pdftotext", "-layout", "-", "-"], input=data, capture_output=True,
                         check=True).stdout.decode("utf-8")
    return out.split("\f")[:-1]


def test_the_merged_handout_has_the_whole_layouts_pages_destinations_and_outline(project):
    """Every anchor and outline entry at the same page and position, and the same words on
    every page, as the handout laid out whole."""
    config = load_config(project)
    pub, theme = load_publication(config), load_theme(config)
    name = "test-booklet-handout.pdf"
    split = pdfrender.render_pdf(pub, theme, parts=("handout",))[name]
    whole = pdfrender._whole_handout(pub, theme, name, None)
    assert _positions(split) == _positions(whole)


def test_a_cards_links_to_the_rest_of_the_handout_and_the_web_are_kept(project):
    """A card links to an article's section (an anchor only the rest of the handout has) and
    to a web page: both links survive the merge, tagged, with the right destination."""
    card = project / "content/exercises/cheek-lift.md"
    card.write_text(card.read_text() + "\nSee [why bother](#intro-why-bother) and "
                    "[the NHS page](https://www.nhs.uk/conditions/bells-palsy/).\n")
    config = load_config(project)
    pub, theme = load_publication(config), load_theme(config)
    data = pdfrender.render_pdf(pub, theme, parts=("handout",), fork=True)[
        "test-booklet-handout.pdf"]
    with pikepdf.open(io.BytesIO(data)) as doc:
        names = destinations(doc)
        page = doc.pages[names["exercise-cheek-lift"]]
        annots = list(page.obj.get("/Annots", []))
        inside = [str(a.Dest) for a in annots if "/Dest" in a]
        web = [str(a.A.URI) for a in annots if "/A" in a]
        assert inside == ["intro-why-bother"]
        assert names["intro-why-bother"] < names["exercise-cheek-lift"]
        assert web == ["https://www.nhs.uk/conditions/bells-palsy/"]
        nums = dict(zip(*[iter(doc.Root.StructTreeRoot.ParentTree.Nums)] * 2))
        for annot in annots:
            link = nums[int(annot.StructParent)]
            assert link.S == "/Link" and link.Pg.objgen == page.obj.objgen
            assert [k for k in link.K if isinstance(k, pikepdf.Dictionary)
                    and k.get("/Type") == "/OBJR" and k.Obj.objgen == annot.objgen]
    assert _positions(data) == _positions(pdfrender._whole_handout(
        pub, theme, "test-booklet-handout.pdf", None))


def _cache(project: Path) -> dict[str, int]:
    folder = project / ".pressroom/cache"
    return {ext: len(list(folder.glob(f"*.{ext}"))) for ext in ("pdf", "json")}


def _cold(project: Path, tmp_path: Path) -> bytes:
    """The handout built from an empty cache, in a copy of ``project``."""
    twin = tmp_path / "cold"
    shutil.copytree(project, twin, ignore=shutil.ignore_patterns(".pressroom", "output"))
    build(load_config(twin), ("pdf",), parallel=True)
    return (twin / "output/test-booklet-handout.pdf").read_bytes()


def _no_book_layout(*args, **kwargs):
    raise AssertionError("the rest of the handout was laid out again")


@pytest.mark.parametrize("edit", ["card", "article"])
def test_an_edit_redraws_only_its_half_and_gives_the_cold_builds_file(project, tmp_path, edit,
                                                                      monkeypatch):
    """Editing a card's steps redraws only the cards (the rest of the handout comes from the
    cache); editing an article redraws only the rest. Either way the file is, byte for byte,
    a cold build's."""
    build(load_config(project), ("pdf",), parallel=True)
    # The two halves of the handout (the rest with its page map) and the quick reference.
    assert _cache(project) == {"pdf": 3, "json": 1}
    if edit == "card":
        path, old, new = "exercises/cheek-lift.md", "Squinting.", "Squinting hard."
        monkeypatch.setattr(pdfrender, "_stub_pages", _no_book_layout)
    else:
        path, old, new = "articles/intro.md", "## What next", "## What comes next"
        monkeypatch.setattr(pdfrender, "_cards_pdf", _dies)  # would mean a whole layout
    text = (project / "content" / path).read_text()
    assert old in text
    (project / "content" / path).write_text(text.replace(old, new))
    assert build(load_config(project), ("pdf",), parallel=True).rendered == ["pdf"]
    assert _cache(project) == ({"pdf": 4, "json": 1} if edit == "card" else {"pdf": 4, "json": 2})
    data = (project / "output/test-booklet-handout.pdf").read_bytes()
    with pikepdf.open(io.BytesIO(data)) as doc:
        assert len(merged(doc)) == 2
    assert squash(new.strip("# ")) in squash(" ".join(texts_of(data)))
    monkeypatch.undo()
    assert data == _cold(project, tmp_path)


def test_a_damaged_cache_entry_is_drawn_again(project, tmp_path):
    build(load_config(project), ("pdf",), parallel=True)
    for entry in (project / ".pressroom/cache").glob("*.pdf"):
        entry.write_bytes(entry.read_bytes()[:1000])  # truncated: not a PDF any more
    handout = project / "output/test-booklet-handout.pdf"
    handout.unlink()
    build(load_config(project), ("pdf",), parallel=True, force=True)
    assert handout.read_bytes() == _cold(project, tmp_path)


def _no_quick_reference(*args, **kwargs):
    raise AssertionError("the quick reference was laid out again")


def test_the_quick_reference_is_reused_until_its_own_text_changes(project, monkeypatch):
    """Its tiles carry exercise titles and the routine's notes, not a card's steps: editing
    the steps reuses it from the cache; editing a note lays it out again."""
    build(load_config(project), ("pdf",), parallel=False)
    sheet = project / "output/test-booklet-quick-reference.pdf"
    first = sheet.read_bytes()
    card = project / "content/exercises/cheek-lift.md"
    card.write_text(card.read_text().replace("Squinting.", "Squinting hard."))
    monkeypatch.setattr(pdfrender, "quickref_pdf", _no_quick_reference)
    assert build(load_config(project), ("pdf",), parallel=False).rendered == ["pdf"]
    assert sheet.read_bytes() == first
    monkeypatch.undo()
    daily = project / "content/routines/daily.md"
    daily.write_text(daily.read_text().replace("Small circles.", "Small, slow circles."))
    build(load_config(project), ("pdf",), parallel=False)
    assert "Small, slow circles." in " ".join(texts(sheet)[0].split())


def test_an_ebook_alone_gets_the_page_map_of_the_handout_laid_out_whole(project):
    """Built without the PDF, the ebook's page list comes from the handout with stand-ins and
    its cards counted apart: the same pages as the handout laid out whole, each beginning with
    the same elements (a stand-in has the card's anchors, not those inside its text, which
    never begin a page: a card is one page), also when a card runs over one page (then the
    handout is laid out whole for it)."""
    counts = []
    for long_card in (False, True):
        if long_card:
            card = project / "content/exercises/cheek-lift.md"
            card.write_text(card.read_text() + "\n" + "\n\n".join(
                ["Keep the movement small and slow, and breathe out as you release."] * 60))
        config = load_config(project)
        pub, theme = load_publication(config), load_theme(config)
        whole: list = []
        pdfrender._whole_handout(pub, theme, "h.pdf", whole.append)
        pages = pdfrender.handout_page_map(pub, theme)
        assert len(pages.starts) == len(whole[0].starts)
        for ids, all_ids in zip(pages.starts, whole[0].starts):
            assert ids == all_ids[:len(ids)] and (ids or not all_ids), (ids, all_ids)
        if long_card:
            assert pages == whole[0]
        counts.append(len(pages.starts))
    assert counts[1] > counts[0]  # the long card took another page
