"""axe-core's WCAG 2.2 AA rules (tags wcag2a, wcag2aa, wcag21a, wcag21aa, wcag22aa), every
impact, on every page of the demo's site (landing, archive, sign-up page, 404, every issue page:
the newsletters' web versions) and on the subscription service's pages (sign-up, check your
inbox, form errors, confirm, subscribed, unsubscribe, unsubscribed, a bad link, not found),
in light and dark colour schemes at 320 and 1280 px: no violation.

One context and page per viewport and scheme, in the session's one Chromium; the demo site is
served by the real service (Flask app on a WSGI server), offline.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sitetest import SECRET, site_project, subscriber, with_mail

from pressroom import outputs
from pressroom.browser import INSTALL_HINT, find_chromium
from pressroom.mail.subscribers import add_subscriber
from pressroom.mail.tokens import CONFIRM, UNSUBSCRIBE, make_token
from pressroom.web import create_app
from pressroom.web.screenshots import folder_fetch, route_offline

ROOT = Path(__file__).resolve().parents[1]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"]
FRAMES = [(320, "light"), (320, "dark"), (1280, "light"), (1280, "dark")]
# Set PRESSROOM_SCREENSHOTS=/some/folder to keep a screenshot of every page checked.
SHOTS = os.environ.get("PRESSROOM_SCREENSHOTS")

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(find_chromium() is None, reason=f"needs Chromium: {INSTALL_HINT}"),
              pytest.mark.skipif(not AXE.is_file(),
                                 reason="needs axe-core: run `npm ci` in the repository")]

RUN_AXE = """tags => axe.run(document, {runOnly: {type: 'tag', values: tags},
                                  resultTypes: ['violations']})"""


@pytest.fixture(scope="module")
def service(demo_out, tmp_path_factory, smtp, live):
    """The demo's built site behind the subscription service, with a fresh subscriber store."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRESSROOM_SECRET_KEY", SECRET)
        folder = tmp_path_factory.mktemp("axe")
        config = with_mail(site_project(demo_out, folder), folder / "subscribers.sqlite3",
                           smtp_port=smtp.port)
        live.app = create_app(config, base_url=live.url)
        yield config


def site_paths(site: Path) -> list[str]:
    """Every HTML page of the built site as the URL path the service answers it on."""
    paths = []
    for page in sorted(site.rglob("*.html")):
        rel = page.relative_to(site).as_posix()
        paths.append("/" + (rel[:-len("index.html")] if rel.endswith("index.html") else rel))
    return paths


def violations(page, where: str) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate(RUN_AXE, TAGS)
    if SHOTS:
        name = where.strip("/").replace("/", "_").replace("?", "_") or "index"
        page.screenshot(path=str(Path(SHOTS) / f"{name}.png"), full_page=True)
    return [f"{where}: {v['id']} ({v['impact']}): {v['help']} at "
            f"{[n['target'] for n in v['nodes']][:3]}" for v in result["violations"]]


def check(page, url: str, where: str) -> list[str]:
    page.goto(url)  # waits for the load event: stylesheets, fonts and images are in
    return violations(page, where)


def service_pages(page, base: str, config, tag: str) -> list[str]:
    """The subscription service's pages, by link and after each form, checked in turn."""
    found = []
    address = f"axe-{tag.replace(' ', '-')}@example.com"
    kept = add_subscriber(config, f"kept-{tag.replace(' ', '-')}@example.com")
    leave = make_token(kept.id, UNSUBSCRIBE)
    for path in ("/subscribe", "/missing", "/confirm?t=forged", f"/unsubscribe?t={leave}"):
        found += check(page, base + path, f"{tag} {path.split('?t=')[0]}")
    page.click("form.action-form button[type=submit]")
    found += violations(page, f"{tag} unsubscribed")
    page.goto(base + "/subscribe")
    page.fill("#signup-email", "ann@example")  # the browser accepts it; the service does not
    page.check("#signup-consent")
    page.click("form.signup-form button[type=submit]")
    found += violations(page, f"{tag} form errors")
    page.fill("#signup-email", address)
    page.click("form.signup-form button[type=submit]")
    found += violations(page, f"{tag} check your inbox")
    join = make_token(subscriber(config, address).id, CONFIRM)
    found += check(page, f"{base}/confirm?t={join}", f"{tag} /confirm")
    page.click("form.action-form button[type=submit]")
    found += violations(page, f"{tag} subscribed")
    assert subscriber(config, address).status == "subscribed"
    return found


@pytest.mark.parametrize("width, scheme", FRAMES)
def test_no_wcag_violations_on_any_page(browser, live, service, width, scheme):
    config, tag = service, f"{scheme} {width}px"
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme,
                                  bypass_csp=True)  # axe is injected as a script
    route_offline(context, outputs.site_url(config), folder_fetch(config.out / "site"))
    page = context.new_page()
    paths = site_paths(config.out / "site")
    issues = [p for p in paths if p.startswith("/newsletters/") and p != "/newsletters/"]
    assert len(issues) == len(list((config.out / "newsletters").glob("*.html"))) >= 3
    found = [v for path in paths for v in check(page, live.url + path, f"{tag} {path}")]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PRESSROOM_SECRET_KEY", SECRET)
        found += service_pages(page, live.url, config, tag)
    context.close()
    assert found == []
