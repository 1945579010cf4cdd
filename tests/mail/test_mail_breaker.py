"""Campaign circuit-breakers: too many hard bounces or complaints pause a send until --resume."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from mailtest import add_subscribers, config_of, ledger, make_project, smtp_section

from pressroom.errors import MailError
from pressroom.mail import send_campaign
from pressroom.mail.cli import send, subscribers
from pressroom.mail.probes import rates_check
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import open_store

# Every test here runs on both store backends (SQLite and PostgreSQL): tests/conftest.py.
pytestmark = pytest.mark.usefixtures("backend")

ISSUE = "01-welcome"
REFUSED = "550 5.1.1 No such user"


def test_hard_bounces_over_5_percent_pause_until_resume(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    addresses = add_subscribers(project, 200)
    for address in addresses[9::10]:  # every tenth address does not exist: 10% hard bounces
        server.recorder.rcpt_replies[address] = [REFUSED]

    result = send_campaign(config_of(project), ISSUE)

    reason = ("circuit-breaker: hard bounces: 5 of the last 50 deliveries (10.0%, limit 5.0%); "
              "remove the bad addresses and find out where they came from; then run "
              f"`pressroom send {ISSUE} --resume`")
    assert result.paused == reason
    assert result.counts["sent"] == 45 and result.counts["failed"] == 5
    assert result.counts["pending"] == 150
    with pytest.raises(MailError) as refused:
        send_campaign(config_of(project), ISSUE)
    assert refused.value.message == f"campaign {ISSUE} is paused by its {reason}"
    assert server.recorder.count() == 45
    stats = CliRunner().invoke(subscribers, ["stats", "--project", str(project)])
    assert f"campaign {ISSUE} (paused: {reason})" in stats.output

    server.recorder.rcpt_replies.clear()  # the cause is fixed: the bad addresses are gone
    resumed = CliRunner().invoke(send, [ISSUE, "--project", str(project), "--resume",
                                        "--skip-doctor"])

    assert resumed.exit_code == 0, resumed.output
    assert f"{ISSUE} via 127.0.0.1:{server.port}: sent 195 (150 this run)" in resumed.output
    assert server.recorder.count() == 195
    assert {status for status, _, _ in ledger(project).values()} == {"sent", "failed"}


def test_complaints_over_0_3_percent_pause_the_campaign(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    addresses = add_subscribers(project, 120)
    store_path = mail_settings(config_of(project)).store

    def complaint_arrives(address):
        # A feedback report for an early reader is processed while the campaign runs.
        if address == addresses[30]:
            with open_store(store_path) as store, store.transaction():
                store.suppress(addresses[3], "complained", "arf:test", "abuse report")

    server.recorder.rcpt_hook = complaint_arrives
    result = send_campaign(config_of(project), ISSUE)

    assert result.paused == (
        "circuit-breaker: spam complaints: 1 of the last 50 deliveries (2.0%, limit 0.3%); "
        "check that everyone on the list asked for this newsletter; then run "
        f"`pressroom send {ISSUE} --resume`")
    assert result.counts["sent"] == 50


def test_rates_under_the_limits_do_not_pause(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    addresses = add_subscribers(project, 200)
    for address in addresses[19::20]:  # 5% exactly is not over the limit
        server.recorder.rcpt_replies[address] = [REFUSED]

    result = send_campaign(config_of(project), ISSUE)

    assert not result.paused and result.counts["failed"] == 10 and result.counts["sent"] == 190


def test_doctor_reports_a_past_campaigns_bounce_rate(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server), {"breaker_window": 1000})
    addresses = add_subscribers(project, 40)
    send_campaign(config_of(project), ISSUE)
    settings = mail_settings(config_of(project))
    with open_store(settings.store) as store, store.transaction():
        for address in addresses[:3]:  # three bounce reports arrive after the send
            store.suppress(address, "hard_bounce", "bounces:test", "5.1.1")

    check = rates_check(settings, settings.max_hard_bounce_rate, settings.max_complaint_rate)

    assert check.lines() == [
        f"FAIL campaign rates: {ISSUE} is over the limits (hard bounces 5%, complaints 0.3%)",
        f"  read: {ISSUE}: 40 delivered, 3 hard bounces (7.5%), 0 complaints (0.00%)",
        "  fix: clean the list (remove old or bought addresses, confirm sign-ups) before the "
        "next campaign"]
