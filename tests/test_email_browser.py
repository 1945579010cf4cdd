"""Newsletters in headless Chromium (Debian's, through Playwright; offline): no horizontal
scrolling, columns that stack on phones, readable dark mode, tap targets, the preview command."""

from __future__ import annotations

import shutil
import socket
import struct
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from click.testing import CliRunner
from colours import contrast, css_rgb

from pressroom import mergefields
from pressroom.browser import INSTALL_HINT, find_chromium
from pressroom.config import load_config
from pressroom.render.email import LONGEST_NAME
from pressroom.theme import load_theme
from pressroom.web.cli import preview
from pressroom.web.screenshots import folder_fetch, open_email

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_chromium() is None, reason=f"needs Chromium: {INSTALL_HINT}")]

ROOT = Path(__file__).resolve().parents[1]
ISSUES = sorted(p.stem for p in (ROOT / "content/newsletters").glob("*.md"))
SITE = "https://www.juvenology.co.uk"
WIDTHS = (320, 375, 600, 800)

# Every visible element with text of its own: colour, effective background, size.
TEXT_BOXES = """() => {
  const rgba = c => { const m = c.match(/rgba?\\(([^)]+)\\)/);
    if (!m) return null; const p = m[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = Array.from(el.childNodes).some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) continue;
    const cs = getComputedStyle(el);
    if (cs.visibility === 'hidden') continue;
    let bg = null;
    for (let n = el; n && n.nodeType === 1 && !bg; n = n.parentElement) {
      const b = rgba(getComputedStyle(n).backgroundColor);
      if (b && b[3] > 0) bg = b;
    }
    out.push({tag: el.tagName, text: el.textContent.trim().slice(0, 50), color: rgba(cs.color),
              bg: bg, size: parseFloat(cs.fontSize)});
  }
  return out;
}"""

CARD_BOXES = """() => Array.from(document.querySelectorAll('.card-media')).map(m => {
  const s = m.parentElement.querySelector('.card-side-col');
  const a = m.getBoundingClientRect(), b = s.getBoundingClientRect();
  return {media: [a.left, a.top, a.right, a.bottom], side: [b.left, b.top, b.right, b.bottom]};
})"""


@pytest.fixture(scope="module")
def pages(browser, demo_out):
    """One page per issue, personalised with the longest name, images served offline."""
    fetch = folder_fetch(demo_out / "site")
    opened = {}
    for slug in ISSUES:
        html = mergefields.personalise_html(
            (demo_out / f"newsletters/{slug}.html").read_text(encoding="utf-8"),
            first_name=LONGEST_NAME, fallback="there", unsubscribe_url=f"{SITE}/unsubscribe?t=abc",
            view_url=f"{SITE}/newsletters/{slug}.html")
        opened[slug] = open_email(browser, html, width=600, scheme="light", site=SITE, fetch=fetch)
    yield opened
    for page in opened.values():
        page.context.close()


def show(page, width: int, scheme: str = "light"):
    page.set_viewport_size({"width": width, "height": 900})
    page.emulate_media(color_scheme=scheme)
    return page


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("slug", ISSUES)
def test_no_horizontal_scrolling(pages, slug, width):
    page = show(pages[slug], width)
    scroll, client = page.evaluate(
        "[document.documentElement.scrollWidth, document.documentElement.clientWidth]")
    assert scroll <= client, f"{slug} scrolls sideways at {width}px ({scroll} > {client})"


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("slug", ISSUES)
def test_featured_card_stacks_below_480px_and_sits_side_by_side_above(pages, slug, width):
    cards = show(pages[slug], width).evaluate(CARD_BOXES)
    assert cards, "no featured exercise card"
    for card in cards:
        (ml, mt, mr, mb), (sl, st, sr, _sb) = card["media"], card["side"]
        if width < 480:  # one column: same left edge, the text below the picture
            assert ml == sl and st >= mb and mr == sr, card
        else:  # two columns: same top, the text to the right of the picture
            assert mt == st and sl >= mr, card


@pytest.mark.parametrize("scheme", ["dark", "light"])
@pytest.mark.parametrize("width", [375, 800])
@pytest.mark.parametrize("slug", ISSUES)
def test_text_contrast_and_size(pages, slug, width, scheme):
    boxes = show(pages[slug], width, scheme).evaluate(TEXT_BOXES)
    assert len(boxes) > 30
    for box in boxes:
        assert box["bg"] is not None, box
        ratio = contrast(box["color"], box["bg"])
        assert ratio >= 4.5, f"{scheme} {width}px: {ratio:.2f}:1 for {box}"
        assert box["size"] >= 14, f"text under 14px: {box}"


@pytest.mark.parametrize("slug", ISSUES)
def test_dark_mode_darkens_the_panels_and_keeps_the_logo_on_the_brand_header(pages, slug):
    colours = load_theme(load_config(ROOT)).tokens["colours"]
    page = show(pages[slug], 375, "dark")
    body_bg, panel_bg = page.evaluate("""() => [
        getComputedStyle(document.querySelector('.dm-body')).backgroundColor,
        getComputedStyle(document.querySelector('.part-body')).backgroundColor]""")
    assert (body_bg, panel_bg) == (css_rgb(colours["dark_bg"]), css_rgb(colours["dark_panel"]))
    logo = page.evaluate("""() => {
        const i = document.querySelector('.part-header img');
        const r = i.getBoundingClientRect();
        return [i.naturalWidth, r.width, r.height,
                getComputedStyle(i.closest('.part-header')).backgroundColor]; }""")
    natural, width, height, header_bg = logo
    assert natural == 2 * width and width == height  # a square logo, sharp on 2x screens
    assert header_bg == css_rgb(colours["brand"])


@pytest.mark.parametrize("slug", ISSUES)
def test_button_is_a_44px_tap_target(pages, demo_out, slug):
    for width in (320, 800):
        page = show(pages[slug], width)
        # MJML's button: a link filling a cell with the button colour.
        box = page.evaluate("""() => { const r = document.querySelector('td[bgcolor] > a')
            .getBoundingClientRect(); return [r.width, r.height]; }""")
        assert box[0] >= 44 and box[1] >= 44, f"{width}px: button {box}"
    # The footer's unsubscribe link is a comfortable target too.
    height = page.evaluate("""() => Array.from(document.querySelectorAll('a'))
        .find(a => a.textContent === 'Unsubscribe').getBoundingClientRect().height""")
    assert height >= 44


@pytest.mark.parametrize("slug", ISSUES)
def test_every_image_loads(pages, slug):
    images = show(pages[slug], 375).evaluate(
        "() => Array.from(document.images).map(i => [i.src, i.complete, i.naturalWidth])")
    assert len(images) >= 2
    for src, complete, natural in images:
        assert complete and natural > 0, src


def test_preview_screenshots_writes_four_pngs_per_issue_without_a_server(tmp_path, monkeypatch):
    project = tmp_path / "proj"
    shutil.copytree(ROOT / "tests/fixtures/minimal/content", project / "content")
    out = tmp_path / "out"

    def no_server(*args, **kwargs):
        raise AssertionError("preview tried to listen on a socket")

    monkeypatch.setattr(socket.socket, "listen", no_server)
    # Its own thread: Playwright's sync API refuses to start inside this module's running one.
    with ThreadPoolExecutor(1) as pool:
        result = pool.submit(CliRunner().invoke, preview, [
            "--project", str(project), "--out", str(out), "--screenshots"]).result()
    assert result.exit_code == 0, result.output
    shots = sorted(p.name for p in (out / "previews").iterdir())
    assert shots == ["01-hello-375-dark.png", "01-hello-375-light.png",
                     "01-hello-800-dark.png", "01-hello-800-light.png"]
    for name in shots:
        data = (out / "previews" / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        width, height = struct.unpack(">II", data[16:24])
        assert width == int(name.split("-")[2]) and height > 900
    assert result.output.startswith(f"Wrote 4 screenshot(s) into {out / 'previews'}:\n")
