"""The site, subscription service and preview in a real browser (Debian's Chromium through
Playwright) against the Flask app on a real WSGI server and a real SMTP server, offline:
sign-up and confirmation without JavaScript, the unsubscribe page's button,
no horizontal scroll and no serious axe-core violations at 375 and 1280 px, the downloads, and
the live preview reloading itself."""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sitetest import (SECRET, preview_project, LiveServer, events, site_project, subscriber,
                      text_part, with_mail)

from pressroom.mail.subscribers import add_subscriber
from pressroom.browser import INSTALL_HINT, find_chromium
from pressroom.web import create_app
from pressroom.web.preview import Preview, create_preview_app

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
SLUG = "test-booklet"
# Set PRESSROOM_SCREENSHOTS=/some/folder to keep the screenshots the tests take.
SHOTS = os.environ.get("PRESSROOM_SCREENSHOTS")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_chromium() is None, reason=f"needs Chromium: {INSTALL_HINT}")]

NO_HORIZONTAL_SCROLL = ("() => [document.documentElement.scrollWidth, "
                        "document.documentElement.clientWidth]")


@pytest.fixture(autouse=True)
def secret_key(monkeypatch):
    monkeypatch.setenv("PRESSROOM_SECRET_KEY", SECRET)


@pytest.fixture(scope="module")
def site_config(minimal_out, tmp_path_factory):
    return site_project(minimal_out, tmp_path_factory.mktemp("browser"))


@pytest.fixture
def config(site_config, tmp_path, smtp, live):
    """A fresh subscriber store, mail to the SMTP server, the app on the live server."""
    config = with_mail(site_config, tmp_path / "subscribers.sqlite3", smtp_port=smtp.port)
    live.app = create_app(config, base_url=live.url)
    return config


def offline(context, base: str) -> list[str]:
    """Let only the live server (and data:) through; return the list of blocked URLs."""
    blocked: list[str] = []

    def handle(route) -> None:
        url = route.request.url
        if url.startswith(base) or url.startswith(("data:", "about:")):
            route.continue_()
        else:
            blocked.append(url)
            route.abort("blockedbyclient")

    context.route("**/*", handle)
    return blocked


def new_page(browser, live, width=1280, scheme="light", javascript=True, axe=False):
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme,
                                  java_script_enabled=javascript, bypass_csp=axe)
    blocked = offline(context, live.url)
    page = context.new_page()
    page.console = []
    page.on("console", lambda m: page.console.append(m.text))
    page.blocked = blocked
    return page


def serious_violations(page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [f"{v['id']} ({v['impact']}): {v['help']} at "
            f"{[n['target'] for n in v['nodes']][:3]}"
            for v in result["violations"] if v["impact"] in ("serious", "critical")]


def shoot(page, name: str) -> None:
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        page.evaluate("() => document.querySelectorAll('img[loading=lazy]')"
                      ".forEach(i => i.loading = 'eager')")
        page.wait_for_load_state("networkidle")
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)


# -- sign-up and confirmation ---------------------------------------------------------------

def test_signup_and_confirm_in_a_browser_without_javascript(browser, live, smtp, config):
    page = new_page(browser, live, width=375, javascript=False)
    page.goto(live.url + "/")
    page.fill("#signup-first-name", "Ann")
    page.fill("#signup-email", "ann@example.com")
    page.check("#signup-consent")
    page.click("form.signup-form button[type=submit]")
    assert page.locator("h1").inner_text() == "Please check your inbox"
    assert urlsplit(page.url).path == "/subscribe"
    assert subscriber(config, "ann@example.com").status == "pending"

    [message] = smtp.inbox.wait_for("ann@example.com")
    assert message["Subject"] == "Please confirm your subscription to Test Clinic’s newsletter"
    link = re.search(r"http://127\.0\.0\.1:\d+/confirm\?t=[\w-]+", text_part(message)).group(0)
    page.goto(link)
    assert page.locator("h1").inner_text() == "Confirm your subscription"
    assert subscriber(config, "ann@example.com").status == "pending"  # a GET changes nothing
    page.click("form.action-form button[type=submit]")
    assert page.locator("h1").inner_text() == "You’re subscribed, Ann!"
    assert subscriber(config, "ann@example.com").status == "subscribed"
    assert [(k, s) for _at, k, s, _ in events(config, "ann@example.com")] == [
        ("added", "web:subscribe"), ("confirmed", "web:confirm")]
    assert page.context.cookies() == []
    assert not [m for m in page.console if "Content Security Policy" in m], page.console
    assert page.blocked == []  # nothing tried to leave the machine
    page.context.close()


def test_unsubscribe_page_button_in_a_browser(browser, live, config):
    from pressroom.mail.tokens import UNSUBSCRIBE, make_token

    add_subscriber(config, "cat@example.com")
    token = make_token(subscriber(config, "cat@example.com").id, UNSUBSCRIBE)
    page = new_page(browser, live, width=375, javascript=False)
    page.goto(f"{live.url}/unsubscribe?t={token}")
    assert page.locator("h1").inner_text() == "Unsubscribe from the newsletter?"
    assert subscriber(config, "cat@example.com").status == "subscribed"
    page.click("form.action-form button[type=submit]")
    assert page.locator("h1").inner_text() == "You’re unsubscribed"
    assert subscriber(config, "cat@example.com").status == "unsubscribed"
    assert events(config, "cat@example.com")[-1][1:3] == ("unsubscribed", "web:unsubscribe-page")
    page.context.close()


# -- layout and accessibility ---------------------------------------------------------------

@pytest.mark.skipif(not AXE.is_file(), reason="needs axe-core: run `npm ci` in the repository")
@pytest.mark.parametrize("path, width, scheme", [
    ("/", 320, "light"), ("/", 375, "light"), ("/", 1280, "light"), ("/", 375, "dark"),
    ("/", 1280, "dark"),
    ("/newsletters/", 375, "light"), ("/newsletter/", 1280, "dark"), ("/missing", 375, "light"),
    ("/confirm?t=forged", 375, "light"),
])
def test_pages_fit_the_screen_and_pass_axe(browser, live, config, path, width, scheme):
    page = new_page(browser, live, width=width, scheme=scheme, axe=True)
    page.goto(live.url + path)
    page.wait_for_load_state("networkidle")
    scroll_width, client_width = page.evaluate(NO_HORIZONTAL_SCROLL)
    assert scroll_width <= client_width == width
    assert serious_violations(page) == []
    assert page.blocked == []
    if path == "/":
        shoot(page, f"landing-{width}-{scheme}")
    page.context.close()


@pytest.mark.skipif(not AXE.is_file(), reason="needs axe-core: run `npm ci` in the repository")
def test_form_errors_page_passes_axe(browser, live, config):
    page = new_page(browser, live, width=375, axe=True)
    page.goto(live.url + "/")
    page.fill("#signup-email", "ann@example")  # the browser accepts it; the service does not
    page.check("#signup-consent")
    page.click("form.signup-form button[type=submit]")
    assert page.locator("h1").inner_text() == "Join the newsletter"
    assert page.locator(".form-errors li").all_inner_texts() == [
        "Enter an email address in the right format, like name@example.com."]
    assert page.locator("#signup-email").get_attribute("aria-invalid") == "true"
    assert serious_violations(page) == []
    page.context.close()


def test_download_links_serve_the_built_files(browser, live, config):
    page = new_page(browser, live)
    page.goto(live.url + "/")
    hrefs = page.eval_on_selector_all("a[download]", "els => els.map(e => e.href)")
    assert [urlsplit(h).path for h in hrefs] == [
        f"/downloads/{SLUG}.epub", f"/downloads/{SLUG}-handout.pdf",
        f"/downloads/{SLUG}-quick-reference.pdf"]
    kinds = {".epub": "application/epub+zip", ".pdf": "application/pdf"}
    for href in hrefs:
        response = page.request.get(href)
        name = urlsplit(href).path.rsplit("/", 1)[1]
        assert response.status == 200
        assert response.headers["content-type"] == kinds[Path(name).suffix]
        assert response.body() == (config.out / name).read_bytes()
    with page.expect_download() as download:
        page.click(f"a[href='downloads/{SLUG}.epub']")
    assert download.value.suggested_filename == f"{SLUG}.epub"
    page.context.close()


# -- the live preview -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def preview(site_config, tmp_path_factory):
    state = Preview(preview_project(site_config, tmp_path_factory.mktemp("preview")))
    state.rebuild()
    assert state.error is None
    server = LiveServer()
    server.app = create_preview_app(state)
    state.url = server.url
    yield state
    server.close()


@pytest.mark.skipif(not AXE.is_file(), reason="needs axe-core: run `npm ci` in the repository")
@pytest.mark.parametrize("width", [375, 1280])
def test_preview_page_fits_and_passes_axe(browser, preview, width):
    context = browser.new_context(viewport={"width": width, "height": 900}, bypass_csp=True)
    blocked = offline(context, preview.url)
    page = context.new_page()
    page.goto(preview.url + "/")
    page.wait_for_load_state("networkidle")
    scroll_width, client_width = page.evaluate(NO_HORIZONTAL_SCROLL)
    assert scroll_width <= client_width == width
    assert page.locator("iframe[src^='/email/']").count() == 4
    assert page.locator("img[src^='/pdf/']").count() >= 2
    assert serious_violations(page) == []
    assert blocked == []
    shoot(page, f"preview-{width}")
    context.close()


def test_preview_reloads_itself_after_a_content_change(browser, preview):
    stop, ready = threading.Event(), threading.Event()
    watcher = threading.Thread(target=preview.watch, args=(stop, ready), daemon=True)
    watcher.start()
    issue = preview.config.content_dir / "newsletters" / "01-hello.md"
    original = issue.read_text(encoding="utf-8")
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    offline(context, preview.url)
    page = context.new_page()
    try:
        page.goto(preview.url + "/")
        before = page.get_attribute("html", "data-version")
        assert ready.wait(30), "the watch was never put in place"
        issue.write_text(original.replace("subject: Hello from the test clinic",
                                          "subject: Freshly edited subject"), encoding="utf-8")
        page.wait_for_function(f"() => document.documentElement.dataset.version !== '{before}'",
                               timeout=30000)
        assert "Freshly edited subject" in page.locator("#newsletters h3").first.inner_text()
    finally:
        stop.set()
        watcher.join(timeout=10)
        issue.write_text(original, encoding="utf-8")
        context.close()
