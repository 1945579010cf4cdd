"""Bounce processing: RFC 3464 reports from an mbox or a Maildir."""

from __future__ import annotations

import mailbox

import pytest
from click.testing import CliRunner
from mailtest import add_subscribers, config_of, subscriber_status

from pressroom.errors import MailError
from pressroom.mail.cli import bounces
from pressroom.mail.bounces import process_bounces
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import open_store

# Every test here runs on both store backends (SQLite and PostgreSQL): tests/conftest.py.
pytestmark = pytest.mark.usefixtures("backend")


def dsn(report_id: str, *recipients: tuple[str, str, str], original: str = "") -> bytes:
    """A delivery status notification; each recipient is (address, action, status); ``original``
    is the Message-ID of the returned message (one failed delivery)."""
    blocks = "".join(
        f"\nFinal-Recipient: rfc822; {addr}\nAction: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {status[0]}50 {status} mailbox problem\n"
        for addr, action, status in recipients)
    original = original or f"<{report_id}-original@juvenology.co.uk>"
    return (
        "From: MAILER-DAEMON@mx.example.com\nTo: newsletter@juvenology.co.uk\n"
        f"Subject: Undelivered Mail Returned to Sender\nMessage-ID: <{report_id}@mx.example.com>\n"
        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;\n"
        ' boundary="BOUNDARY"\n\n--BOUNDARY\nContent-Type: text/plain\n\nDelivery failed.\n\n'
        "--BOUNDARY\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n"
        f"{blocks}\n--BOUNDARY\nContent-Type: text/rfc822-headers\n\n"
        f"From: newsletter@juvenology.co.uk\nMessage-ID: {original}\nSubject: Welcome\n\n"
        "--BOUNDARY--\n").encode()


def arf(report_id: str, *, rcpt: str = "", original_id: str = "", to: str = "",
        feedback: str = "abuse") -> bytes:
    """An RFC 5965 feedback report about one of our messages."""
    rcpt_line = f"Original-Rcpt-To: {rcpt}\n" if rcpt else ""
    to_line = f"To: {to}\n" if to else ""
    return (
        "From: fbl@isp.example\nTo: abuse@juvenology.co.uk\nSubject: FW: complaint\n"
        f"Message-ID: <{report_id}@isp.example>\nMIME-Version: 1.0\n"
        "Content-Type: multipart/report; report-type=feedback-report; boundary=\"ARF\"\n\n"
        "--ARF\nContent-Type: text/plain\n\nThis is an email abuse report.\n\n"
        "--ARF\nContent-Type: message/feedback-report\n\n"
        f"Feedback-Type: {feedback}\nUser-Agent: ISP-FBL/1.0\nVersion: 1\n{rcpt_line}\n"
        "--ARF\nContent-Type: text/rfc822-headers\n\n"
        f"From: newsletter@juvenology.co.uk\n{to_line}Message-ID: {original_id or '<x@y>'}\n"
        "Subject: Welcome\n\n--ARF--\n").encode()


def mbox(path, *messages: bytes):
    box = mailbox.mbox(path)
    for message in messages:
        box.add(message)
    box.close()
    return path


def test_rfc3463_classes_decide_hard_soft_policy_and_not_a_bounce(outbox_project, tmp_path):
    a = add_subscribers(outbox_project, 9)
    path = mbox(tmp_path / "bounces.mbox",
                dsn("r1", (a[0], "failed", "5.1.1"), (a[1], "failed", "5.2.1")),
                dsn("r2", (a[2], "failed", "5.7.1"), (a[3], "failed", "5.6.0")),
                dsn("r3", (a[4], "delayed", "4.4.7"), (a[5], "relayed", "2.0.0"),
                    (a[6], "delivered", "2.0.0")),
                dsn("r4", (a[7], "failed", "5.1.8")),  # bad *sender* address: ours, not theirs
                dsn("r5", (a[8], "failed", "5.2.2")),  # mailbox full: soft
                b"From: someone@example.com\nSubject: out of office\n\nI am away.\n",
                dsn("r6", ("stranger@example.net", "failed", "5.1.1")))

    r = process_bounces(config_of(outbox_project), path)

    assert (r.messages, r.reports, r.not_reports) == (7, 6, 1)
    assert (r.hard, r.soft, r.policy, r.not_bounces, r.suppressed) == (3, 1, 3, 3, 3)
    assert subscriber_status(outbox_project, a[0]) == ("bounced", "hard_bounce")
    assert subscriber_status(outbox_project, a[1]) == ("bounced", "hard_bounce")
    for i in (2, 3, 4, 5, 6, 7, 8):  # wrongly suppressed: 0
        assert subscriber_status(outbox_project, a[i]) == ("subscribed", None), i
    with open_store(mail_settings(config_of(outbox_project)).store) as store:
        assert store.suppression("stranger@example.net") == "hard_bounce"
        assert store.find(a[8]).soft_bounces == 1
        assert [k for _at, k, _s, _d in store.events(store.find(a[2]).id)] == [
            "added", "bounce_policy"]


def test_soft_bounces_count_distinct_failed_deliveries_and_delays_never(outbox_project, tmp_path):
    a = add_subscribers(outbox_project, 2)
    path = mbox(tmp_path / "bounces.mbox",
                *[dsn(f"d{i}", (a[0], "delayed", "4.2.2")) for i in range(5)],
                dsn("s1", (a[1], "failed", "5.2.2"), original="<issue1@juvenology.co.uk>"),
                dsn("s2", (a[1], "failed", "5.2.2"), original="<issue1@juvenology.co.uk>"),
                dsn("s3", (a[1], "failed", "4.2.2"), original="<issue2@juvenology.co.uk>"))

    r = process_bounces(config_of(outbox_project), path)

    assert subscriber_status(outbox_project, a[0]) == ("subscribed", None)  # 5 delays: nothing
    assert (r.not_bounces, r.soft, r.suppressed) == (5, 3, 0)
    with open_store(mail_settings(config_of(outbox_project)).store) as store:
        assert store.find(a[1]).soft_bounces == 2  # the same delivery reported twice counts once
    mbox(path, dsn("s4", (a[1], "failed", "5.2.2"), original="<issue3@juvenology.co.uk>"))
    again = process_bounces(config_of(outbox_project), path)
    assert (again.already_processed, again.reports, again.suppressed) == (8, 1, 1)
    assert subscriber_status(outbox_project, a[1]) == ("bounced", "soft_bounce_limit")


def test_feedback_reports_mark_the_complainer_and_suppress(smtp_project, tmp_path, server):
    from pressroom.mail import send_campaign

    project = smtp_project
    a = add_subscribers(project, 4)
    send_campaign(config_of(project), "01-welcome")
    sent_id = {m.rcpt_tos[0]: m.message["Message-ID"] for m in server.recorder.messages}
    path = mbox(tmp_path / "fbl.mbox",
                arf("f1", rcpt=a[0]),                      # Original-Rcpt-To
                arf("f2", original_id=sent_id[a[1]]),      # recipient redacted: our Message-ID
                arf("f3", to=a[2]),                        # only the original To header
                arf("f4", rcpt=a[3], feedback="not-spam"))

    r = process_bounces(config_of(project), path)

    assert (r.reports, r.complaints, r.suppressed) == (4, 3, 3)
    for i in range(3):
        assert subscriber_status(project, a[i]) == ("complained", "complained")
    assert subscriber_status(project, a[3]) == ("subscribed", None)


def test_mail_to_the_unsubscribe_mailto_unsubscribes_its_sender(outbox_project, tmp_path):
    a = add_subscribers(outbox_project, 3)
    path = mbox(tmp_path / "in.mbox",
                f"From: Reader <{a[0].upper()}>\nTo: unsubscribe@juvenology.co.uk\n"
                "Subject: unsubscribe\nMessage-ID: <u1@example.com>\n\n".encode(),
                f"From: {a[1]}\nTo: unsubscribe@juvenology.co.uk\nAuto-Submitted: auto-replied\n"
                "Subject: Out of office\nMessage-ID: <u2@example.com>\n\nAway\n".encode(),
                f"From: {a[2]}\nTo: hello@juvenology.co.uk\nSubject: unsubscribe\n\n".encode())

    r = process_bounces(config_of(outbox_project), path)

    assert (r.unsubscribes, r.suppressed, r.not_reports) == (1, 1, 1)
    assert subscriber_status(outbox_project, a[0]) == ("unsubscribed", "unsubscribed")
    assert subscriber_status(outbox_project, a[1]) == ("subscribed", None)  # an auto-reply
    assert subscriber_status(outbox_project, a[2]) == ("subscribed", None)


def test_maildir_and_cli(outbox_project, tmp_path):
    a = add_subscribers(outbox_project, 2)
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    box.add(dsn("m1", (a[1], "failed", "5.2.1")))
    box.close()
    result = CliRunner().invoke(bounces, ["process", str(tmp_path / "Maildir"), "--project",
                                          str(outbox_project)])
    assert result.exit_code == 0, result.output
    assert result.output.endswith(
        "Maildir: 1 reports (0 already processed, 0 other messages): 1 hard, 0 soft, "
        "0 policy/content (nobody suppressed), 0 not bounces (delayed, relayed, delivered), "
        "0 complaints, 0 unsubscribe requests; 1 newly suppressed\n")
    assert subscriber_status(outbox_project, a[1]) == ("bounced", "hard_bounce")


def test_bad_paths_are_clear_errors(outbox_project, tmp_path):
    with pytest.raises(MailError, match="not found; give an mbox file or a Maildir folder"):
        process_bounces(config_of(outbox_project), tmp_path / "missing")
    with pytest.raises(MailError, match="is a folder but not a Maildir"):
        process_bounces(config_of(outbox_project), tmp_path)
