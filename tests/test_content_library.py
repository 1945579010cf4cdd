"""The clinic's content library: complete, honest, illustrated, and carried by every format."""

from __future__ import annotations

import dataclasses
import re
import subprocess
import xml.etree.ElementTree as ET
import zipfile

import pytest
from click.testing import CliRunner

from pressroom.cli import cli
from pressroom.config import load_config
from pressroom.content import load_publication
from pressroom.render.email import EmailRenderer
from pressroom.theme import load_theme

from projects import ROOT


@pytest.fixture(scope="module")
def pub():
    return load_publication(load_config(ROOT))


def test_check_passes_on_the_real_content(monkeypatch):
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(cli, ["check"])
    assert result.exit_code == 0, result.output


def test_library_is_complete(pub):
    assert len(pub.exercises) >= 10
    areas = {ex.area for ex in pub.exercises}
    assert {"Cheeks", "Jawline", "Brows and forehead", "Eyes", "Mouth and lips", "Neck"} <= areas
    slugs = {ex.slug for ex in pub.exercises}
    assert {"warm-up-massage", "symmetry-self-check"} <= slugs
    assert (
        pub.exercises[0].slug == "warm-up-massage"
        and pub.exercises[-1].slug == "symmetry-self-check"
    )
    assert len(pub.newsletters) >= 3
    assert {r.kind for r in pub.routines} == {"daily", "programme"}


def test_every_guide_is_followable_and_careful(pub):
    for ex in pub.exercises:
        assert len(ex.steps) >= 4, ex.slug
        assert ex.muscles and ex.cautions and ex.summary, ex.slug
        assert ex.illustration.alt and len(ex.illustration.alt) > 30, ex.slug
        text = " ".join((ex.body.markdown, *ex.steps, *ex.tips)).lower()
        for promise in ("guarantee", "erase", "reverse ageing", "anti-aging", "permanent"):
            for m in re.finditer(promise, text):
                before = text[max(0, m.start() - 14):m.start()]
                assert re.search(r"\b(not|n't|never|no)\b", before), (
                    f"{ex.slug}: '{text[m.start() - 30 : m.end() + 30]}' promises more than the "
                    "evidence supports"
                )
    joined = " ".join(c.lower() for ex in pub.exercises for c in ex.cautions)
    for topic in ("filler", "palsy", "tmj", "skin"):
        assert topic in joined, f"no exercise cautions about {topic}"


def test_routines_follow_the_study(pub):
    assert pub.daily.total_minutes == 10
    first, *rest = pub.programme.phases
    assert (first.start_week, first.end_week, first.frequency, first.minutes) == (1, 8, "Daily", 30)
    assert pub.programme.total_weeks == 20
    assert rest[-1].frequency.lower() == "every other day"


def test_every_svg_is_titled_and_self_contained():
    for svg in sorted((ROOT / "content/images").rglob("*.svg")):
        root = ET.parse(svg).getroot()
        ns = "{http://www.w3.org/2000/svg}"
        assert root.find(f"{ns}title") is not None and root.find(f"{ns}title").text.strip(), svg
        text = svg.read_text()
        assert "<script" not in text and 'href="http' not in text and 'xlink:href="http' not in text


def test_limitations_in_every_format_and_disclaimer_once(pub, demo_out):
    needle = re.sub(r"\s+", " ", pub.config.limitations.split(".")[0]).strip()[:60]
    book = zipfile.ZipFile(demo_out / "facial-yoga.epub")
    epub_text = " ".join(book.read(n).decode() for n in book.namelist() if n.endswith(".xhtml"))
    assert needle in re.sub(r"\s+", " ", epub_text)
    pdf_text = subprocess.run(["pdftotext", str(demo_out / "facial-yoga-handout.pdf"), "-"],
                              capture_output=True, text=True, check=True).stdout
    assert needle[:40] in re.sub(r"\s+", " ", pdf_text)
    assert pdf_text.count("Medical disclaimer") + pdf_text.count("MEDICAL DISCLAIMER") == 1
    for issue in pub.newsletters:
        txt = (demo_out / "newsletters" / f"{issue.slug}.txt").read_text()
        html = (demo_out / "newsletters" / f"{issue.slug}.html").read_text()
        assert needle in re.sub(r"\s+", " ", txt)
        assert needle[:40] in re.sub(r"\s+", " ", html)
        assert html.count('class="disclaimer"') == 1 and txt.count("Medical disclaimer:") == 1


def test_every_exercise_appears_in_the_pdf(pub, demo_out):
    text = subprocess.run(["pdftotext", str(demo_out / "facial-yoga-handout.pdf"), "-"],
                          capture_output=True, text=True, check=True).stdout
    for ex in pub.exercises:
        assert ex.title in text, ex.slug


def test_every_exercise_can_be_featured_in_a_newsletter(pub):
    renderer = EmailRenderer(pub, load_theme(pub.config))
    base = pub.newsletters[0]
    for ex in pub.exercises:
        issue = dataclasses.replace(base, featured=(ex,))
        html = renderer.html(issue)
        renderer.check_size(issue, html)
        assert ex.title in html and ex.illustration.alt in html
        assert ex.steps[0][:40] in renderer.text(issue).replace("\n", " ").replace("   ", " ")
