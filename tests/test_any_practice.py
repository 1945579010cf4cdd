"""Pressroom for any practice: a second publication from another field (a fictional
physiotherapy practice's back-care guide) builds in every format with its own brand and none of
the demo's words; optional fields leave no trace; dates; the neutral default theme."""

from __future__ import annotations

import ast
import datetime as _dt
import os
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from projects import FIXTURES, ROOT, build_project, copy_project

from pressroom.build import build
from pressroom.cli import cli
from pressroom.config import load_config
from pressroom.epubcheck import run_epubcheck

DEMO_WORDS = re.compile(r"\b(juvenology|marina|facial|faces?|mirrors?|fillers?|kent)\b",
                        re.IGNORECASE)
TEXT_SUFFIXES = {".html", ".xhtml", ".txt", ".json", ".css", ".opf", ".ncx", ".xml", ".svg"}


@pytest.fixture(scope="session")
def back_care_out(tmp_path_factory) -> Path:
    """The back-care guide built once, without SOURCE_DATE_EPOCH (dates come from the
    publication's `date`)."""
    project = copy_project("back-care", tmp_path_factory.mktemp("back-care"))
    saved = os.environ.pop("SOURCE_DATE_EPOCH")
    try:
        return build_project(project)
    finally:
        os.environ["SOURCE_DATE_EPOCH"] = saved


@pytest.fixture(scope="session")
def back_care_texts(back_care_out, tmp_path_factory) -> dict[str, str]:
    """Every output as text: files as they are, the EPUB unzipped, PDFs through pdftotext."""
    texts: dict[str, str] = {}
    for path in sorted(back_care_out.rglob("*")):
        rel = str(path.relative_to(back_care_out))
        if path.suffix in TEXT_SUFFIXES:
            texts[rel] = path.read_text(encoding="utf-8")
        elif path.suffix == ".pdf":
            texts[rel] = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"],
                                        check=True, capture_output=True, text=True).stdout
        elif path.suffix == ".epub":
            with zipfile.ZipFile(path) as book:
                for name in book.namelist():
                    if Path(name).suffix in TEXT_SUFFIXES:
                        texts[f"{rel}!{name}"] = book.read(name).decode("utf-8")
    return texts


def test_every_format_is_built(back_care_out):
    names = {p.name for p in back_care_out.rglob("*") if p.is_file()}
    assert {"back-care.epub", "back-care-handout.pdf", "back-care-quick-reference.pdf",
            "01-desk-breaks.html", "01-desk-breaks.txt", "index.html", "logo.svg"} <= names


def test_no_demo_words_in_any_output(back_care_texts):
    # Pages, PDFs' text, the unzipped EPUB and both email parts are all searched.
    kinds = {Path(name.split("!")[0]).suffix for name in back_care_texts}
    assert {".html", ".txt", ".pdf", ".epub", ".json"} <= kinds
    hits = [f"{name}: {match.group(0)}" for name, text in back_care_texts.items()
            for match in DEMO_WORDS.finditer(text.replace("@font-face", ""))]
    assert hits == []


@pytest.mark.slow
def test_epubcheck_clean(back_care_out):
    result = run_epubcheck(back_care_out / "back-care.epub")
    assert (result.fatals, result.errors, result.warnings) == (0, 0, 0), result.messages


def test_the_brand_comes_from_the_project(back_care_out, back_care_texts):
    logo = FIXTURES / "back-care" / "content" / "images" / "fernbank-logo.svg"
    assert (back_care_out / "site" / "logo.svg").read_bytes() == logo.read_bytes()
    assert "#24406B" in back_care_texts["site/style.css"]
    assert "Fernbank Physio Test Practice" in back_care_texts["site/index.html"]
    # The project's strings.yaml rewords the theme's newsletter promise.
    handout = " ".join(back_care_texts["back-care-handout.pdf"].split())
    assert "Scan to join the newsletter: a movement break each week" in handout


def test_absent_optional_fields_leave_no_trace(back_care_texts):
    for name, text in back_care_texts.items():
        assert "Book a consultation" not in text, name
        assert "tel:" not in text, name
        assert "What the evidence can and cannot tell us" not in text, name
        assert "None" not in re.sub(r"<[^>]+>", " ", text).split(), name


def _card(texts: dict[str, str], slug: str) -> str:
    return texts[f"back-care.epub!EPUB/exercise-{slug}.xhtml"]


def test_a_timed_hold_has_no_reps_and_missing_lists_have_no_headings(back_care_texts):
    wall = _card(back_care_texts, "wall-hold")
    assert "<td>Hold 20\u00a0s · 3 sets</td>" in wall
    assert "rep" not in wall.split("card-facts")[1].split("</table>")[0]
    assert ">Works<" not in wall and "card-cautions" not in wall
    rolls = _card(back_care_texts, "shoulder-rolls")
    assert "<td>10 reps · 1 set</td>" in rolls and "Common mistakes" in rolls
    assert "Tips" not in rolls and "card-cautions" not in rolls


def test_the_quick_reference_shows_the_chosen_routine(back_care_texts):
    text = " ".join(back_care_texts["back-care-quick-reference.pdf"].split())
    assert "Desk Break" in text and "Morning Routine" not in text
    assert "Scan to sign up for the newsletter: a movement break each week." in text


def test_dates_come_from_the_publication_without_source_date_epoch(back_care_out):
    with zipfile.ZipFile(back_care_out / "back-care.epub") as book:
        assert {info.date_time[:3] for info in book.infolist()} == {(2026, 3, 2)}
        opf = book.read("EPUB/content.opf").decode("utf-8")
    assert re.search(r'dcterms:modified">2026-03-02T00:00:00Z<', opf), opf
    info = subprocess.run(["pdfinfo", "-isodates", str(back_care_out / "back-care-handout.pdf")],
                          check=True, capture_output=True, text=True).stdout
    assert re.search(r"CreationDate:\s+2026-03-02T00:00:00", info), info
    assert "2000-01-01" not in opf + info


def test_source_date_epoch_wins_over_the_publication_date(demo_out):
    with zipfile.ZipFile(demo_out / "facial-yoga.epub") as book:
        stamps = {info.date_time for info in book.infolist()}
    assert stamps == {_dt.datetime.fromtimestamp(int(os.environ["SOURCE_DATE_EPOCH"]),
                                                 _dt.UTC).timetuple()[:6]}


def test_several_daily_routines_need_an_explicit_choice(tmp_path):
    project = copy_project("back-care", tmp_path / "p")
    config = project / "content" / "publication.yaml"
    config.write_text(config.read_text().replace("quick_reference: desk-break\n", ""))
    result = CliRunner().invoke(cli, ["check", "--project", str(project)])
    assert result.exit_code == 1
    assert result.output == (f"Error: {config}: 2 daily routines (desk-break, morning); add "
                             "'quick_reference: <slug>' to say which one the quick reference "
                             "shows\n")
    config.write_text(config.read_text() + "quick_reference: lunch\n")
    result = CliRunner().invoke(cli, ["check", "--project", str(project)])
    assert result.output == (f"Error: {config}:46: 'quick_reference' must name a daily routine "
                             "in content/routines/, got 'lunch' (daily routines: desk-break, "
                             "morning)\n")


# The neutral default theme: none of the demo's names or subject wording in the product.
SUBJECT_WORDS = re.compile(r"juvenology|marina|facial|\bfaces?\b|mirror|filler|\bTMJ\b|kent\b|"
                           r"new exercise each week|news from the clinic|warm-up", re.IGNORECASE)


def _python_strings(path: Path) -> str:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return "\n".join(node.value for node in ast.walk(tree)
                     if isinstance(node, ast.Constant) and isinstance(node.value, str))


def test_the_default_theme_and_the_code_speak_of_no_particular_practice():
    hits = []
    for path in sorted((ROOT / "themes" / "default").rglob("*")):
        if path.suffix in TEXT_SUFFIXES | {".mjml", ".yaml"}:
            # What readers can see: Jinja's own tags and comments name font faces, not faces.
            text = re.sub(r"\{%.*?%\}|\{\{.*?\}\}|\{#.*?#\}", "", path.read_text(encoding="utf-8"),
                          flags=re.DOTALL).replace("font-face", "")
            hits += [f"{path}: {m.group(0)}" for m in SUBJECT_WORDS.finditer(text)]
    for path in sorted((ROOT / "src" / "pressroom").rglob("*")):
        if path.suffix == ".py":
            text = _python_strings(path)
        elif path.is_file() and "__pycache__" not in path.parts:
            text = path.read_text(encoding="utf-8")
        else:
            continue
        text = re.sub(r"font[- ]faces?|\bfaces\b(?= the site| and files|,)", "", text)
        hits += [f"{path}: {m.group(0)}" for m in SUBJECT_WORDS.finditer(text)]
    assert hits == [], hits
    assert not (ROOT / "themes" / "default" / "logo.svg").exists()


def test_the_demo_keeps_its_look_through_its_own_brand_and_strings(demo_out):
    handout = subprocess.run(["pdftotext", str(demo_out / "facial-yoga-handout.pdf"), "-"],
                             check=True, capture_output=True, text=True).stdout
    assert "Keep this page by your mirror." in " ".join(handout.split())
    logo = ROOT / "content" / "images" / "brand" / "logo.svg"
    assert (demo_out / "site" / "logo.svg").read_bytes() == logo.read_bytes()
    assert "#2F6F6A" in (demo_out / "site" / "style.css").read_text(encoding="utf-8")


def test_a_project_overlay_overrides_a_template_file_by_file(tmp_path):
    project = copy_project("back-care", tmp_path / "p")
    partial = project / "theme" / "partials" / "disclaimer.html"
    partial.parent.mkdir(parents=True)
    source = (ROOT / "themes" / "default" / "partials" / "disclaimer.html").read_text()
    partial.write_text(source.replace("Medical disclaimer</p>", "Please read</p>"))
    config = load_config(project)
    build(config, ("site",))
    out = config.out
    page = (out / "site" / "index.html").read_text(encoding="utf-8")
    assert "Please read</p>" in page and "Medical disclaimer</p>" not in page
