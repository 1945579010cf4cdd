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


def dsn(report_id: str, *recipients: tuple[str, str, str]) -> bytes:
    """A delivery status notification; each recipient is (address, action, status)."""
    blocks = "".join(
        f"\nFinal-Recipient: rfc822; {addr}\nAction: {action}\nStatus: {status}\n"
        f"Diagnostic-Code: smtp; {status[0]}50 {status} mailbox problem\n"
        for addr, action, status in recipients)
    return (
        "From: MAILER-DAEMON@mx.example.com\nTo: newsletter@juvenology.co.uk\n"
        f"Subject: Undelivered Mail Returned to Sender\nMessage-ID: <{report_id}@mx.example.com>\n"
        "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status;\n"
        ' boundary="BOUNDARY"\n\n--BOUNDARY\nContent-Type: text/plain\n\nDelivery failed.\n\n'
        "--BOUNDARY\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; mx.example.com\n"
        f"{blocks}\n--BOUNDARY\nContent-Type: text/rfc822-headers\n\n"
        "From: newsletter@juvenology.co.uk\nSubject: Welcome\n\n--BOUNDARY--\n").encode()


def mbox(path, *messages: bytes):
    box = mailbox.mbox(path)
    for message in messages:
        box.add(message)
    box.close()
    return path


def test_hard_bounce_suppresses_and_soft_bounces_count_to_the_limit(outbox_project, tmp_path):
    a = add_subscribers(outbox_project, 4)
    path = mbox(tmp_path / "bounces.mbox",
                dsn("r1", (a[0], "failed", "5.1.1"), (a[1], "delayed", "4.4.1")),
                dsn("r2", (a[1], "failed", "4.2.2")),
                dsn("r3", (a[2], "delayed", "4.4.7")),
                b"From: someone@example.com\nSubject: out of office\n\nI am away.\n",
                dsn("r4", ("stranger@example.net", "failed", "5.1.1")))

    result = process_bounces(config_of(outbox_project), path)

    assert (result.messages, result.reports, result.not_reports) == (5, 4, 1)
    assert (result.hard, result.soft, result.suppressed) == (2, 3, 2)
    assert subscriber_status(outbox_project, a[0]) == ("bounced", "hard_bounce")
    assert subscriber_status(outbox_project, a[1]) == ("subscribed", None)
    assert subscriber_status(outbox_project, a[3]) == ("subscribed", None)
    with open_store(mail_settings(config_of(outbox_project)).store) as store:
        assert store.find(a[1]).soft_bounces == 2
        assert store.suppression("stranger@example.net") == "hard_bounce"

    mbox(path, dsn("r5", (a[1], "delayed", "4.4.1")))
    again = process_bounces(config_of(outbox_project), path)
    assert (again.already_processed, again.reports, again.soft, again.suppressed) == (4, 1, 1, 1)
    assert subscriber_status(outbox_project, a[1]) == ("bounced", "soft_bounce_limit")


def test_maildir_and_cli(outbox_project, tmp_path):
    a = add_subscribers(outbox_project, 2)
    box = mailbox.Maildir(tmp_path / "Maildir", create=True)
    box.add(dsn("m1", (a[1], "failed", "5.2.1")))
    box.close()
    result = CliRunner().invoke(bounces, ["process", str(tmp_path / "Maildir"), "--project",
                                          str(outbox_project)])
    assert result.exit_code == 0, result.output
    assert result.output.endswith("Maildir: 1 reports (0 already processed, 0 other messages): "
                                  "1 hard, 0 soft, 1 newly suppressed\n")
    assert subscriber_status(outbox_project, a[1]) == ("bounced", "hard_bounce")


def test_bad_paths_are_clear_errors(outbox_project, tmp_path):
    with pytest.raises(MailError, match="not found; give an mbox file or a Maildir folder"):
        process_bounces(config_of(outbox_project), tmp_path / "missing")
    with pytest.raises(MailError, match="is a folder but not a Maildir"):
        process_bounces(config_of(outbox_project), tmp_path)
