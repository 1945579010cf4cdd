"""The subscription service's views, on one Blueprint: double opt-in sign-up and confirmation,
RFC 8058 one-click unsubscribe, and the built site. Every sentence they show comes from the
theme (web/pages.j2, web/notices.j2); state comes from the app (see service.py)."""

from __future__ import annotations

import logging
from urllib.parse import urlencode, urlsplit

from flask import Blueprint, Response, redirect, request
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from pressroom import outputs
from pressroom.errors import MailError
from pressroom.mail.addresses import has_control, normalise_address, signup_key
from pressroom.mail.outbox import enqueue_notice
from pressroom.mail.store import Store
from pressroom.mail.subscribers import confirm_subscriber, unsubscribe_by_token
from pressroom.mail.tokens import (CONFIRM, NOBODY, UNSUBSCRIBE, TokenError, make_token,
                                   verify_token)
from pressroom.web.guard import same_origin
from pressroom.web.service import MAX_NAME, Service, service
from pressroom.web.static import file_response, find_file

log = logging.getLogger(__name__)

bp = Blueprint("site", __name__)

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
SOURCE = "web"
NOTICE_COPY = "web/notices.j2"  # every sentence of the sign-up emails


def _form() -> dict[str, str]:
    """The posted form, or nothing when the body is not a form (one-click senders vary)."""
    try:
        return {k: v for k, v in request.form.items()}
    except RequestEntityTooLarge:
        raise  # 413, through the error handler
    except HTTPException:
        return {}


def _validate(form: dict[str, str]) -> tuple[dict[str, str], dict[str, str], str]:
    """(values to show again, problem codes by field, normalised address); the theme words
    each code (``field_errors`` in web/pages.j2)."""
    values = {"email": form.get("email", "").strip()[:254],
              "first_name": form.get("first_name", "").strip()[:MAX_NAME],
              "consent": "yes" if form.get("consent") else ""}
    errors: dict[str, str] = {}
    email = ""
    if has_control(form.get("first_name", "")):
        errors["first_name"] = "control"
    elif len(form.get("first_name", "").strip()) > MAX_NAME:
        errors["first_name"] = "long"
    if not values["email"]:
        errors["email"] = "missing"
    else:
        try:
            email = normalise_address(values["email"])
        except MailError:
            errors["email"] = "format"
    if not values["consent"]:
        errors["consent"] = "missing"
    return values, errors, email


def _register(store: Store, email: str, first_name: str) -> tuple[int, str, str]:
    """Record a sign-up; return (subscriber id, "confirm" or "already", first name)."""
    source = f"{SOURCE}:subscribe"
    with store.transaction() as db:  # concurrent sign-ups of one address serialise:
        db.lock(f"sign-up {email.lower()}")  # SQLite by BEGIN IMMEDIATE, PostgreSQL by this lock
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


def _send_notice(svc: Service, sid: int, email: str, first_name: str, kind: str) -> None:
    """Email a confirmation link ("confirm"), or tell a subscriber they already are
    ("already"): every accepted sign-up sends exactly one email, whatever the address's state."""
    cfg = svc.config
    words = svc.theme.copy(NOTICE_COPY, cfg=cfg, kind=kind, first_name=first_name)
    button = link = None
    if kind == "confirm":
        button = {"label": words["button_label"],
                  "url": svc.link("confirm", make_token(sid, CONFIRM))}
    else:
        token = make_token(sid, UNSUBSCRIBE)
        url = (svc.link("unsubscribe", token) if svc.base_url != outputs.site_url(cfg)
               else svc.settings.unsubscribe_link(token))
        link = {"label": words["link_label"], "url": url}
    context = dict(heading=words["heading"], paragraphs=words["paragraphs"], button=button,
                   link=link, after=words["after"])
    html = svc.theme.render("site/email/notice.html", cfg=cfg, **context)
    text = svc.theme.render("site/email/notice.txt", cfg=cfg, **context)
    enqueue_notice(cfg, email, words["subject"], html, text)  # the outbox sends it: never wait
    log.info("sign-up: %s email queued for subscriber %d", kind, sid)


def _too_many(svc: Service) -> Response:
    response = svc.page(429, "too-many")
    response.headers["Retry-After"] = "3600"
    return response


@bp.post("/subscribe")
def subscribe() -> Response:
    """A sign-up: checked, rate-limited, recorded as pending, answered by one email."""
    svc = service()
    if not same_origin(request.headers, request.host, svc.allowed_hosts):
        return svc.page(403, "forbidden")
    form = _form()
    with svc.store() as store:
        if not svc.limiter.take(store, "ip", request.remote_addr or "unknown"):
            return _too_many(svc)
        if form.get("website", "").strip():  # the honeypot: answer as if all went well
            log.info("sign-up: honeypot field filled in; ignored")
            return svc.page(200, "check-inbox", email=form.get("email", "").strip()[:254])
        values, codes, email = _validate(form)
        if codes:
            words = svc.copy("form-errors")["field_errors"]
            errors = {name: words[f"{name}:{code}"] for name, code in codes.items()}
            return svc.layout(400, "site/subscribe.html", values=values, errors=errors)
        if not svc.limiter.take(store, "address", signup_key(email)):
            return _too_many(svc)
        sid, kind, first_name = _register(store, email, values["first_name"])
    try:
        _send_notice(svc, sid, email, first_name, kind)
    except MailError as exc:
        log.error("sign-up: could not send the %s email to subscriber %d: %s", kind, sid,
                  exc.message)
        return svc.page(503, "send-failed")
    return svc.page(200, "check-inbox", email=email)


@bp.get("/subscribe")
def subscribe_page() -> ResponseReturnValue:
    """The form lives on the home page."""
    return redirect("./#newsletter", 303)


def _subscriber_for(svc: Service, token: str, purpose: str):
    """The subscriber a valid token names (a GET only looks: nothing changes), else None."""
    with svc.store() as store:
        try:
            return store.get(verify_token(token, purpose))
        except TokenError:
            return None


@bp.get("/confirm")
def confirm_page() -> Response:
    """The confirmation link's page: a button that posts the confirmation (no change on GET)."""
    svc = service()
    token = request.args.get("t", "")
    subscriber = _subscriber_for(svc, token, CONFIRM)
    if subscriber is None or subscriber.status not in ("pending", "subscribed"):
        return svc.page(400, "bad-link")
    return svc.page(200, "confirm", email=subscriber.email, form={
        "action": "confirm", "hidden": [("t", token), ("csrf", svc.signer.make("confirm", token))]})


@bp.post("/confirm")
def confirm() -> Response:
    """Confirm a subscription (idempotent); needs our origin and the page's signed form token."""
    svc = service()
    form = _form()
    token = form.get("t", "")
    if not (same_origin(request.headers, request.host, svc.allowed_hosts)
            and svc.signer.check(form.get("csrf", ""), "confirm", token)):
        return svc.page(403, "forbidden")
    with svc.store() as store:
        try:
            subscriber = confirm_subscriber(store, token, f"{SOURCE}:confirm")
        except TokenError:
            return svc.page(400, "bad-link")
    return svc.page(200, "subscribed", email=subscriber.email,
                    first_name=subscriber.first_name)


@bp.get("/unsubscribe")
def unsubscribe_page() -> Response:
    """The unsubscribe link's page: a button that posts the one-click unsubscribe."""
    svc = service()
    token = request.args.get("t", "")
    subscriber = _subscriber_for(svc, token, UNSUBSCRIBE)
    if subscriber is None:
        return svc.page(400, "bad-link")
    return svc.page(200, "unsubscribe", email=subscriber.email, form={
        "action": "unsubscribe?" + urlencode({"t": token}),
        "hidden": [("List-Unsubscribe", "One-Click"), ("via", "page")]})


@bp.post("/unsubscribe")
def unsubscribe() -> Response:
    """RFC 8058 one-click unsubscribe: no cookie, no CSRF token, empty body or
    List-Unsubscribe=One-Click, always 200 and never a redirect. The signed token is the only
    credential."""
    svc = service()
    form = _form()
    token = request.args.get("t") or form.get("t", "")
    source = (f"{SOURCE}:unsubscribe-page" if form.get("via") == "page" else
              f"{SOURCE}:one-click" if form.get("List-Unsubscribe") == "One-Click" else
              f"{SOURCE}:unsubscribe-post")
    with svc.store() as store:
        try:
            if verify_token(token, UNSUBSCRIBE) == NOBODY:  # a test copy or `doctor`'s probe
                return svc.page(200, "test-unsubscribe")
            subscriber = unsubscribe_by_token(store, token, source)
        except TokenError:
            return svc.page(400, "bad-link")
    return svc.page(200, "unsubscribed", email=subscriber.email)


@bp.get("/", defaults={"path": ""})
@bp.get("/<path:path>")
def site(path: str) -> ResponseReturnValue:
    """A file of the built site; old download URLs (without downloads/) redirect."""
    svc = service()
    target, folder = find_file(svc.site_dir, path)
    if folder and path and not path.endswith("/"):
        query = request.query_string.decode("latin-1")
        return redirect(f"{request.script_root}/{path}/" + (f"?{query}" if query else ""), 308)
    if target is None:
        names = outputs.download_names(svc.config)
        if path in names and (svc.site_dir / outputs.download_path(path)).is_file():
            # Download URLs without /downloads/ (older builds, newsletters' buttons).
            return redirect(f"{request.script_root}/{outputs.download_path(path)}", 301)
        return _not_found(svc)
    return file_response(target)


def _not_found(svc: Service) -> Response:
    page = svc.site_dir / "404.html"
    if page.is_file():
        return Response(page.read_bytes(), 404, mimetype="text/html")
    return svc.page(404, "not-found")


@bp.app_errorhandler(HTTPException)
def http_error(exc: HTTPException) -> Response:
    """Errors as the site's pages (the built 404 page for anything not found)."""
    svc = service()
    if exc.code == 404:
        return _not_found(svc)
    response = svc.page(exc.code or 500, "http-error", error_name=exc.name)
    valid = getattr(exc, "valid_methods", None)
    if valid:  # 405 says what is allowed
        response.headers["Allow"] = ", ".join(valid)
    return response


@bp.after_app_request
def security_headers(response: Response) -> Response:
    """CSP (looser for the newsletters' web versions) and the other security headers."""
    website = urlsplit(service().config.website)
    path = request.path
    issue_page = (path.startswith(f"/{outputs.NEWSLETTERS}/") and path.endswith(".html")
                  and not path.endswith("/index.html") and response.status_code == 200)
    response.headers["Content-Security-Policy"] = (
        NEWSLETTER_CSP.format(origin=f"{website.scheme}://{website.netloc}") if issue_page
        else SITE_CSP)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response
