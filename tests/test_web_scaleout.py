"""The subscription service scales out: two app instances on one store (as two hosts behind a
load balancer would be) share form tokens, rate limits and the outbox through the database."""

from __future__ import annotations

import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from types import MappingProxyType

import pytest
from sitetest import ORIGIN_OK, client_of, site_project, subscriber, text_part, with_mail

from pressroom.mail.outbox import enqueue_notice, flush_outbox
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import open_store
from pressroom.web import create_app
from pressroom.web.guard import Limit

# Every test here runs on both store backends (SQLite and PostgreSQL): tests/conftest.py.
pytestmark = pytest.mark.usefixtures("backend", "secret")


@pytest.fixture
def secret(monkeypatch):
    from sitetest import SECRET

    monkeypatch.setenv("PRESSROOM_SECRET_KEY", SECRET)


@pytest.fixture
def config(minimal_out, tmp_path, smtp):
    site = site_project(minimal_out, tmp_path / "site")
    return with_mail(site, tmp_path / "subscribers.sqlite3", smtp_port=smtp.port)


def two_hosts(config, **options):
    """Two independent app instances on the same store (separate Config objects, as two hosts
    load the same publication.yaml)."""
    return [client_of(create_app(replace(config), base_url="https://clinic.example", **options))
            for _ in range(2)]


def signup(client, email: str):
    return client.post("/subscribe", data={"email": email, "first_name": "Ann",
                                           "consent": "yes", "website": ""},
                       headers={"Origin": ORIGIN_OK})


def drain(config) -> None:
    """Flush, then wait (deadline 10 s) until no notice is queued or being sent by a
    background sender."""
    flush_outbox(config)
    deadline = time.monotonic() + 10
    with open_store(mail_settings(config).store) as store:
        while (counts := store.notice_counts())["queued"] + counts["sending"]:
            assert time.monotonic() < deadline, counts
            time.sleep(0.01)


def test_a_form_token_from_one_host_is_accepted_by_the_other(config, smtp):
    first, second = two_hosts(config)
    assert signup(first, "ann@example.com").status_code == 200
    drain(config)
    [message] = smtp.inbox.wait_for("ann@example.com")
    link = re.search(r"https?://\S+/confirm\?t=[\w-]+", text_part(message)).group(0)
    token = link.split("t=", 1)[1]
    page = first.get(f"/confirm?t={token}").get_data(as_text=True)
    csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    answer = second.post("/confirm", data={"t": token, "csrf": csrf},
                         headers={"Origin": ORIGIN_OK})
    assert answer.status_code == 200
    assert subscriber(config, "ann@example.com").status == "subscribed"


def test_the_rate_limit_is_shared_by_both_hosts(config):
    hosts = two_hosts(config, limits=(Limit("ip", 4, 3600.0),))
    statuses = [signup(hosts[i % 2], f"r{i}@example.com").status_code for i in range(8)]
    assert statuses == [200] * 4 + [429] * 4  # 4 an hour from this IP, whichever host answers


def test_a_queued_confirmation_goes_out_exactly_once_with_several_outbox_workers(config, smtp):
    first, second = two_hosts(config, limits=())
    for i in range(20):
        assert signup((first, second)[i % 2], f"w{i}@example.com").status_code == 200
    more = [f"x{i}@example.com" for i in range(40)]
    for address in more:  # queued while every worker runs
        enqueue_notice(config, address, "Please confirm", None, "Confirm")
    start = threading.Barrier(4)

    def worker(_):
        start.wait()
        return flush_outbox(replace(config, smtp=MappingProxyType(dict(config.smtp)))).sent

    with ThreadPoolExecutor(max_workers=4) as pool:
        sent = sum(pool.map(worker, range(4)))
    drain(config)
    expected = [f"w{i}@example.com" for i in range(20)] + more
    counts = {a: len(smtp.inbox.to(a)) for a in expected}
    assert set(counts.values()) == {1}, {a: n for a, n in counts.items() if n != 1}
    assert sent <= len(expected)
    with open_store(mail_settings(config).store) as store:
        assert store.notice_counts() == {"queued": 0, "sending": 0, "sent": 60, "failed": 0}
