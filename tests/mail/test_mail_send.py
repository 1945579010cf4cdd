"""Sending against a real aiosmtpd server: the 1,000-message bar, DKIM, faults, pacing, modes."""

from __future__ import annotations

import re
import time

import dkim
import pytest
from click.testing import CliRunner
from mailtest import (add_subscribers, config_of, ledger, make_project, smtp_section,
                      subscriber_status)

from pressroom.errors import MailError
from pressroom.mail import send_campaign, send_transactional, verify_token
from pressroom.mail.cli import send
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import open_store

# Every test here runs on both store backends (SQLite and PostgreSQL): tests/conftest.py.
pytestmark = pytest.mark.usefixtures("backend")

ISSUE = "01-welcome"
UNSUB = re.compile(r"^<https://www\.juvenology\.co\.uk/unsubscribe\?t=([A-Za-z0-9_-]+)>, "
                   r"<mailto:unsubscribe@juvenology\.co\.uk\?subject=unsubscribe>$")


def test_thousand_subscribers_get_exactly_one_signed_message_each(tmp_path, server, dkim_key):
    key_file, txt_record = dkim_key
    project = make_project(tmp_path, smtp_section(server, dkim={
        "domain": "juvenology.co.uk", "selector": "news", "key_file": str(key_file)}))
    addresses = add_subscribers(project, 1000)

    result = send_campaign(config_of(project), ISSUE)

    assert result.counts["sent"] == 1000 and result.sent_now == 1000 and not result.paused
    assert server.recorder.count() == 1000
    assert server.recorder.by_recipient() == dict.fromkeys(addresses, 1)
    with open_store(mail_settings(config_of(project)).store) as store:
        ids = {s.email: s.id for s in store.iter_subscribers()}
    message_ids = set()

    def dns(name, timeout=5):
        assert name == b"news._domainkey.juvenology.co.uk."
        return txt_record

    for received in server.recorder.messages:
        msg = received.message
        for header in ("From", "To", "Subject", "Date", "Message-ID"):
            assert len(msg.get_all(header)) == 1, header
        assert msg["From"].addresses[0].addr_spec == "newsletter@juvenology.co.uk"
        assert msg["To"].addresses[0].addr_spec == received.rcpt_tos[0]
        assert msg["Subject"] == "Welcome to facial yoga — week 1"
        assert msg["Message-ID"].endswith("@juvenology.co.uk>")
        message_ids.add(msg["Message-ID"])
        assert msg.get_content_type() == "multipart/alternative"
        assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]
        match = UNSUB.match(msg["List-Unsubscribe"])
        assert match, msg["List-Unsubscribe"]
        assert verify_token(match.group(1), "unsubscribe") == ids[received.rcpt_tos[0]]
        assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert msg["List-Id"] == ('"Nurse Marina at Juvenology Clinic" '
                                  "<facial-yoga.juvenology.co.uk>")
        signature = msg["DKIM-Signature"]
        assert "list-unsubscribe :" in signature and "list-unsubscribe-post" in signature
        assert dkim.verify(received.data, dnsfunc=dns), received.rcpt_tos
        text = msg.get_body(("plain",)).get_content()
        number = int(received.rcpt_tos[0][6:11])
        assert text.startswith(f"Hi Reader{number},")
        assert "\n.A line starting with a dot" in text  # dot-stuffing undone by the server
        assert "{{" not in text and "{{" not in msg.get_body(("html",)).get_content()
    assert len(message_ids) == 1000


def test_421_at_message_100_reconnects_and_completes(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    addresses = add_subscribers(project, 120)
    server.recorder.close_with_421_at = 100

    result = send_campaign(config_of(project), ISSUE)

    assert result.counts["sent"] == 120 and not result.paused
    assert server.recorder.by_recipient() == dict.fromkeys(addresses, 1)
    assert server.recorder.connections == 2
    rows = ledger(project)
    assert rows[addresses[99]][:2] == ("sent", 2)
    assert {rows[a][1] for a in addresses[:99] + addresses[100:]} == {1}


def test_451_for_one_address_is_retried_and_never_marked_sent_early(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    addresses = add_subscribers(project, 10)
    greylisted = addresses[3]
    server.recorder.rcpt_replies[greylisted] = ["451 4.7.1 Greylisted, try again"] * 2
    seen = []
    server.recorder.rcpt_hook = lambda addr: addr == greylisted and seen.append(
        ledger(project)[addr][:2])

    result = send_campaign(config_of(project), ISSUE)

    # Its ledger row at each RCPT: first attempt, then two retries, never 'sent' before the 250.
    assert seen == [("pending", 0), ("retry", 1), ("retry", 2)]
    assert ledger(project)[greylisted][:2] == ("sent", 3)
    assert result.counts["sent"] == 10
    assert server.recorder.by_recipient() == dict.fromkeys(addresses, 1)


def test_451_forever_defers_then_pauses_without_failing_or_suppressing(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server), mail={"retry_window": 60})
    addresses = add_subscribers(project, 4)
    server.recorder.rcpt_replies[addresses[0]] = ["451 4.3.0 Mailbox busy"] * 100
    clock = [1_000_000.0]

    result = send_campaign(config_of(project), ISSUE, clock=lambda: clock[0],
                           sleep=lambda s: clock.__setitem__(0, clock[0] + s))

    status, attempts, reply = ledger(project)[addresses[0]]
    assert status == "retry" and attempts > 3 and reply == "451 4.3.0 Mailbox busy"
    assert result.paused_kind == "transient" and result.counts["failed"] == 0
    assert result.paused.startswith("1 recipient(s) deferred by temporary errors and nothing "
                                    "accepted for 60 s (last reply: 451 4.3.0 Mailbox busy)")
    assert subscriber_status(project, addresses[0]) == ("subscribed", None)
    assert result.counts["sent"] == 3 and server.recorder.count() == 3


def test_550_for_one_address_fails_and_suppresses_only_that_one(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    addresses = add_subscribers(project, 10)
    server.recorder.rcpt_replies[addresses[5]] = ["550 5.1.1 No such user here"]

    result = send_campaign(config_of(project), ISSUE)

    assert result.counts == {"pending": 0, "sending": 0, "sent": 9, "retry": 0, "failed": 1,
                             "unknown": 0, "skipped": 0}
    assert result.failed == [(addresses[5], "550 5.1.1 No such user here")]
    assert subscriber_status(project, addresses[5]) == ("bounced", "rejected")
    assert all(subscriber_status(project, a) == ("subscribed", None)
               for a in addresses if a != addresses[5])
    received = server.recorder.by_recipient()
    assert addresses[5] not in received and len(received) == 9
    server.recorder.reset()
    send_campaign(config_of(project), "02-spring")
    assert addresses[5] not in server.recorder.by_recipient()
    assert server.recorder.count() == 9


def test_drop_after_data_leaves_recipient_unknown_and_not_resent(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    addresses = add_subscribers(project, 6)
    server.recorder.drop_after_data.add(addresses[2])

    result = send_campaign(config_of(project), ISSUE)

    assert result.counts["unknown"] == 1 and result.counts["sent"] == 5
    assert [a for a, _ in result.unknown] == [addresses[2]]
    assert ledger(project)[addresses[2]][0] == "unknown"
    assert server.recorder.by_recipient() == dict.fromkeys(addresses, 1)

    server.recorder.drop_after_data.clear()
    again = send_campaign(config_of(project), ISSUE)
    assert again.sent_now == 0 and [a for a, _ in again.unknown] == [addresses[2]]
    assert server.recorder.count() == 6

    resent = send_campaign(config_of(project), ISSUE, resend_unknown=True)
    assert resent.requeued_unknown == 1 and resent.sent_now == 1 and not resent.unknown
    assert server.recorder.by_recipient()[addresses[2]] == 2


def test_policy_rejection_pauses_campaign_and_suppresses_nobody(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    addresses = add_subscribers(project, 5)
    server.recorder.policy_reject = True

    run = CliRunner().invoke(send, [ISSUE, "--project", str(project), "--skip-doctor"])

    assert run.exit_code == 75
    assert ("Error: campaign paused: the server refused the message itself (554 5.7.1 Message "
            "rejected as spam by content filter); nobody was suppressed.") in run.output
    assert f"run `pressroom send {ISSUE}` again to resume" in run.output
    assert {row[0] for row in ledger(project).values()} == {"pending"}
    assert all(subscriber_status(project, a) == ("subscribed", None) for a in addresses)
    assert server.recorder.count() == 0

    server.recorder.policy_reject = False
    result = send_campaign(config_of(project), ISSUE)
    assert result.counts["sent"] == 5
    assert server.recorder.by_recipient() == dict.fromkeys(addresses, 1)


def test_unreachable_server_pauses_after_bounded_attempts(tmp_path):
    from mailtest import closed_port

    clock, sleeps = [0.0], []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    with closed_port() as port:
        project = make_project(tmp_path, {"host": "127.0.0.1", "port": port, "security": "none",
                                          "timeout": 2}, mail={"retry_window": 1})
        add_subscribers(project, 3)
        result = send_campaign(config_of(project), ISSUE, clock=lambda: clock[0], sleep=sleep)
    assert 3 < len(sleeps) < 10 and sum(sleeps) <= 1  # doubling from 0.01 s within the window
    assert result.paused_kind == "transient"
    assert result.paused.startswith("cannot reach the SMTP server 127.0.0.1:")
    assert "check smtp.host and smtp.port, then run the command again to resume" in result.paused
    assert {row[0] for row in ledger(project).values()} == {"pending"}


def test_rate_limit_holds_across_restarts(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server, rate=0.5))
    add_subscribers(project, 1)
    sleeps: list[float] = []
    send_campaign(config_of(project), ISSUE, sleep=sleeps.append)
    assert sleeps == []  # nothing sent before: no wait
    send_campaign(config_of(project), "02-spring", sleep=sleeps.append)
    assert len(sleeps) == 1 and 1.5 < sleeps[0] <= 2.0  # 1/rate after the previous run's message


def test_rate_option_spaces_messages(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    add_subscribers(project, 6)
    started = time.monotonic()
    send_campaign(config_of(project), ISSUE, rate=20)
    assert time.monotonic() - started >= 0.25  # five gaps of 50 ms


def test_hourly_cap_holds_across_restarts(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server, hourly_cap=3))
    add_subscribers(project, 5)
    clock = [time.time()]
    sleeps: list[float] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        clock[0] += seconds

    first = send_campaign(config_of(project), ISSUE, clock=lambda: clock[0], sleep=sleep)
    assert first.counts["sent"] == 5
    assert len(sleeps) == 1 and sleeps[0] == pytest.approx(3600, abs=1)
    clock[0] += 10
    sleeps.clear()
    second = send_campaign(config_of(project), "02-spring", clock=lambda: clock[0], sleep=sleep)
    assert second.counts["sent"] == 5
    # Three went out in the last hour (after the wait): the new run waits for the window first.
    assert sleeps and sleeps[0] == pytest.approx(3600 - 10, abs=1)


def test_outbox_is_the_embedded_default(outbox_project):
    addresses = add_subscribers(outbox_project, 3)
    run = CliRunner().invoke(send, [ISSUE, "--project", str(outbox_project)])
    assert run.exit_code == 0, run.output
    folder = outbox_project / "output" / "outbox" / ISSUE
    files = sorted(p.name for p in folder.glob("*.eml"))
    assert files == [f"{i:06d}-{a}.eml" for i, a in enumerate(addresses, 1)]
    assert (f"{ISSUE} via {folder}: sent 3 (3 this run), deferred 0, failed 0, unknown 0"
            in run.output)
    again = CliRunner().invoke(send, [ISSUE, "--project", str(outbox_project)])
    assert "sent 3 (0 this run)" in again.output


def test_test_copy_is_marked_and_outside_the_ledger(smtp_project, server):
    add_subscribers(smtp_project, 2)
    run = CliRunner().invoke(send, [ISSUE, "--project", str(smtp_project), "--test",
                                    "Editor@Example.org"])
    assert run.exit_code == 0, run.output
    assert server.recorder.count() == 1
    msg = server.recorder.messages[0].message
    assert msg["Subject"] == "[TEST] Welcome to facial yoga — week 1"
    assert server.recorder.messages[0].rcpt_tos == ["Editor@example.org"]
    assert msg.get_body(("plain",)).get_content().startswith("Hi there,")
    assert ledger(smtp_project) == {}


def test_dry_run_renders_everything_and_sends_nothing(smtp_project, server):
    add_subscribers(smtp_project, 4)
    run = CliRunner().invoke(send, [ISSUE, "--project", str(smtp_project), "--dry-run"])
    assert run.exit_code == 0, run.output
    assert "dry run: rendered 4 messages for 01-welcome, sent nothing" in run.output
    assert server.recorder.count() == 0 and ledger(smtp_project) == {}


def test_tag_limits_the_audience_and_a_later_tagless_run_adds_the_rest_once(smtp_project, server):
    addresses = add_subscribers(smtp_project, 6, tag_every=3)  # 0 and 3 are vip
    first = send_campaign(config_of(smtp_project), ISSUE, tag="VIP")
    assert first.counts["sent"] == 2
    assert sorted(server.recorder.by_recipient()) == [addresses[0], addresses[3]]
    send_campaign(config_of(smtp_project), ISSUE)
    assert server.recorder.by_recipient() == dict.fromkeys(addresses, 1)


def test_subject_with_line_break_is_refused_before_sending(smtp_project, server):
    add_subscribers(smtp_project, 1)
    meta = smtp_project / "output" / "newsletters" / f"{ISSUE}.json"
    meta.write_text('{"slug": "01-welcome", "subject": "Hello\\r\\nBcc: everyone@example.com"}')
    with pytest.raises(MailError, match=r"the subject contains a line break \(CR or LF\)"):
        send_campaign(config_of(smtp_project), ISSUE)
    assert server.recorder.count() == 0


def test_missing_issue_names_the_built_ones(smtp_project):
    with pytest.raises(MailError, match=r"02-nope.json not found; run `pressroom build` first "
                                        r"and give the issue slug \(built issues: 01-welcome, "
                                        r"02-spring\)"):
        send_campaign(config_of(smtp_project), "02-nope")


def test_missing_secret_key_is_a_clear_error(smtp_project, monkeypatch):
    monkeypatch.delenv("PRESSROOM_SECRET_KEY")
    with pytest.raises(MailError, match="PRESSROOM_SECRET_KEY is not set; unsubscribe links are "
                                        "signed with it"):
        send_campaign(config_of(smtp_project), ISSUE)


def test_transactional_mail_has_no_list_headers(smtp_project, server):
    message_id = send_transactional(config_of(smtp_project), "new@example.com", "Please confirm",
                                    "<p>Confirm</p>", "Confirm")
    msg = server.recorder.messages[0].message
    assert msg["Message-ID"] == message_id and msg["Subject"] == "Please confirm"
    assert msg["List-Unsubscribe"] is None and msg["List-Id"] is None


def test_transactional_mail_goes_to_the_outbox_without_smtp(outbox_project):
    send_transactional(config_of(outbox_project), "new@example.com", "Please confirm", None, "Hi")
    files = list((outbox_project / "output" / "outbox" / "transactional").glob("*.eml"))
    assert len(files) == 1 and b"Subject: Please confirm" in files[0].read_bytes()


def test_the_real_build_output_sends_fully_personalised(tmp_path, server):
    """End to end with the repository's own content: `pressroom build` output, then send."""
    import html
    import shutil
    from pathlib import Path

    import yaml

    from pressroom.build import build

    project = tmp_path / "demo"
    shutil.copytree(Path(__file__).resolve().parents[2] / "content", project / "content")
    with (project / "content" / "publication.yaml").open("a", encoding="utf-8") as fh:
        fh.write(yaml.safe_dump({"smtp": smtp_section(server)}))
    build(config_of(project), formats=("email",))
    addresses = add_subscribers(project, 2)
    issues = sorted(p.stem for p in (project / "output" / "newsletters").glob("*.json"))
    assert issues

    for issue in issues:
        assert send_campaign(config_of(project), issue).counts["sent"] == 2

    assert server.recorder.by_recipient() == dict.fromkeys(addresses, len(issues))
    for received in server.recorder.messages:
        msg = received.message
        text = msg.get_body(("plain",)).get_content()
        body = msg.get_body(("html",)).get_content()
        url = UNSUB.match(msg["List-Unsubscribe"]).group(0).split(">")[0][1:]
        for part in (text, body):
            assert "{{" not in part
        assert url in text and html.escape(url) in body
        number = int(received.rcpt_tos[0][6:11])
        assert f"Reader{number}" in text and f"Reader{number}" in body


def test_the_dry_run_and_the_send_agree_on_who_gets_the_issue(smtp_project, server):
    from pressroom.mail.subscribers import unsubscribe

    addresses = add_subscribers(smtp_project, 9, tag_every=2)  # 0, 2, 4, 6, 8 are vip
    config = config_of(smtp_project)
    unsubscribe(config, addresses[2])
    with open_store(mail_settings(config).store) as store, store.transaction():
        store.db.execute("INSERT INTO suppressions (email_key, reason, source, created_at) "
                         "VALUES (?, 'hard_bounce', 'test', 'now')", (addresses[4],))

    dry = send_campaign(config, ISSUE, tag="vip", dry_run=True)
    real = send_campaign(config, ISSUE, tag="vip")

    assert dry.rendered == real.counts["sent"] == 3
    assert sorted(server.recorder.by_recipient()) == [addresses[0], addresses[6], addresses[8]]
