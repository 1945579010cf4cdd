"""The web service never waits on SMTP: notices go to the durable outbox, sent by the background
sender or `pressroom outbox flush`, with retries. Plus the sign-up form's input limits."""

from __future__ import annotations

import socket
import statistics
import time
from dataclasses import replace
from types import MappingProxyType

import pytest
from click.testing import CliRunner
from mailtest import config_of, make_project, smtp_section

from pressroom.mail.cli import outbox
from pressroom.mail.outbox import enqueue_notice, flush_outbox
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import open_store

# Every test here runs on both store backends (SQLite and PostgreSQL): tests/conftest.py.
pytestmark = pytest.mark.usefixtures("backend")

ORIGIN = {"Origin": "https://www.juvenology.co.uk"}


def signup(client, email: str, first_name: str = "Ann"):
    return client.post("/subscribe", data={"email": email, "first_name": first_name,
                                           "consent": "yes"}, headers=ORIGIN)


def notices(project) -> dict[str, int]:
    with open_store(mail_settings(config_of(project)).store) as store:
        return store.notice_counts()


def web_client(project):
    from pressroom.web import create_app

    return create_app(config_of(project)).test_client()


def test_signup_answers_at_once_while_the_relay_hangs_and_the_email_waits(tmp_path, server):
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(16)  # connections complete in the backlog; no greeting ever comes
    try:
        project = make_project(tmp_path, {"host": "127.0.0.1", "port": hung.getsockname()[1],
                                          "security": "none", "timeout": 5})
        client = web_client(project)
        assert signup(client, "first@example.com").status_code == 200  # compiles the templates
        took = []
        for i in range(5):
            started = time.perf_counter()
            response = signup(client, f"reader{i}@example.com")
            took.append(time.perf_counter() - started)
            assert response.status_code == 200
        print(f"POST /subscribe with a hanging relay: median {statistics.median(took) * 1000:.0f} "
              f"ms, max {max(took) * 1000:.0f} ms")
        assert max(took) < 2.0  # functional check only: nothing waits on the 5 s SMTP timeout
        assert sum(notices(project).values()) == 6 and notices(project)["sent"] == 0
    finally:
        hung.close()

    # The relay is back (another server here): one flush sends each queued email exactly once.
    config = replace(config_of(project), smtp=MappingProxyType(smtp_section(server)))
    deadline = time.monotonic() + 20
    while notices(project)["sending"]:  # the background sender's claim on the hung relay
        assert time.monotonic() < deadline
        time.sleep(0.05)
    result = flush_outbox(config, clock=lambda: time.time() + 7200)  # past every backoff
    assert result.sent == 6 and result.waiting == 0
    assert server.recorder.by_recipient() == {
        "first@example.com": 1, **{f"reader{i}@example.com": 1 for i in range(5)}}


def test_temporary_failures_are_retried_and_permanent_ones_fail(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    server.recorder.rcpt_replies["later@example.com"] = ["451 4.3.0 Try again later"]
    server.recorder.rcpt_replies["nobody@example.com"] = ["550 5.1.1 No such user"]
    config = config_of(project)
    for address in ("later@example.com", "nobody@example.com"):
        enqueue_notice(config, address, "Please confirm", None, "Confirm")
    now = [time.time() + 10]
    deadline = time.monotonic() + 20
    while notices(project)["queued"] + notices(project)["sending"] and \
            notices(project)["failed"] == 0:
        assert time.monotonic() < deadline
        flush_outbox(config, clock=lambda: now[0])
        now[0] += 3600
    flush_outbox(config, clock=lambda: now[0] + 7200)
    assert notices(project) == {"queued": 0, "sending": 0, "sent": 1, "failed": 1}
    assert server.recorder.by_recipient() == {"later@example.com": 1}
    run = CliRunner().invoke(outbox, ["flush", "--project", str(project)])
    assert run.exit_code == 0 and run.output == (
        "outbox: sent 0, deferred 0, failed 0, still queued 0\n")


def test_oversized_bodies_get_413(tmp_path):
    client = web_client(make_project(tmp_path))
    response = client.post("/subscribe", data={"email": "a@example.com", "consent": "yes",
                                               "first_name": "x" * 70_000}, headers=ORIGIN)
    assert response.status_code == 413


def test_plus_tags_and_case_share_one_signup_budget(tmp_path):
    client = web_client(make_project(tmp_path))
    answers = [signup(client, address).status_code for address in (
        "ann+1@example.com", "ANN+news@Example.com", "ann@example.com", "Ann+x@example.com")]
    assert answers == [200, 200, 200, 429]


@pytest.mark.parametrize("name", ["Ann\x0bx", "Ann\x1b[31m", "Ann\x85", "Ann\x9b", "A\x7f"])
def test_control_characters_in_a_web_signup_are_refused(tmp_path, name):
    project = make_project(tmp_path)
    response = signup(web_client(project), "ctl@example.com", first_name=name)
    assert response.status_code == 400
    assert "can’t contain line breaks or control characters" in response.get_data(as_text=True)
    assert sum(notices(project).values()) == 0


def test_what_an_earlier_process_left_queued_is_sent_when_the_app_starts(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    with open_store(mail_settings(config_of(project)).store) as store, store.transaction():
        store.enqueue_notice("left@example.com", "<q1@juvenology.co.uk>",
                             b"From: newsletter@juvenology.co.uk\r\nTo: left@example.com\r\n"
                             b"Subject: Please confirm\r\n\r\nConfirm\r\n")
    web_client(project)  # starting the app starts the background sender
    deadline = time.monotonic() + 20
    while notices(project)["sent"] == 0:
        assert time.monotonic() < deadline, notices(project)
        time.sleep(0.02)
    assert server.recorder.by_recipient() == {"left@example.com": 1}


def test_a_sender_whose_lease_ran_out_cannot_overwrite_the_notice_it_lost(tmp_path):
    """A slow sender's late "queued again" must not undo what the sender that took the notice
    over recorded: that re-queued an already sent notice, and it went out twice."""
    project = make_project(tmp_path)
    config = config_of(project)
    with open_store(mail_settings(config).store) as store, store.transaction():
        store.enqueue_notice("ann@example.com", "<1@example.com>", b"Subject: hi\r\n\r\nhi\r\n")
    with open_store(mail_settings(config).store) as store:
        now = time.time()
        slow = store.claim_notice(now, 600)
        assert slow is not None and store.claim_notice(now, 600) is None  # held by its lease
        late = store.claim_notice(now + 700, 600)  # the lease ran out: another sender takes it
        assert late is not None and late[0] == slow[0]
        assert store.finish_notice(late[0], late[4], "sent", "250 OK", 1)
        assert not store.finish_notice(slow[0], slow[4], "queued", "421 busy", 1, now + 60)
        assert store.notice_counts() == {"queued": 0, "sending": 0, "sent": 1, "failed": 0}
        assert store.claim_notice(now + 7200, 600) is None  # nothing left to send again
