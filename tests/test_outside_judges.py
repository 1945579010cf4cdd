"""Outside judges on the demo's outputs: DAISY Ace on the EPUB (0 violations) and html-validate
on every email and site page (no problems).

Emails are held to html-validate's recommended rules except what email clients require:
inline styles, presentational attributes (bgcolor, align...), Outlook's conditional comments,
and ``role="article"`` on the message wrapper (clients strip ``<article>``); see
tests/judges/htmlvalidate-email.json. Site pages get the recommended rules unchanged.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from projects import ROOT

BIN = ROOT / "node_modules" / ".bin"
JUDGES = Path(__file__).parent / "judges"


@pytest.fixture(scope="session")
def ace_report(demo_out, tmp_path_factory) -> dict:
    """DAISY Ace's report on the demo EPUB (one run per session, ~1 min on a busy machine)."""
    (epub,) = demo_out.glob("*.epub")
    report = tmp_path_factory.mktemp("ace")
    env = dict(
        os.environ, PUPPETEER_EXECUTABLE_PATH=shutil.which("chromium") or "/usr/bin/chromium"
    )
    done = subprocess.run(
        [str(BIN / "ace-puppeteer"), "--force", "--silent", "--outdir", str(report), str(epub)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((report / "report.json").read_text(encoding="utf-8"))


def test_ace_finds_no_violations_in_the_demo_epub(ace_report):
    violations = [
        (
            doc["earl:testSubject"]["url"],
            check["earl:test"]["dct:title"],
            check["earl:test"]["earl:impact"],
        )
        for doc in ace_report["assertions"]
        for check in doc.get("assertions", [])
        if check["earl:result"]["earl:outcome"] == "fail"
    ]
    assert violations == []
    assert ace_report["earl:result"]["earl:outcome"] == "pass"


def test_ace_reads_the_conformance_metadata(ace_report):
    metadata = ace_report["earl:testSubject"]["metadata"]
    assert metadata["dcterms:conformsTo"] == "EPUB Accessibility 1.1 - WCAG 2.2 Level AA"
    assert metadata["a11y:certifiedBy"] == "Juvenology"
    assert metadata["pageBreakSource"].endswith(", printable handout, A4")
    present = ace_report["a11y-metadata"]["present"]
    assert {"schema:accessMode", "schema:accessibilityFeature", "schema:accessibilityHazard",
            "schema:accessibilitySummary", "schema:accessModeSufficient", "a11y:certifiedBy",
            "dcterms:conformsTo"} <= set(present)
    assert ace_report["a11y-metadata"]["empty"] == []


def _html_validate(config: str, pages: list[Path]) -> list[str]:
    done = subprocess.run(
        [
            str(BIN / "html-validate"),
            "--config",
            str(JUDGES / config),
            "--formatter",
            "json",
            *map(str, pages),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    results = json.loads(done.stdout or "[]")
    return [
        f"{r['filePath']}:{m['line']}: {m['ruleId']}: {m['message']}"
        for r in results
        for m in r["messages"]
    ]


def test_html_validate_passes_every_email(demo_out):
    emails = sorted((demo_out / "newsletters").glob("*.html"))
    web_copies = sorted((demo_out / "site" / "newsletters").glob("[0-9]*.html"))
    assert emails and len(web_copies) == len(emails)
    assert _html_validate("htmlvalidate-email.json", emails + web_copies) == []


def test_html_validate_passes_every_site_page(demo_out):
    emails = set((demo_out / "site" / "newsletters").glob("[0-9]*.html"))
    pages = sorted(p for p in (demo_out / "site").rglob("*.html") if p not in emails)
    assert len(pages) >= 4
    assert _html_validate("htmlvalidate-site.json", pages) == []


def test_a_long_word_stays_inside_a_narrow_epub_page(demo_out, tmp_path, browser):
    """The ebook's own stylesheet in Chromium at 540 px: an unbroken 300-letter word (a long
    URL, say) wraps instead of widening the page."""
    import zipfile

    (epub,) = demo_out.glob("*.epub")
    zipfile.ZipFile(epub).extractall(tmp_path)
    chapter = min((tmp_path / "EPUB").glob("article-*.xhtml"))
    text = chapter.read_text(encoding="utf-8")
    body = text.index(">", text.index("<body")) + 1
    chapter.write_text(text[:body] + f"<p>{'x' * 300}</p>" + text[body:], encoding="utf-8")
    page = browser.new_page(viewport={"width": 540, "height": 800})
    page.goto(chapter.as_uri())
    width = page.evaluate("document.documentElement.scrollWidth")
    page.close()
    assert width <= 540
