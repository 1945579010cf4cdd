"""The subscription service's app factory: a Flask app serving the built site, with double
opt-in sign-up, confirmation and RFC 8058 one-click unsubscribe; no cookies, no scripts."""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask

from pressroom.config import Config, load_config
from pressroom.errors import MailError
from pressroom.mail.settings import mail_settings, secret_key, smtp_settings
from pressroom.mail.outbox import start_notice_sender
from pressroom.theme import load_theme
from pressroom.web.guard import DEFAULT_LIMITS, FormSigner, Limit, RateLimiter
from pressroom.web.service import EXTENSION, Service
from pressroom.web.views import bp

MAX_BODY = 64 * 1024  # the service only takes small forms


def create_app(config: Config, *, base_url: str | None = None, proxies: int = 0,
               limits: tuple[Limit, ...] = DEFAULT_LIMITS) -> Flask:
    """The subscription service for one project, serving ``<out>/site``.

    ``base_url`` is where confirmation links point (default: the publication's website);
    ``proxies`` is how many reverse proxies stand in front (their X-Forwarded-* headers are
    trusted, so rate limits see the reader's IP); ``limits`` are the sign-up rate limits.
    Raises MailError when PRESSROOM_SECRET_KEY is missing or the mail settings are invalid.

    Example::

        app = create_app(load_config("."), base_url="http://127.0.0.1:8000")
        app.run(port=8000)
    """
    key = secret_key()
    settings = mail_settings(config)
    smtp_settings(config)  # a broken smtp: section fails now, not at the first sign-up
    service = Service(config, load_theme(config), settings,
                      (base_url or config.website).rstrip("/"), FormSigner(key),
                      RateLimiter(key, limits))
    service.store().close()  # a store that is missing, unreachable or not upgraded fails now
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=MAX_BODY)
    app.extensions[EXTENSION] = service
    app.register_blueprint(bp)
    start_notice_sender(config)  # send what an earlier process left in the outbox
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies,  # type: ignore[method-assign]
                                x_proto=proxies, x_host=proxies)
    return app


def create_app_from_env() -> Flask:
    """The service configured from the environment, for production WSGI servers.

    PRESSROOM_PROJECT (the project folder, default the current one), PRESSROOM_OUT (output
    folder, default PROJECT/output), PRESSROOM_BASE_URL (default: the publication's website),
    PRESSROOM_PROXIES (reverse proxies in front, default 0), PRESSROOM_SECRET_KEY (required).

    Example: ``gunicorn 'pressroom.web:create_app_from_env()'``
    """
    config = load_config(Path(os.environ.get("PRESSROOM_PROJECT", ".")))
    out = os.environ.get("PRESSROOM_OUT")
    config = config.with_overrides(out=Path(out).resolve() if out else None)
    proxies = os.environ.get("PRESSROOM_PROXIES", "0")
    if not proxies.isdigit():
        raise MailError(f"PRESSROOM_PROXIES must be a whole number of proxies, got {proxies!r}")
    return create_app(config, base_url=os.environ.get("PRESSROOM_BASE_URL") or None,
                      proxies=int(proxies))
