"""Newsletter previews: screenshots of every issue in headless Chromium, offline, no server."""

from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Literal, Mapping
from urllib.parse import unquote, urlsplit

from pressroom import mergefields, outputs
from pressroom.browser import CHROMIUM_ARGS, require_chromium
from pressroom.errors import RenderError
from pressroom.mediatypes import media_type

if TYPE_CHECKING:  # Playwright is a dev/preview dependency, imported only when used.
    from playwright.sync_api import Browser, BrowserContext, Page

    from pressroom.config import Config

log = logging.getLogger(__name__)

WIDTHS = (375, 800)
Scheme = Literal["light", "dark"]
SCHEMES: tuple[Scheme, ...] = ("light", "dark")
SAMPLE_NAME = "Alex"  # the greeting the previews show
FRAMES = tuple((width, scheme) for width in WIDTHS for scheme in SCHEMES)
_LOOPBACK = {"localhost", "127.0.0.1", "::1"}

Fetch = Callable[[str], "bytes | None"]


def sample_html(config: "Config", html: str, slug: str) -> str:
    """A built issue's HTML as the previews show it: greeting the sample reader, its links
    pointing at the public unsubscribe page and web version."""
    return mergefields.personalise_html(
        html, first_name=SAMPLE_NAME, fallback=config.newsletter.fallback_name,
        unsubscribe_url=outputs.unsubscribe_url(config), view_url=outputs.issue_url(config, slug))


@contextmanager
def chromium(executable: Path | None = None) -> Iterator["Browser"]:
    """Start the system's headless Chromium (see :mod:`pressroom.browser`) through Playwright
    and close it afterwards."""
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError as exc:
        raise RenderError("screenshots need Playwright's Python package: pip install "
                          "'pressroom[preview]' (the system Chromium is used; no "
                          "`playwright install` needed)") from exc
    executable = executable or require_chromium()
    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=str(executable), args=list(CHROMIUM_ARGS))
        except Error as exc:
            first = str(exc.message).strip().splitlines()[0]
            raise RenderError(f"could not start Chromium at {executable}: {first}") from exc
        try:
            yield browser
        except Error as exc:
            first = str(exc.message).strip().splitlines()[0]
            raise RenderError(f"Chromium failed while taking screenshots: {first}") from exc
        finally:
            browser.close()


def folder_fetch(folder: Path) -> Fetch:
    """Serve site-relative paths from a built ``site/`` folder (nothing outside it)."""
    root = folder.resolve()

    def fetch(rel: str) -> bytes | None:
        path = (root / rel).resolve()
        return path.read_bytes() if path.is_relative_to(root) and path.is_file() else None

    return fetch


def route_offline(context: "BrowserContext", site: str, fetch: Fetch) -> None:
    """Answer ``site``'s URLs from ``fetch``, let file:/data:/loopback through, block the rest.

    Emails point at absolute https:// image URLs; this shows them without any network.
    """
    prefix = site.rstrip("/") + "/"

    def handle(route) -> None:
        url = route.request.url
        if url.startswith(prefix):
            rel = unquote(urlsplit(url).path[len(urlsplit(prefix).path):])
            body = fetch(rel)
            if body is None:
                route.fulfill(status=404, body=b"")
            else:
                route.fulfill(status=200, body=body, content_type=media_type(rel))
            return
        parts = urlsplit(url)
        if parts.scheme in ("file", "data", "about", "blob") or parts.hostname in _LOOPBACK:
            route.continue_()
        else:
            log.debug("blocked %s", url)
            route.abort("blockedbyclient")

    context.route("**/*", handle)


def open_email(browser: "Browser", html: str, *, width: int, scheme: Scheme, site: str,
               fetch: Fetch) -> "Page":
    """A page showing ``html`` at ``width`` px in the ``scheme`` colour scheme, offline."""
    context = browser.new_context(viewport={"width": width, "height": 900},
                                  color_scheme=scheme, device_scale_factor=1)
    route_offline(context, site, fetch)
    page = context.new_page()
    page.set_content(html, wait_until="load")
    return page


def take_screenshots(config: "Config", out_dir: Path) -> list[Path]:
    """Render every newsletter issue and write full-page PNGs into ``out_dir``.

    One file per issue, width and colour scheme: ``<slug>-<375|800>-<light|dark>.png``. The
    email is rendered in memory and personalised with a sample name; its images are served
    from the same render, so nothing needs building first and no server is started.

    Example::

        take_screenshots(load_config("."), Path("output/previews"))
    """
    from pressroom.content import load_publication
    from pressroom.output import write_all
    from pressroom.render.email import render_email
    from pressroom.theme import load_theme

    pub = load_publication(config)
    files = render_email(pub, load_theme(config))
    site_files: Mapping[str, bytes | str] = {
        rel.removeprefix("site/"): data for rel, data in files.items() if rel.startswith("site/")}

    def fetch(rel: str) -> bytes | None:
        data = site_files.get(rel)
        return data.encode("utf-8") if isinstance(data, str) else data

    site = outputs.site_url(config)
    shots: dict[Path, bytes] = {}
    with chromium() as browser:
        for issue in pub.newsletters:
            html = sample_html(config, str(files[outputs.issue_path(issue.slug)]), issue.slug)
            for width, scheme in FRAMES:
                page = open_email(browser, html, width=width, scheme=scheme, site=site,
                                  fetch=fetch)
                shots[out_dir / f"{issue.slug}-{width}-{scheme}.png"] = page.screenshot(
                    full_page=True)
                page.context.close()
            log.info("screenshots of %s taken", issue.slug)
    return list(write_all(shots))
