"""RFC 8058 one-click unsubscribe end to end, without a browser: a real campaign message over
SMTP, its List-Unsubscribe URL, then GET and one-click POSTs against the app on a real WSGI
server."""

from __future__ import annotations

import http.client
import re
from urllib.parse import urlsplit

import pytest
from sitetest import SECRET, events, site_project, subscriber, with_mail

from pressroom.mail.campaign import send_campaign
from pressroom.mail.subscribers import add_subscriber
from pressroom.web import create_app

# Every test here runs on both store backends (SQLite and PostgreSQL): tests/conftest.py.
pytestmark = pytest.mark.usefixtures("backend")


@pytest.fixture(autouse=True)
def secret_key(monkeypatch):
    monkeypatch.setenv("PRESSROOM_SECRET_KEY", SECRET)


@pytest.fixture
def config(minimal_out, tmp_path, smtp, live):
    """A fresh subscriber store, mail to the SMTP server, the app on the live server."""
    site = site_project(minimal_out, tmp_path / "site")
    config = with_mail(site, tmp_path / "subscribers.sqlite3", smtp_port=smtp.port)
    live.app = create_app(config, base_url=live.url)
    return config


def post(url: str, body: bytes, content_type: str | None) -> http.client.HTTPResponse:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    headers = {"Content-Type": content_type} if content_type else {}
    conn.request("POST", f"{parts.path}?{parts.query}", body=body, headers=headers)
    response = conn.getresponse()
    response.body = response.read()
    conn.close()
    return response


def test_one_click_unsubscribe_from_a_real_campaign_message(live, smtp, config):
    add_subscriber(config, "bea@example.com", first_name="Bea")
    result = send_campaign(config, "01-hello")
    assert result.sent_now == 1
    [message] = smtp.inbox.wait_for("bea@example.com")
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https = re.search(r"<(https://[^>]+)>", message["List-Unsubscribe"]).group(1)
    assert https.startswith("https://clinic.example/unsubscribe?t=")
    url = live.url + https[len("https://clinic.example"):]  # the same path, on this server
    one_click = (b"List-Unsubscribe=One-Click", "application/x-www-form-urlencoded")

    # A GET (what a link scanner does) shows the page and changes nothing.
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    conn.request("GET", f"{parts.path}?{parts.query}")
    got = conn.getresponse()
    assert got.status == 200 and b"Unsubscribe" in got.read()
    conn.close()
    assert subscriber(config, "bea@example.com").status == "subscribed"

    # An altered token: 400 and nothing changes.
    token = parts.query.split("t=", 1)[1]
    altered = url.replace(token, token[:-3] + ("xyz" if not token.endswith("xyz") else "abc"))
    assert post(altered, *one_click).status == 400
    assert subscriber(config, "bea@example.com").status == "subscribed"

    for attempt in range(2):  # the real one-click POST, then again: idempotent
        response = post(url, *one_click)
        assert response.status == 200, attempt
        assert response.getheader("Location") is None and response.getheader("Set-Cookie") is None
        assert "unsubscribed" in response.body.decode()
        assert subscriber(config, "bea@example.com").status == "unsubscribed"
    kinds = [(k, s) for _at, k, s, _ in events(config, "bea@example.com")]
    assert kinds.count(("unsubscribed", "web:one-click")) == 1
    assert post(url, b"", None).status == 200  # an empty body works too
