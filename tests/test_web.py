"""The subscription service (Flask test client, plus a real WSGI server and SMTP server for the
rate limits) and the live preview: headers, content types, double opt-in, one-click
unsubscribe semantics, CSRF, honeypot, rate limits, the preview page and its live rebuild."""

from __future__ import annotations

import http.client
import re
import shutil
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from email import policy
from email.parser import BytesParser
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import pytest
from click.testing import CliRunner
from sitetest import (ORIGIN_OK, preview_project, SECRET, client_of, events, closed_port,
                      site_project, subscriber, text_part, with_mail)

from pressroom.errors import MailError
from pressroom.mail.outbox import flush_outbox
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import open_store
from pressroom.mail.subscribers import add_subscriber, unsubscribe
from pressroom.mail.tokens import CONFIRM, UNSUBSCRIBE, make_token
from pressroom.web import create_app, create_app_from_env
from pressroom.web.cli import serve
from pressroom.web.preview import Preview, create_preview_app, force_scheme
from pressroom.web.service import EXTENSION

# Every test here runs on both store backends (SQLite and PostgreSQL): tests/conftest.py.
pytestmark = pytest.mark.usefixtures("backend")

SLUG = "test-booklet"


@pytest.fixture(autouse=True)
def secret_key(monkeypatch):
    monkeypatch.setenv("PRESSROOM_SECRET_KEY", SECRET)
    monkeypatch.delenv("PRESSROOM_SMTP_PASSWORD", raising=False)


@pytest.fixture(scope="module")
def site_config(minimal_out, tmp_path_factory):
    """The minimal fixture, built once per session, copied here with its site rendered."""
    return site_project(minimal_out, tmp_path_factory.mktemp("web"))


@pytest.fixture
def config(site_config, tmp_path):
    """The built site with a fresh subscriber store and no SMTP (the embedded outbox, emptied)."""
    shutil.rmtree(site_config.out / "outbox", ignore_errors=True)
    return with_mail(site_config, tmp_path / "subscribers.sqlite3")


@pytest.fixture
def client(config):
    return client_of(create_app(config, base_url="https://clinic.example"))


def post_signup(client, email: str, **extra):
    data = {"email": email, "first_name": "Ann", "consent": "yes", "website": "", **extra}
    return client.post("/subscribe", data=data, headers={"Origin": ORIGIN_OK})


def drain_outbox(config) -> None:
    """Send what is queued, then wait (deadline 10 s) until no notice is queued or being sent
    by the background sender: every notice is then with the SMTP server or in the folder."""
    flush_outbox(config)  # what the background sender does (claims keep it to one copy each)
    deadline = time.monotonic() + 10
    with open_store(mail_settings(config).store) as store:
        while (counts := store.notice_counts())["queued"] + counts["sending"]:
            assert time.monotonic() < deadline, counts
            time.sleep(0.01)


def outbox_messages(config, address: str):
    drain_outbox(config)
    folder = config.out / "outbox" / "transactional"
    parser = BytesParser(policy=policy.default)
    found = [parser.parsebytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]
    return [m for m in found if m["To"].addresses[0].addr_spec == address]


def confirm_link(message) -> str:
    return re.search(r"https?://\S+/confirm\?t=[\w-]+", text_part(message)).group(0)


def h1(response) -> str:
    return re.search(r"<h1[^>]*>(.*?)</h1>", response.get_data(as_text=True), re.S).group(1)


# -- serving the site -------------------------------------------------------------------------

@pytest.mark.parametrize("path, kind", [
    ("/", "text/html; charset=utf-8"),
    ("/newsletters/", "text/html; charset=utf-8"),
    ("/newsletters/01-hello.html", "text/html; charset=utf-8"),
    ("/style.css", "text/css; charset=utf-8"),
    ("/cover.png", "image/png"),
    ("/logo.svg", "image/svg+xml; charset=utf-8"),
    ("/fonts/lato-regular.woff", "font/woff"),
    (f"/downloads/{SLUG}.epub", "application/epub+zip"),
    (f"/downloads/{SLUG}-handout.pdf", "application/pdf"),
    (f"/downloads/{SLUG}-quick-reference.pdf", "application/pdf"),
])
def test_site_files_are_served_with_their_content_types(client, config, path, kind):
    response = client.get(path)
    assert response.status_code == 200 and response.headers["Content-Type"] == kind
    rel = path.lstrip("/") + ("index.html" if path.endswith("/") else "")
    assert response.data == (config.out / "site" / rel).read_bytes()


def test_downloads_are_the_built_files(client, config):
    epub = client.get(f"/downloads/{SLUG}.epub")
    assert epub.data == (config.out / f"{SLUG}.epub").read_bytes()
    assert epub.headers["Content-Disposition"] == f"attachment; filename={SLUG}.epub"
    pdf = client.get(f"/downloads/{SLUG}-handout.pdf")
    assert pdf.data == (config.out / f"{SLUG}-handout.pdf").read_bytes()
    assert pdf.headers["Content-Disposition"].startswith("inline")
    first = client.get(f"/downloads/{SLUG}.epub", headers={"Range": "bytes=0-3"})
    assert first.status_code == 206 and first.data == b"PK\x03\x04"


@pytest.mark.parametrize("path", ["/nope", "/../content/publication.yaml",
                                  "/%2e%2e/content/publication.yaml", "/.pressroom-cache.json",
                                  "/downloads/.hidden", "/newsletters/../../output/x"])
def test_missing_and_outside_paths_get_the_404_page(client, config, path):
    response = client.get(path)
    assert response.status_code == 404
    assert response.data == (config.out / "site" / "404.html").read_bytes()


def test_folders_redirect_to_their_slash_and_old_download_urls_to_downloads(client):
    folder = client.get("/newsletters")
    assert folder.status_code == 308 and folder.headers["Location"] == "/newsletters/"
    old = client.get(f"/{SLUG}.epub")
    assert old.status_code == 301 and old.headers["Location"] == f"/downloads/{SLUG}.epub"


def test_security_headers_and_no_cookies_on_every_kind_of_response(client):
    responses = {
        "page": client.get("/"), "asset": client.get("/style.css"), "404": client.get("/x"),
        "issue": client.get("/newsletters/01-hello.html"),
        "400": client.get("/confirm?t=nope"), "405": client.put("/"),
        "subscribe": post_signup(client, "headers@example.com"),
        "one-click": client.post("/unsubscribe?t=nope"),
    }
    for name, r in responses.items():
        h = r.headers
        assert h["X-Frame-Options"] == "DENY", name
        assert h["X-Content-Type-Options"] == "nosniff", name
        assert h["Referrer-Policy"] == "same-origin", name
        csp = h["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "default-src 'none'" in csp, name
        assert "script-src" not in csp, name  # no scripts at all
        assert ("'unsafe-inline'" in csp) == (name == "issue"), name
        assert "Set-Cookie" not in h, name
    assert responses["405"].status_code == 405


# -- sign-up --------------------------------------------------------------------------------

def test_signup_creates_a_pending_subscriber_and_emails_a_confirmation_link(client, config):
    response = post_signup(client, "ann@example.com")
    assert response.status_code == 200 and h1(response) == "Please check your inbox"
    sub = subscriber(config, "ann@example.com")
    assert (sub.status, sub.first_name, sub.consent_source) == ("pending", "Ann", "web:subscribe")
    assert [(kind, source) for _at, kind, source, _ in events(config, "ann@example.com")] == [
        ("added", "web:subscribe")]
    [message] = outbox_messages(config, "ann@example.com")
    assert message["Subject"] == "Please confirm your subscription to Test Clinic’s newsletter"
    assert "List-Unsubscribe" not in message  # a transactional message, not a newsletter
    link = confirm_link(message)
    assert link.startswith("https://clinic.example/confirm?t=")
    html = message.get_body(preferencelist=("html",)).get_content()
    assert link.replace("&", "&amp;") in html and "Hello Ann," in html


def test_the_answer_never_reveals_whether_an_address_is_known(client, config):
    add_subscriber(config, "sub@example.com")
    post_signup(client, "pend@example.com")
    add_subscriber(config, "gone@example.com")
    unsubscribe(config, "gone@example.com")
    answers = {}
    for address in ("new@example.com", "pend@example.com", "sub@example.com", "gone@example.com"):
        r = post_signup(client, address)
        answers[address] = (r.status_code, r.get_data(as_text=True).replace(address, "ADDRESS"))
    bot = post_signup(client, "bot@example.com", website="http://spam.example")
    answers["honeypot"] = (bot.status_code, bot.get_data(as_text=True).replace(
        "bot@example.com", "ADDRESS"))
    assert len(set(answers.values())) == 1, answers.keys()
    # Behind the same answer: one email each, of the right kind.
    subjects = {a: [m["Subject"] for m in outbox_messages(config, a)] for a in answers if "@" in a}
    assert subjects["sub@example.com"] == [
        "You’re already subscribed to Test Clinic’s newsletter"]
    assert len(subjects["pend@example.com"]) == 2 and len(subjects["new@example.com"]) == 1
    assert subscriber(config, "gone@example.com").status == "pending"
    assert subscriber(config, "sub@example.com").status == "subscribed"


def test_honeypot_submissions_store_and_send_nothing(client, config):
    response = post_signup(client, "bot@example.com", website="http://spam.example")
    assert response.status_code == 200
    assert subscriber(config, "bot@example.com") is None
    assert outbox_messages(config, "bot@example.com") == []


@pytest.mark.parametrize("form, field, message", [
    ({"email": "not-an-address"}, "email",
     "Enter an email address in the right format, like name@example.com."),
    ({"email": ""}, "email", "Enter your email address."),
    ({"consent": ""}, "consent", "Tick the box to say you’d like to receive the newsletter."),
    ({"first_name": "Ann\r\nBcc: x@example.com"}, "first_name",
     "Your first name can’t contain line breaks or control characters."),
])
def test_invalid_signups_show_the_form_again_with_the_problem(client, config, form, field,
                                                              message):
    data = {"email": "val@example.com", "first_name": "Ann", "consent": "yes", **form}
    response = client.post("/subscribe", data=data, headers={"Origin": ORIGIN_OK})
    html = response.get_data(as_text=True)
    assert response.status_code == 400
    assert f'<a href="#signup-{field.replace("_", "-")}">{message}</a>' in html
    assert f'id="signup-{field.replace("_", "-")}-error">{message}<' in html
    assert 'aria-invalid="true"' in html and 'role="alert"' in html
    assert subscriber(config, "val@example.com") is None
    if field != "email":
        assert 'value="val@example.com"' in html  # what was typed is kept


@pytest.mark.parametrize("headers", [
    {}, {"Origin": "https://evil.example"}, {"Origin": "null"},
    {"Referer": "https://evil.example/form.html"},
    {"Origin": ORIGIN_OK, "Sec-Fetch-Site": "cross-site"},
])
def test_signups_from_other_sites_are_refused(client, config, headers):
    response = client.post("/subscribe", data={"email": "csrf@example.com", "consent": "yes"},
                           headers=headers)
    assert response.status_code == 403 and h1(response) == "This form has expired"
    assert subscriber(config, "csrf@example.com") is None


def test_a_same_site_referer_is_enough_for_older_browsers(client, config):
    response = client.post("/subscribe", data={"email": "old@example.com", "consent": "yes"},
                           headers={"Referer": "http://localhost/"})
    assert response.status_code == 200 and subscriber(config, "old@example.com").status == "pending"


def test_get_subscribe_goes_to_the_form(client):
    response = client.get("/subscribe")
    assert response.status_code == 303 and response.headers["Location"] == "./#newsletter"


# -- confirmation ---------------------------------------------------------------------------

def confirm_form(client, token: str) -> dict[str, str]:
    html = client.get(f"/confirm?t={token}").get_data(as_text=True)
    return dict(re.findall(r'<input type="hidden" name="(\w+)" value="([^"]*)">', html))


def test_get_confirm_changes_nothing_and_post_confirms(client, config):
    post_signup(client, "conf@example.com")
    link = confirm_link(outbox_messages(config, "conf@example.com")[0])
    token = parse_qs(urlsplit(link).query)["t"][0]
    for _ in range(3):  # link scanners prefetch
        page = client.get(f"/confirm?t={token}")
        assert page.status_code == 200 and "Yes, subscribe me" in page.get_data(as_text=True)
        assert "Set-Cookie" not in page.headers
    assert subscriber(config, "conf@example.com").status == "pending"
    form = confirm_form(client, token)
    done = client.post("/confirm", data=form, headers={"Origin": ORIGIN_OK})
    assert done.status_code == 200 and h1(done) == "You’re subscribed, Ann!"
    assert subscriber(config, "conf@example.com").status == "subscribed"
    again = client.post("/confirm", data=form, headers={"Origin": ORIGIN_OK})
    assert again.status_code == 200  # idempotent
    kinds = [(k, s) for _at, k, s, _ in events(config, "conf@example.com")]
    assert kinds == [("added", "web:subscribe"), ("confirmed", "web:confirm")]
    assert all(re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", at)
               for at, *_ in events(config, "conf@example.com"))


def test_confirm_posts_need_the_form_token_and_our_origin(client, config):
    post_signup(client, "tok@example.com")
    token = make_token(subscriber(config, "tok@example.com").id, CONFIRM)
    form = confirm_form(client, token)
    other = make_token(subscriber(config, "tok@example.com").id + 1000, CONFIRM)
    csrf = form["csrf"]
    # One character of the signature changed (the last one can differ in padding bits only).
    altered = csrf[:-5] + ("A" if csrf[-5] != "A" else "B") + csrf[-4:]
    for data, headers in [({"t": token}, {"Origin": ORIGIN_OK}),
                          ({**form, "csrf": "1.abc"}, {"Origin": ORIGIN_OK}),
                          ({**form, "csrf": altered}, {"Origin": ORIGIN_OK}),
                          ({**form, "t": other}, {"Origin": ORIGIN_OK}),
                          (form, {"Origin": "https://evil.example"}),
                          (form, {})]:
        response = client.post("/confirm", data=data, headers=headers)
        assert response.status_code == 403, (data, headers)
    assert subscriber(config, "tok@example.com").status == "pending"


def test_signing_up_again_after_unsubscribing_needs_a_new_confirmation(client, config):
    add_subscriber(config, "back@example.com")
    unsubscribe(config, "back@example.com")
    post_signup(client, "back@example.com")
    assert subscriber(config, "back@example.com").status == "pending"
    with open_store(mail_settings(config).store) as store:
        assert store.suppression("back@example.com") == "unsubscribed"  # until confirmed
    token = make_token(subscriber(config, "back@example.com").id, CONFIRM)
    client.post("/confirm", data=confirm_form(client, token), headers={"Origin": ORIGIN_OK})
    assert subscriber(config, "back@example.com").status == "subscribed"
    with open_store(mail_settings(config).store) as store:
        assert store.suppression("back@example.com") is None
    assert [k for _at, k, _s, _d in events(config, "back@example.com")] == [
        "added", "unsubscribed", "pending", "confirmed"]


# -- unsubscribe ----------------------------------------------------------------------------

@pytest.mark.parametrize("body, content_type, source", [
    (b"", None, "web:unsubscribe-post"),
    (b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded", "web:one-click"),
    (b'--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n'
     b"--b--\r\n", "multipart/form-data; boundary=b", "web:one-click"),
    (b"\x00\xff not a form", "application/octet-stream", "web:unsubscribe-post"),
])
def test_one_click_unsubscribe_answers_200_without_redirect_cookie_or_token(
        client, config, body, content_type, source):
    add_subscriber(config, "one@example.com")
    token = make_token(subscriber(config, "one@example.com").id, UNSUBSCRIBE)
    headers = {"Content-Type": content_type} if content_type else {}
    for _ in range(2):  # idempotent
        response = client.post(f"/unsubscribe?t={token}", data=body, headers=headers)
        assert response.status_code == 200 and "Location" not in response.headers
        assert "Set-Cookie" not in response.headers and h1(response) == "You’re unsubscribed"
    assert subscriber(config, "one@example.com").status == "unsubscribed"
    assert [(k, s) for _at, k, s, _ in events(config, "one@example.com")][-1] == (
        "unsubscribed", source)
    with open_store(mail_settings(config).store) as store:
        assert store.suppression("one@example.com") == "unsubscribed"


def test_unsubscribe_page_changes_nothing_and_its_button_unsubscribes(client, config):
    add_subscriber(config, "page@example.com")
    token = make_token(subscriber(config, "page@example.com").id, UNSUBSCRIBE)
    page = client.get(f"/unsubscribe?t={token}")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "page@example.com" in html
    assert subscriber(config, "page@example.com").status == "subscribed"
    action = re.search(r'<form class="action-form" action="([^"]+)" method="post">', html).group(1)
    assert action == f"unsubscribe?{urlencode({'t': token})}"
    hidden = dict(re.findall(r'<input type="hidden" name="([\w-]+)" value="([^"]*)">', html))
    done = client.post("/" + action, data=hidden)
    assert done.status_code == 200
    assert subscriber(config, "page@example.com").status == "unsubscribed"
    assert events(config, "page@example.com")[-1][1:3] == ("unsubscribed", "web:unsubscribe-page")


def test_every_bad_token_gets_the_same_400_page_and_changes_nothing(client, config):
    add_subscriber(config, "safe@example.com")
    sid = subscriber(config, "safe@example.com").id
    good = make_token(sid, UNSUBSCRIBE)
    altered = good[:-2] + ("AA" if not good.endswith("AA") else "BB")
    bad_tokens = ["", "x", altered, good + "A", good.upper(), make_token(sid, CONFIRM),
                  make_token(sid + 999, UNSUBSCRIBE), make_token(sid, UNSUBSCRIBE, b"k" * 32)]
    # For /confirm the wrong-purpose token is the unsubscribe one.
    bad_confirms = [good if t == make_token(sid, CONFIRM) else t for t in bad_tokens]
    bodies = set()
    for token, confirm_token in zip(bad_tokens, bad_confirms):
        for response in (client.get(f"/unsubscribe?t={token}"),
                         client.post(f"/unsubscribe?t={token}",
                                     data={"List-Unsubscribe": "One-Click"}),
                         client.get(f"/confirm?t={confirm_token}")):
            assert response.status_code == 400, token
            bodies.add(response.data)
    assert len(bodies) == 1
    assert b"This link isn\xe2\x80\x99t valid" in bodies.pop()
    assert subscriber(config, "safe@example.com").status == "subscribed"
    assert [k for _at, k, _s, _d in events(config, "safe@example.com")] == ["added"]


# -- configuration and the CLI --------------------------------------------------------------

def test_every_sentence_of_the_service_comes_from_the_theme(site_config, tmp_path):
    """A project's own web/pages.j2 and web/notices.j2 reword the pages and the emails."""
    from pressroom.theme import BUILTIN_THEMES

    config = with_mail(site_project(site_config.out, tmp_path), tmp_path / "words.sqlite3")
    ours = config.project / "themes" / "default" / "web"
    ours.mkdir(parents=True)
    for name, old, new in [("pages.j2", "Please check your inbox", "Look in your mailbox"),
                           ("notices.j2", "Please confirm your subscription to ",
                            "One click left to join ")]:
        text = (BUILTIN_THEMES / "default" / "web" / name).read_text(encoding="utf-8")
        assert old in text
        (ours / name).write_text(text.replace(old, new), encoding="utf-8")
    client = client_of(create_app(config, base_url="https://clinic.example"))
    response = post_signup(client, "words@example.com")
    assert response.status_code == 200 and h1(response) == "Look in your mailbox"
    [message] = outbox_messages(config, "words@example.com")
    assert message["Subject"] == "One click left to join Test Clinic’s newsletter"


def test_the_secret_key_comes_only_from_the_environment(config, monkeypatch):
    monkeypatch.delenv("PRESSROOM_SECRET_KEY")
    with pytest.raises(MailError, match="PRESSROOM_SECRET_KEY is not set"):
        create_app(config)
    result = CliRunner().invoke(serve, ["--project", str(config.project)])
    assert result.exit_code == 1 and "PRESSROOM_SECRET_KEY is not set" in result.output


def test_a_production_server_builds_the_app_from_the_environment(config, monkeypatch):
    monkeypatch.setenv("PRESSROOM_PROJECT", str(config.project))
    monkeypatch.setenv("PRESSROOM_OUT", str(config.out))
    monkeypatch.setenv("PRESSROOM_PROXIES", "1")
    app = create_app_from_env()
    client = client_of(app)
    assert client.get("/").status_code == 200
    # Behind one proxy the reader's address comes from X-Forwarded-For: the rate limit counts
    # 203.0.113.9, not the proxy's own 127.0.0.1 (the test client's address).
    r = client.post("/subscribe", data={"email": "p@example.com", "consent": "yes"},
                    headers={"Origin": "https://clinic.example", "X-Forwarded-For": "203.0.113.9",
                             "X-Forwarded-Proto": "https", "X-Forwarded-Host": "clinic.example"})
    assert r.status_code == 200
    service = app.extensions[EXTENSION]
    with service.store() as store:
        buckets = {b for (b,) in store.db.execute("SELECT bucket FROM rate_hits")}
    assert service.limiter.bucket("ip", "203.0.113.9") in buckets
    assert service.limiter.bucket("ip", "127.0.0.1") not in buckets
    monkeypatch.setenv("PRESSROOM_PROXIES", "some")
    with pytest.raises(MailError, match="PRESSROOM_PROXIES must be a whole number"):
        create_app_from_env()


def test_serve_has_help_with_examples():
    text = CliRunner().invoke(serve, ["--help"]).output
    assert "Examples:" in text and "gunicorn" in text and "--port" in text and "--host" in text


def test_an_smtp_failure_never_reaches_the_reader_and_the_email_stays_queued(site_config,
                                                                            tmp_path):
    with closed_port() as port:  # nobody listens there
        config = with_mail(site_config, tmp_path / "s.sqlite3", smtp_port=port)
        client = client_of(create_app(config))
        response = post_signup(client, "down@example.com")
        assert response.status_code == 200 and h1(response) == "Please check your inbox"
        result = flush_outbox(config)
    assert (result.sent, result.failed) == (0, 0) and result.waiting == 1


# -- rate limits, through a real server -----------------------------------------------------



def raw_post(url: str, path: str, body: str, headers: dict | None = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("POST", path, body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_200_rapid_signups_from_one_address_and_ip_are_rate_limited(site_config, tmp_path, smtp,
                                                                   live):
    config = with_mail(site_config, tmp_path / "rate.sqlite3", smtp_port=smtp.port)
    live.app = create_app(config, base_url=live.url)
    body = urlencode({"email": "flood@example.com", "first_name": "Flo", "consent": "yes"})
    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda _: raw_post(live.url, "/subscribe", body,
                                                   {"Origin": live.url}), range(200)))
    took = time.perf_counter() - started
    statuses = sorted(status for status, _ in results)
    assert statuses.count(200) == 3 and statuses.count(429) == 197, statuses  # 3 a day per address
    assert took < 20
    with open_store(mail_settings(config).store) as store:
        rows = store.db.execute("SELECT COUNT(*) FROM subscribers WHERE email_key = ?",
                                ("flood@example.com",)).fetchone()[0]
    assert rows == 1 and subscriber(config, "flood@example.com").status == "pending"
    # The confirmations go through the outbox (the web never waits on SMTP): once it is drained
    # the server has accepted each of them, exactly three.
    drain_outbox(config)
    assert len(smtp.inbox.to("flood@example.com")) == 3
    # The IP's budget (10 an hour) is spent too: another address from here is refused...
    other = urlencode({"email": "other@example.com", "consent": "yes"})
    assert raw_post(live.url, "/subscribe", other, {"Origin": live.url})[0] == 429
    # ...and the limits are kept in the store, so a restarted service remembers them.
    live.app = create_app(config, base_url=live.url)
    assert raw_post(live.url, "/subscribe", other, {"Origin": live.url})[0] == 429
    assert subscriber(config, "other@example.com") is None
    with open_store(mail_settings(config).store) as store:  # keys are stored hashed
        buckets = [b for (b,) in store.db.execute("SELECT bucket FROM rate_hits")]
    assert buckets and not any("flood" in b or "127.0.0.1" in b for b in buckets)


# -- the live preview -----------------------------------------------------------------------

@pytest.fixture(scope="module")
def preview(site_config, tmp_path_factory):
    """One preview per module: its first build is a full one (about 2.5 s)."""
    state = Preview(preview_project(site_config, tmp_path_factory.mktemp("preview")))
    state.rebuild()
    assert state.error is None and state.version == 1
    return state



def test_preview_page_shows_every_format(preview):
    client = client_of(create_preview_app(preview))
    page = client.get("/")
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and f'data-version="{preview.version}"' in html
    frames = re.findall(r'<iframe src="(/email/[^"]+)" width="(\d+)"', html)
    assert frames == [(f"/email/01-hello?scheme={scheme}", str(width))
                      for width, scheme in ((375, "light"), (375, "dark"), (800, "light"),
                                            (800, "dark"))]
    pages = re.findall(r'<img src="(/pdf/[^"]+\.png)"', html)
    assert f"/pdf/{SLUG}-handout.pdf/1.png" in pages
    assert f"/pdf/{SLUG}-quick-reference.pdf/1.png" in pages
    for src in pages:
        image = client.get(src)
        assert image.status_code == 200 and image.data[:8] == b"\x89PNG\r\n\x1a\n"
    chapters = re.findall(r'<a href="(/epub/[^"]+)" target="epub-reader">', html)
    assert len(chapters) >= 5
    for href in chapters:
        doc = client.get(href)
        assert doc.status_code == 200
        assert doc.headers["Content-Type"].startswith("application/xhtml+xml")
    css = re.search(r'<link href="([^"]+\.css)" rel="stylesheet"',
                    client.get(chapters[1]).get_data(as_text=True))
    assert css is not None, "a chapter links no stylesheet"
    sheet = client.get(urljoin(chapters[1], css.group(1)))  # relative, as in a reader
    assert sheet.status_code == 200 and sheet.headers["Content-Type"].startswith("text/css")
    assert b"{" in sheet.data
    assert client.get("/site/").status_code == 200
    assert client.get("/pdf/nope.pdf/1.png").status_code == 404
    assert client.get("/epub/../../etc/passwd").status_code == 404


def test_preview_emails_are_personalised_local_and_forced_dark(preview):
    client = client_of(create_preview_app(preview))
    light = client.get("/email/01-hello?scheme=light").get_data(as_text=True)
    dark = client.get("/email/01-hello?scheme=dark").get_data(as_text=True)
    assert re.search(r"<p[^>]*>Hi Alex,</p>", light) and "Hi there," not in light
    assert "{{" not in light and "https://clinic.example/newsletters/images/" not in light
    assert "/site/newsletters/images/logo.png" in light
    assert "prefers-color-scheme: dark" in light and "prefers-color-scheme: dark" not in dark
    assert force_scheme("@media (prefers-color-scheme: dark) {a{}}", "dark") == \
        "@media (min-width: 0px) {a{}}"
    assert client.get("/email/../../x").status_code == 404


def test_preview_rebuilds_when_content_changes_and_shows_errors(preview):
    stop, ready = threading.Event(), threading.Event()
    watcher = threading.Thread(target=preview.watch, args=(stop, ready), daemon=True)
    watcher.start()
    client = client_of(create_preview_app(preview))
    issue = preview.config.content_dir / "newsletters" / "01-hello.md"
    original = issue.read_text(encoding="utf-8")

    start = preview.version

    def wait_for_version(n: int) -> None:
        deadline = time.monotonic() + 30
        while preview.version < start + n and time.monotonic() < deadline:
            time.sleep(0.05)
        assert preview.version == start + n

    try:
        assert ready.wait(30), "the watch was never put in place"
        issue.write_text(original.replace("subject: Hello from the test clinic",
                                          "subject: A brand new subject"), encoding="utf-8")
        wait_for_version(1)
        assert preview.error is None
        assert "A brand new subject" in client.get("/").get_data(as_text=True)
        assert client.get("/__version").get_json() == {"version": start + 1, "error": None}
        issue.write_text(original.replace("number: 1", "number: one"), encoding="utf-8")
        wait_for_version(2)
        assert "01-hello.md" in preview.error
        html = client.get("/").get_data(as_text=True)
        assert 'role="alert"' in html and "01-hello.md" in html
        issue.write_text(original, encoding="utf-8")
        wait_for_version(3)
        assert preview.error is None
    finally:
        stop.set()
        watcher.join(timeout=10)
        issue.write_text(original, encoding="utf-8")


def test_preview_headers_allow_its_own_frames_only(preview):
    client = client_of(create_preview_app(preview))
    r = client.get("/")
    assert r.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert "frame-ancestors 'self'" in r.headers["Content-Security-Policy"]
    assert client.get("/preview.js").headers["Content-Type"].startswith("text/javascript")
    assert client.get("/preview.css").status_code == 200
    assert client.get("/preview.exe").status_code == 404


def test_preview_outside_a_project_is_a_config_error(tmp_path):
    """Sanity: a path that is not a project fails with the config error, not a traceback."""
    from pressroom.web.cli import preview

    result = CliRunner().invoke(preview, ["--project", str(tmp_path), "--port", "0"])
    assert result.exit_code == 1 and "publication.yaml: not found" in result.output


def test_form_tokens_are_bound_to_purpose_and_value_and_expire():
    from pressroom.web.guard import FormSigner

    signer = FormSigner(SECRET.encode(), max_age=60)
    token = signer.make("confirm", "abc")
    assert signer.check(token, "confirm", "abc")
    assert not signer.check(token, "confirm", "abd")
    assert not signer.check(token, "unsubscribe", "abc")
    assert not FormSigner(b"another key", max_age=60).check(token, "confirm", "abc")
    assert not FormSigner(SECRET.encode(), max_age=-1).check(token, "confirm", "abc")  # expired
