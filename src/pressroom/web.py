"""The subscription service: a Flask app that serves the built site (``output/site``) and adds
double opt-in sign-up, confirmation and RFC 8058 one-click unsubscribe. No cookies, no scripts."""

from __future__ import annotations

import hashlib
import io
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, redirect, request, send_file
from werkzeug.exceptions import HTTPException
from werkzeug.security import safe_join

from pressroom.config import Config, load_config
from pressroom.errors import MailError
from pressroom.mail.addresses import address_key, normalise_address
from pressroom.mail.campaign import send_transactional
from pressroom.mail.settings import MailSettings, mail_settings, secret_key, smtp_settings
from pressroom.mail.store import Store, open_store
from pressroom.mail.subscribers import confirm_subscriber, unsubscribe_by_token
from pressroom.mail.tokens import (CONFIRM, NOBODY, UNSUBSCRIBE, TokenError, make_token,
                                  verify_token)
from pressroom.render.site import download_names, page_context
from pressroom.theme import Theme, load_theme
from pressroom.webguard import DEFAULT_LIMITS, FormSigner, Limit, RateLimiter, same_origin

log = logging.getLogger(__name__)

# Text types get "; charset=utf-8" added by Flask.
CONTENT_TYPES = {
    ".html": "text/html", ".css": "text/css",
    ".epub": "application/epub+zip", ".pdf": "application/pdf", ".png": "image/png",
    ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".svg": "image/svg+xml",
    ".woff": "font/woff", ".woff2": "font/woff2", ".txt": "text/plain",
    ".json": "application/json", ".xml": "application/xml", ".ico": "image/x-icon",
}
SITE_CSP = ("default-src 'none'; img-src 'self' data:; style-src 'self'; font-src 'self'; "
            "form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
# Web versions of the newsletters are email HTML: inline styles everywhere, images addressed by
# the site's full URL. Scripts stay forbidden.
NEWSLETTER_CSP = ("default-src 'none'; img-src 'self' data: {origin}; style-src 'unsafe-inline'; "
                  "font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    # Tokens in /confirm and /unsubscribe URLs never leave the site. ("no-referrer" would also
    # make browsers send "Origin: null" with our own form posts, failing the CSRF check.)
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
}
MAX_NAME = 80
SOURCE = "web"


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
        """A connection for one request (SQLite connections stay in their thread)."""
        return open_store(self.settings.store)

    def page(self, status: int, template: str = "site/message.html", **context: Any) -> Response:
        """A page of the site's layout, never cached (it may carry a token)."""
        context.setdefault("eyebrow", self.config.publisher)
        context.setdefault("paragraphs", [])
        context.setdefault("form", None)
        context.setdefault("links", [])
        html = self.theme.render(template, **page_context(self.config, ""), **context)
        response = Response(html, status, mimetype="text/html")
        response.headers["Cache-Control"] = "no-store"
        return response

    def bad_link(self) -> Response:
        """The one answer to every bad, forged, altered or outdated token."""
        reason = TokenError().message  # the mail package's one generic wording
        return self.page(400, title="This link isn’t valid", paragraphs=[
            reason[:1].upper() + reason[1:] + ".",
            "If you keep seeing this page, reply to any of our emails and we’ll sort it out."],
            links=[("Go to the home page", "./")])

    def forbidden(self) -> Response:
        """A browser form that did not come from our own page (CSRF), or a stale one."""
        return self.page(403, title="This form has expired", paragraphs=[
            "We couldn’t accept the form, perhaps because it was open for a long time or was "
            "sent from another website.",
            "Please go back, reload the page and try again."],
            links=[("Go to the home page", "./")])

    def link(self, path: str, token: str) -> str:
        """An absolute link to one of the service's pages carrying ``token``."""
        return f"{self.base_url}/{path}?{urlencode({'t': token})}"


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
    app = Flask(__name__, static_folder=None, template_folder=None)
    app.config.update(MAX_CONTENT_LENGTH=64 * 1024, PRESSROOM=service)
    _routes(app, service)
    if proxies:
        from werkzeug.middleware.proxy_fix import ProxyFix

        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies, x_proto=proxies, x_host=proxies)
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


def _form() -> dict[str, str]:
    """The posted form, or nothing when the body is not a form (one-click senders vary)."""
    try:
        return {k: v for k, v in request.form.items()}
    except HTTPException:
        return {}


def _validate(form: dict[str, str]) -> tuple[dict[str, str], dict[str, str], str]:
    """(values to show again, errors by field, normalised address)."""
    values = {"email": form.get("email", "").strip()[:254],
              "first_name": form.get("first_name", "").strip()[:MAX_NAME],
              "consent": "yes" if form.get("consent") else ""}
    errors: dict[str, str] = {}
    email = ""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in form.get("first_name", "")):
        errors["first_name"] = "Your first name can’t contain line breaks or control characters."
    elif len(form.get("first_name", "").strip()) > MAX_NAME:
        errors["first_name"] = f"Please shorten your first name to {MAX_NAME} characters."
    if not values["email"]:
        errors["email"] = "Enter your email address."
    else:
        try:
            email = normalise_address(values["email"])
        except MailError:
            errors["email"] = "Enter an email address in the right format, like name@example.com."
    if not values["consent"]:
        errors["consent"] = "Tick the box to say you’d like to receive the newsletter."
    return values, errors, email


def _register(store: Store, email: str, first_name: str) -> tuple[int, str, str]:
    """Record a sign-up; return (subscriber id, "confirm" or "already", first name)."""
    source = f"{SOURCE}:subscribe"
    with store.transaction():  # BEGIN IMMEDIATE: concurrent sign-ups of one address serialise
        existing = store.find(email)
        if existing is None:
            sid = store.insert(email, first_name=first_name, status="pending", source=source)
            return sid, "confirm", first_name
        if existing.status == "subscribed":
            store.event("signup-repeat", source, existing.id, "", "already subscribed")
            return existing.id, "already", existing.first_name
        if existing.status == "pending":
            store.event("signup-repeat", source, existing.id, "", "confirmation sent again")
        else:  # unsubscribed, bounced, complained: their own new sign-up, confirmed by email
            store.set_status(existing.id, "pending", source, f"signed up again (was "
                                                             f"{existing.status})")
        return existing.id, "confirm", existing.first_name


def _send_notice(service: Service, sid: int, email: str, first_name: str, kind: str) -> None:
    """Email a confirmation link ("confirm"), or tell a subscriber they already are
    ("already"): every accepted sign-up sends exactly one email, whatever the address's state."""
    cfg = service.config
    hello = f"Hello {first_name or cfg.newsletter.fallback_name},"
    if kind == "confirm":
        subject = f"Please confirm your subscription to {cfg.publisher}’s newsletter"
        context = dict(heading="Please confirm your subscription", paragraphs=[
            hello, f"Thank you for signing up to {cfg.publisher}’s newsletter. Please press the "
                   "button to confirm that this is your address and that you’d like to "
                   "receive it."],
            button={"label": "Confirm my subscription",
                    "url": service.link("confirm", make_token(sid, CONFIRM))}, link=None,
            after=["If you didn’t sign up, ignore this email: you won’t hear from us again."])
    else:
        token = make_token(sid, UNSUBSCRIBE)
        url = (service.link("unsubscribe", token) if service.base_url != cfg.website.rstrip("/")
               else service.settings.unsubscribe_link(token))
        subject = f"You’re already subscribed to {cfg.publisher}’s newsletter"
        context = dict(heading="You’re already subscribed", paragraphs=[
            hello, f"Someone, probably you, asked to sign this address up to {cfg.publisher}’s "
                   "newsletter. You’re already on the list, so there is nothing more to do."],
            button=None, link={"label": "Unsubscribe from the newsletter", "url": url},
            after=["If you didn’t ask, you can ignore this email."])
    html = service.theme.render("site/email/notice.html", cfg=cfg, **context)
    text = service.theme.render("site/email/notice.txt", cfg=cfg, **context)
    send_transactional(cfg, email, subject, html, text)
    log.info("sign-up: %s email sent to subscriber %d", kind, sid)


def _routes(app: Flask, service: Service) -> None:
    cfg = service.config
    aliases = {name: f"downloads/{name}" for name in download_names(cfg)}

    def check_inbox(email: str) -> Response:
        return service.page(200, title="Please check your inbox", paragraphs=[
            f"We’ve sent an email to {email}. Press the button in it to confirm your "
            "subscription.",
            "If it hasn’t arrived in a few minutes, look in your spam or promotions folder."],
            links=[("Download the free guide", "./#download"), ("Go to the home page", "./")])

    def too_many() -> Response:
        response = service.page(429, title="Too many sign-ups", paragraphs=[
            "We’ve had a lot of sign-ups from here or for this address recently, so we’ve "
            "paused new ones for a while.",
            "Please try again later. If you’ve already signed up, check your inbox for our "
            "confirmation email."], links=[("Go to the home page", "./")])
        response.headers["Retry-After"] = "3600"
        return response

    @app.post("/subscribe")
    def subscribe() -> Response:
        if not same_origin(request.headers, request.host, service.allowed_hosts):
            return service.forbidden()
        form = _form()
        with service.store() as store:
            if not service.limiter.take(store, "ip", request.remote_addr or "unknown"):
                return too_many()
            if form.get("website", "").strip():  # the honeypot: answer as if all went well
                log.info("sign-up: honeypot field filled in; ignored")
                return check_inbox(form.get("email", "").strip()[:254])
            values, errors, email = _validate(form)
            if errors:
                return service.page(400, "site/subscribe.html", values=values, errors=errors)
            if not service.limiter.take(store, "address", address_key(email)):
                return too_many()
            sid, kind, first_name = _register(store, email, values["first_name"])
        try:
            _send_notice(service, sid, email, first_name, kind)
        except MailError as exc:
            log.error("sign-up: could not send the %s email to subscriber %d: %s", kind, sid,
                      exc.message)
            return service.page(503, title="We couldn’t send the email", paragraphs=[
                "Something went wrong on our side while sending your confirmation email.",
                "Please try again in a few minutes."], links=[("Go back", "./#newsletter")])
        return check_inbox(email)

    @app.get("/subscribe")
    def subscribe_page() -> Response:
        return redirect("./#newsletter", 303)

    def subscriber_for(token: str, purpose: str):
        """The subscriber a valid token names (a GET only looks: nothing changes), else None."""
        with service.store() as store:
            try:
                return store.get(verify_token(token, purpose))
            except TokenError:
                return None

    @app.get("/confirm")
    def confirm_page() -> Response:
        token = request.args.get("t", "")
        subscriber = subscriber_for(token, CONFIRM)
        if subscriber is None or subscriber.status not in ("pending", "subscribed"):
            return service.bad_link()
        return service.page(200, title="Confirm your subscription", paragraphs=[
            f"Press the button to start receiving {cfg.publisher}’s newsletter at "
            f"{subscriber.email}."],
            form={"action": "confirm", "button": "Yes, subscribe me",
                  "hidden": [("t", token), ("csrf", service.signer.make("confirm", token))]})

    @app.post("/confirm")
    def confirm() -> Response:
        form = _form()
        token = form.get("t", "")
        if not (same_origin(request.headers, request.host, service.allowed_hosts)
                and service.signer.check(form.get("csrf", ""), "confirm", token)):
            return service.forbidden()
        with service.store() as store:
            try:
                subscriber = confirm_subscriber(store, token, f"{SOURCE}:confirm")
            except TokenError:
                return service.bad_link()
        name = f", {subscriber.first_name}" if subscriber.first_name else ""
        return service.page(200, title=f"You’re subscribed{name}!", paragraphs=[
            f"Thank you for confirming. {cfg.publisher}’s newsletter will arrive at "
            f"{subscriber.email}.",
            "Every issue has a one-click unsubscribe link, should you ever want to stop."],
            links=[("Download the free guide", "./#download"),
                   ("Read past issues", "newsletters/")])

    @app.get("/unsubscribe")
    def unsubscribe_page() -> Response:
        token = request.args.get("t", "")
        subscriber = subscriber_for(token, UNSUBSCRIBE)
        if subscriber is None:
            return service.bad_link()
        return service.page(200, title="Unsubscribe from the newsletter?", paragraphs=[
            f"Press the button to stop {cfg.publisher}’s newsletter going to "
            f"{subscriber.email}."],
            form={"action": "unsubscribe?" + urlencode({"t": token}), "button": "Unsubscribe",
                  "hidden": [("List-Unsubscribe", "One-Click"), ("via", "page")]})

    @app.post("/unsubscribe")
    def unsubscribe() -> Response:
        # RFC 8058: no cookie, no CSRF token, empty body or List-Unsubscribe=One-Click, always
        # 200 and never a redirect. The signed token is the only credential.
        form = _form()
        token = request.args.get("t") or form.get("t", "")
        source = (f"{SOURCE}:unsubscribe-page" if form.get("via") == "page" else
                  f"{SOURCE}:one-click" if form.get("List-Unsubscribe") == "One-Click" else
                  f"{SOURCE}:unsubscribe-post")
        with service.store() as store:
            try:
                if verify_token(token, UNSUBSCRIBE) == NOBODY:  # a test copy or `doctor`'s probe
                    return service.page(200, title="Nothing to unsubscribe", paragraphs=[
                        "This link came from a test copy; no address is subscribed with it."])
                subscriber = unsubscribe_by_token(store, token, source)
            except TokenError:
                return service.bad_link()
        return service.page(200, title="You’re unsubscribed", paragraphs=[
            f"{subscriber.email} won’t receive {cfg.publisher}’s newsletter any more.",
            "Changed your mind? You can sign up again at any time."],
            links=[("Sign up again", "./#newsletter"), ("Go to the home page", "./")])

    @app.get("/", defaults={"path": ""})
    @app.get("/<path:path>")
    def site(path: str) -> Response:
        if any(part.startswith(".") for part in path.split("/")):
            return not_found()
        full = safe_join(str(service.site_dir), path) if path else str(service.site_dir)
        target = Path(full) if full else None
        if target is not None and target.is_dir():
            if path and not path.endswith("/"):
                query = request.query_string.decode("latin-1")
                return redirect(f"{request.script_root}/{path}/" + (f"?{query}" if query else ""),
                                308)
            target = target / "index.html"
        if target is None or not target.is_file():
            if path in aliases and (service.site_dir / aliases[path]).is_file():
                # Download URLs without /downloads/ (older builds, newsletters' buttons).
                return redirect(f"{request.script_root}/{aliases[path]}", 301)
            return not_found()
        suffix = target.suffix.lower()
        download = suffix in (".epub", ".pdf")
        # Read whole (the site's files are small): a streamed file handle is left open when a
        # client hangs up mid-response under the development server.
        data = target.read_bytes()
        response = send_file(io.BytesIO(data),
                             mimetype=CONTENT_TYPES.get(suffix, "application/octet-stream"),
                             conditional=True, etag=hashlib.sha256(data).hexdigest()[:32],
                             last_modified=target.stat().st_mtime,
                             max_age=0 if suffix == ".html" else 3600,
                             as_attachment=suffix == ".epub",
                             download_name=target.name if download else None)
        if suffix == ".html":
            response.headers["Cache-Control"] = "no-cache"
        return response

    def not_found() -> Response:
        page = service.site_dir / "404.html"
        if page.is_file():
            return Response(page.read_bytes(), 404, mimetype="text/html")
        return service.page(404, title="We can’t find that page", links=[("Go to the home page",
                                                                         "/")])

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        if exc.code == 404:
            return not_found()
        response = service.page(exc.code or 500, title=exc.name, paragraphs=[
            "Sorry, that didn’t work. Please go back and try again."],
            links=[("Go to the home page", "/")])
        if getattr(exc, "valid_methods", None):  # 405 says what is allowed
            response.headers["Allow"] = ", ".join(exc.valid_methods)
        return response

    site_origin = f"{urlsplit(cfg.website).scheme}://{urlsplit(cfg.website).netloc}"

    @app.after_request
    def security_headers(response: Response) -> Response:
        path = request.path
        issue_page = (path.startswith("/newsletters/") and path.endswith(".html")
                      and not path.endswith("/index.html") and response.status_code == 200)
        response.headers["Content-Security-Policy"] = (
            NEWSLETTER_CSP.format(origin=site_origin) if issue_page else SITE_CSP)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def serve_preview(config: Config, host: str = "127.0.0.1", port: int = 8001,
                  on_ready: Callable[[str], None] | None = None) -> None:
    """Build, serve the live preview page at http://HOST:PORT/ and rebuild when content/ or the
    theme changes, until interrupted (Ctrl-C). ``on_ready(url)`` runs once it listens.

    Example: ``serve_preview(load_config("."), "127.0.0.1", 8001)``
    """
    from pressroom.web_preview import run_preview

    run_preview(config, host, port, on_ready)
