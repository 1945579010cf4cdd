"""The subscription service's state, kept on the Flask app (``app.extensions``) and reached
by the views through ``current_app``: settings, theme, guards, and the theme-worded pages."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from flask import Response, current_app

from pressroom.config import Config
from pressroom.mail.settings import MailSettings
from pressroom.mail.store import Store, open_store
from pressroom.render.site import page_context
from pressroom.theme import Theme
from pressroom.web.guard import FormSigner, RateLimiter

EXTENSION = "pressroom"
PAGE_LAYOUT = "site/message.html"
PAGE_COPY = "web/pages.j2"  # every sentence of the service's pages
MAX_NAME = 80  # the longest first name a sign-up keeps


@dataclass
class Service:
    """Everything the request handlers share: settings, theme, guards."""

    config: Config
    theme: Theme
    settings: MailSettings
    base_url: str
    signer: FormSigner
    limiter: RateLimiter
    site_dir: Path = field(init=False)
    allowed_hosts: set[str] = field(init=False)

    def __post_init__(self) -> None:
        self.site_dir = (self.config.out / "site").resolve()
        self.allowed_hosts = {urlsplit(u).netloc.lower()
                              for u in (self.config.website, self.base_url) if u}

    def store(self) -> Store:
        """A connection for one request (SQLite connections stay in their thread; nothing is
        kept between requests, so every worker and host sees the same state)."""
        return open_store(self.settings.store)

    def copy(self, page: str, **context: Any) -> dict[str, Any]:
        """The theme's wording of one page (title, paragraphs, links, button, field_errors)."""
        context.setdefault("max_name", MAX_NAME)
        return self.theme.copy(PAGE_COPY, cfg=self.config, page=page, **context)

    def page(self, status: int, page: str, form: dict | None = None,
             **context: Any) -> Response:
        """One of the service's pages, worded by the theme, in the site's layout; never cached
        (it may carry a token). ``form`` (action, hidden fields) adds the page's button."""
        words = self.copy(page, **context)
        if form is not None:
            form = {**form, "button": words["button"]}
        return self.layout(status, PAGE_LAYOUT, title=words["title"],
                           paragraphs=words["paragraphs"], links=words["links"], form=form)

    def layout(self, status: int, template: str, **context: Any) -> Response:
        """``template`` rendered in the site's layout with the shared page context."""
        context.setdefault("eyebrow", self.config.publisher)
        html = self.theme.render(template, **page_context(self.config, ""), **context)
        response = Response(html, status, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    def link(self, path: str, token: str) -> str:
        """An absolute link to one of the service's pages carrying ``token``."""
        return f"{self.base_url}/{path}?{urlencode({'t': token})}"


def service() -> Service:
    """The running app's Service (inside a request)."""
    return current_app.extensions[EXTENSION]
