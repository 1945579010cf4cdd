"""Editorial accuracy: the study's figures in every format, doses from data, contradictions and
restricted terms reported by `pressroom check` with file:line, and the one typographer."""

from __future__ import annotations

import html
import re
import subprocess
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from pressroom.cli import cli
from pressroom.config import load_config
from pressroom.content import load_publication
from pressroom.editorial import per_week
from pressroom.typography import smarten
from projects import ROOT, copy_project


def run(project: Path, *args: str):
    return CliRunner().invoke(cli, [*args, "--project", str(project)], catch_exceptions=False)


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, f"text {old!r} not found in {path}"
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def line_of(path: Path, needle: str, after: str = "") -> int:
    """1-based line of the first line containing ``needle`` (after the line holding ``after``)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if after in line) if after else 0
    return next(i for i, line in enumerate(lines) if i >= start and needle in line) + 1


def plain(markup: str) -> str:
    """Visible text of HTML/XHTML, whitespace collapsed (so line wraps do not matter)."""
    markup = re.sub(r"<(style|head)\b.*?</\1>", " ", markup, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", markup)).split())


def pdf_text(path: Path) -> str:
    out = subprocess.run(["pdftotext", str(path), "-"], capture_output=True, text=True, check=True)
    return " ".join(out.stdout.replace("-\n", "").split())


@pytest.fixture
def demo(tmp_path, monkeypatch) -> Path:
    """A writable copy of the demo, with the working directory inside it (messages say content/)."""
    project = copy_project("demo", tmp_path / "demo")
    monkeypatch.chdir(project)
    return project


def test_study_figures_are_the_same_in_every_format(demo_out):
    study = load_config(ROOT).study
    recruited, completed = study["recruited"], study["completed"]
    epub = zipfile.ZipFile(next(demo_out.glob("*.epub")))
    texts = {
        "handout": pdf_text(demo_out / "facial-yoga-handout.pdf"),
        "quick reference": pdf_text(demo_out / "facial-yoga-quick-reference.pdf"),
        "epub": plain(" ".join(epub.read(n).decode() for n in sorted(epub.namelist())
                               if n.endswith(".xhtml"))),
        "site": plain(" ".join(p.read_text(encoding="utf-8")
                               for p in sorted((demo_out / "site").rglob("*.html")))),
    }
    for issue in sorted((demo_out / "newsletters").glob("*.html")):
        texts[issue.name] = plain(issue.read_text(encoding="utf-8"))
        txt = issue.with_suffix(".txt")
        texts[txt.name] = " ".join(txt.read_text(encoding="utf-8").split())
    described = {}
    for name, text in texts.items():
        assert "11 completed" not in text, name
        assert "000000" not in text, name
        windows = [text[max(0, m.start() - 120):m.end() + 60]
                   for m in re.finditer("recruited", text)]
        described[name] = len(windows)
        for window in windows:
            assert re.search(rf"\b{recruited}\b", window) and f"{completed} completed" in window, \
                (name, window)
    # Where the study is described: the article's footnote and the programme (handout, EPUB),
    # newsletter 1 (HTML and text) and its web copy on the site.
    assert described == {"handout": 2, "quick reference": 0, "epub": 2, "site": 1,
                         "01-welcome.html": 1, "01-welcome.txt": 1,
                         "02-exercise-of-the-week.html": 0, "02-exercise-of-the-week.txt": 0,
                         "03-symmetry-self-check.html": 0, "03-symmetry-self-check.txt": 0}
    terms = load_config(ROOT).restricted_terms
    promotional = [texts[n] for n in texts if n.startswith("0")]
    promotional.append(plain((demo_out / "site" / "index.html").read_text(encoding="utf-8")))
    for text in promotional:
        assert not [t for t in terms if t.lower() in text.lower()]


def test_routine_doses_are_printed_from_the_data(demo_out):
    text = pdf_text(demo_out / "facial-yoga-quick-reference.pdf")
    # The routine's explicit 'sets: 1' overrides every two-set card (Cheek Lift, Brow Lift...);
    # 'reps: 5' on Eye Circle Hold (card: 10) gives the same dose as Forehead Smoother's card.
    assert "2 sets" not in text
    assert text.count("Hold 5 s · 10 reps · 1 set") == 3
    assert text.count("Hold 5 s · 5 reps · 1 set") == 2
    assert "Scan to sign up for the newsletter" in text and "full guide" not in text
    cover = subprocess.run(["pdftotext", "-l", "1", str(demo_out / "facial-yoga-handout.pdf"),
                            "-"], capture_output=True, text=True, check=True).stdout.split()
    assert "11" in cover and "12" not in cover  # 12 guides; the self-check is not an exercise


def test_check_strict_passes_on_the_demo(demo):
    result = run(demo, "check", "--strict")
    assert result.exit_code == 0, result.output
    assert result.output == "OK: 1 article(s), 12 exercise(s), 2 routine(s), 3 newsletter(s).\n"


def test_routine_more_often_than_the_card_fails_strict_naming_both_places(demo):
    card = demo / "content" / "exercises" / "jawline-sculpt.md"
    edit(card, "frequency: Daily", "frequency: 5 days a week")
    result = run(demo, "check", "--strict")
    assert result.exit_code == 1
    daily = line_of(demo / "content/routines/daily.md", "exercise: jawline-sculpt")
    phase = line_of(demo / "content/routines/programme.md", "jawline-sculpt")
    card_line = line_of(card, "frequency:")
    assert result.output == (
        "Error: 2 warning(s) and --strict is on:\n"
        f"content/routines/daily.md:{daily}: schedules 'Jawline Sculpt' daily, more "
        "often than its card allows (content/exercises/jawline-sculpt.md:"
        f"{card_line}: '5 days a week'); change one of them or set 'frequency:' on the routine "
        "item\n"
        f"content/routines/programme.md:{phase}: phase 'Foundation' schedules 'Jawline "
        "Sculpt' daily, more often than its card allows (content/exercises/jawline-sculpt.md:"
        f"{card_line}: '5 days a week'); change one of them or leave it out of this phase\n")
    assert run(demo, "check").exit_code == 0  # without --strict they are warnings only


def test_a_routine_frequency_override_within_the_card_is_accepted(demo):
    edit(demo / "content/exercises/jawline-sculpt.md", "frequency: Daily",
         "frequency: 5 days a week")
    edit(demo / "content/routines/daily.md", "  - exercise: jawline-sculpt\n",
         "  - exercise: jawline-sculpt\n    frequency: 5 days a week\n")
    edit(demo / "content/routines/programme.md", "cheek-puff-transfer, jawline-sculpt, ",
         "cheek-puff-transfer, ")
    assert run(demo, "check", "--strict").exit_code == 0


def test_note_numbers_and_short_minutes_are_reported(demo):
    daily = demo / "content/routines/daily.md"
    edit(daily, "note: Closed-lip lifts, eyes and forehead relaxed.",
         "note: Two sets of 10 lifts, holding each for 3 seconds.")
    edit(daily, "  - exercise: brow-lift\n    minutes: 1\n    sets: 1",
         "  - exercise: brow-lift\n    minutes: 0.5\n    sets: 1")
    result = run(demo, "check")
    note = line_of(daily, "note: Two sets")
    sets = line_of(daily, "sets: 1", after="exercise: cheek-lift")
    hold = line_of(demo / "content/exercises/cheek-lift.md", "hold_seconds:")
    minutes = line_of(daily, "minutes: 0.5")
    brow_hold = line_of(demo / "content/exercises/brow-lift.md", "hold_seconds:")
    assert result.output == (
        f"warning: content/routines/daily.md:{note}: the note says 2 (sets) but the dose is Hold "
        f"5 s · 10 reps · 1 set, 2 min (content/routines/daily.md:{sets}); take the number out "
        "of the note or set 'sets:' on the item\n"
        f"warning: content/routines/daily.md:{note}: the note says 3 (hold) but the dose is Hold "
        f"5 s · 10 reps · 1 set, 2 min (content/exercises/cheek-lift.md:{hold}); take the "
        "number out of the note or set 'hold_seconds:' on the item\n"
        f"warning: content/routines/daily.md:{minutes}: 0.5 min for 'Brow Lift' is less than "
        "its holds alone (5 s × 10 reps × 1 sets = 50 s, content/exercises/brow-lift.md:"
        f"{brow_hold}); give it more minutes or a smaller dose\n"
        "3 warning(s). OK: 1 article(s), 12 exercise(s), 2 routine(s), 3 newsletter(s).\n")


def test_restricted_terms_in_promotional_outputs_are_reported(demo):
    pub_yaml = demo / "content/publication.yaml"
    issue = demo / "content/newsletters/02-exercise-of-the-week.md"
    edit(issue, "Regular, controlled practice", "Unlike Xeomin or BOTOX, regular practice")
    edit(pub_yaml, "approach to aesthetic treatments", "approach to botulinum\n    toxin")
    result = run(demo, "check", "--strict")
    bio = line_of(pub_yaml, "approach to botulinum", after="short_bio:")
    body = line_of(issue, "Unlike Xeomin")
    assert result.output == (
        "Error: 3 warning(s) and --strict is on:\n"
        f"content/newsletters/02-exercise-of-the-week.md:{body}: restricted term "
        "'Botox' in a promotional output (newsletter 02-exercise-of-the-week); reword it there "
        "or remove it\n"
        f"content/newsletters/02-exercise-of-the-week.md:{body}: restricted term "
        "'Xeomin' in a promotional output (newsletter 02-exercise-of-the-week); reword it there "
        "or remove it\n"
        f"content/publication.yaml:{bio}: restricted term 'botulinum toxin' in a "
        "promotional output (the site's landing page); reword it there or remove it\n")


def test_the_ebook_bio_and_article_may_name_a_restricted_term(demo):
    # The ebook's article and full bio say "Botox"; the landing page shows the short bio.
    assert "Botox" in (demo / "content/articles/facial-yoga-symmetry.md").read_text()
    assert "approach to botox" in (demo / "content/publication.yaml").read_text()
    assert run(demo, "check", "--strict").exit_code == 0


def test_without_a_short_bio_the_landing_page_bio_is_checked(demo):
    pub_yaml = demo / "content/publication.yaml"
    text = pub_yaml.read_text(encoding="utf-8")
    start, end = text.index("  # The landing page is promotional"), text.index("publisher:")
    pub_yaml.write_text(text[:start] + text[end:], encoding="utf-8")
    result = run(demo, "check", "--strict")
    line = line_of(pub_yaml, "approach to botox")
    assert result.output.splitlines()[1] == (
        f"content/publication.yaml:{line}: restricted term 'Botox' in a promotional "
        "output (the site's landing page); reword it there or remove it")


def test_an_unknown_study_fact_names_file_and_line(demo):
    article = demo / "content/articles/facial-yoga-symmetry.md"
    edit(article, "{study.completed} completed it", "{study.finished} completed it")
    result = run(demo, "check")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: content/articles/facial-yoga-symmetry.md:{line_of(article, '{study.finished}')}: "
        "unknown fact '{study.finished}' (known: age_after, age_before, citation, completed, "
        "daily_weeks, participants, recruited, session_minutes, total_weeks, training, year)\n")


def test_yaml_prose_gets_the_typographer_and_urls_do_not(demo):
    pub = load_publication(load_config(demo))
    ex = pub.exercise("cheek-lift")
    assert "such as Bell’s palsy" in ex.cautions[1]
    assert ex.timing == "Hold 5\u00a0s · 10 reps · 2 sets"
    assert pub.exercise("symmetry-self-check").steps[1].count("arm’s length") == 1
    assert pub.newsletters[1].preheader.startswith("Hold for five seconds")
    assert pub.config.website == "https://www.juvenology.co.uk"
    assert pub.config.contact.email == "hello@juvenology.co.uk"
    assert pub.config.contact.phone is None
    assert pub.config.slug == "facial-yoga"


def test_markdown_gets_no_break_unit_spaces_but_code_does_not(project):
    article = project / "content" / "articles" / "intro.md"
    article.write_text(article.read_text(encoding="utf-8") + "\nHold 5 s, then `sleep 5 s`.\n",
                       encoding="utf-8")
    body = load_publication(load_config(project)).articles[0].body.html
    assert "Hold 5\u00a0s, then <code>sleep 5 s</code>" in body


@pytest.mark.parametrize("raw,smart", [
    ("Bell's palsy", "Bell’s palsy"),
    ('She said "hold it" -- then rest...', "She said “hold it” – then rest…"),
    ("'quoted' text, isn't it", "‘quoted’ text, isn’t it"),
    ("Weeks 1 - 8, 10 min a day, 5 s each", "Weeks 1 – 8, 10\u00a0min a day, 5\u00a0s each"),
    ("a---b", "a—b"),
    ("5 sets of 10 seconds", "5 sets of 10 seconds"),
])
def test_smarten(raw, smart):
    assert smarten(raw) == smart


@pytest.mark.parametrize("phrase,n", [("Daily", 7), ("Every other day", 3.5),
                                      ("5 days a week", 5), ("three times a week", 3),
                                      ("Once a month", 12 / 52), ("twice a day", 14),
                                      ("when you like", None)])
def test_per_week(phrase, n):
    assert per_week(phrase) == n
