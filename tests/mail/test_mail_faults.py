"""Faults a campaign must survive: long 4xx outages (injected clock), unsubscribes mid-campaign,
--retry-failed, and unattended progress lines. The counts feed README's "Faults survived"."""

from __future__ import annotations

import pytest
import logging

from click.testing import CliRunner
from mailtest import add_subscribers, config_of, ledger, make_project, smtp_section

from pressroom.mail import send_campaign
from pressroom.mail.cli import send, subscribers
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import open_store
from pressroom.mail.tokens import UNSUBSCRIBE, make_token

# Every test here runs on both store backends (SQLite and PostgreSQL): tests/conftest.py.
pytestmark = pytest.mark.usefixtures("backend")

ISSUE = "01-welcome"


class Outage:
    """An SMTP outage on an injected clock: after ``after`` accepted messages the server answers
    every RCPT with 421 or 451 (alternately) for ``seconds`` of the fake clock."""

    def __init__(self, server, after: int, seconds: float) -> None:
        self.server, self.after, self.seconds = server, after, seconds
        self.now = 1_800_000_000.0
        self.start: float | None = None
        self.refusals = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def reply(self, address: str) -> str | None:
        if self.start is None and self.server.recorder.count() >= self.after:
            self.start = self.now
        if self.start is not None and self.now < self.start + self.seconds:
            self.refusals += 1
            return ("421 4.3.2 Service not available, closing channel" if self.refusals % 2
                    else "451 4.3.0 Temporary local problem, try later")
        return None


def test_a_20_minute_outage_of_421_and_451_loses_and_duplicates_nobody(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server), mail={"retry_backoff": 30})
    addresses = add_subscribers(project, 40)
    outage = Outage(server, after=10, seconds=20 * 60)
    server.recorder.rcpt_reply_fn = outage.reply
    started = outage.now

    result = send_campaign(config_of(project), ISSUE, clock=outage.clock, sleep=outage.sleep)

    assert outage.now - started >= 20 * 60 and outage.refusals >= 30 * 5
    assert result.paused is None and result.counts["failed"] == 0
    assert result.counts["sent"] == 40
    assert server.recorder.by_recipient() == dict.fromkeys(addresses, 1)  # lost 0, duplicates 0
    attempts = [row[1] for row in ledger(project).values()]
    assert max(attempts) >= 5  # deferred again and again through the outage, never failed
    print(f"outage {outage.now - started:.0f} s (fake clock), {len(addresses)} recipients, "
          f"{outage.refusals} 421/451 replies, max {max(attempts)} attempts, lost "
          f"{len(set(addresses) - set(server.recorder.by_recipient()))}, duplicates "
          f"{sum(n - 1 for n in server.recorder.by_recipient().values())}")


def test_an_outage_past_the_retry_window_pauses_and_the_next_run_resumes(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server),
                           mail={"retry_backoff": 30, "retry_window": 600})
    addresses = add_subscribers(project, 15)
    outage = Outage(server, after=5, seconds=2 * 3600)
    server.recorder.rcpt_reply_fn = outage.reply

    paused = send_campaign(config_of(project), ISSUE, clock=outage.clock, sleep=outage.sleep)

    assert paused.paused_kind == "transient" and paused.counts["failed"] == 0
    assert paused.counts["sent"] == 5 and paused.counts["retry"] == 10
    with open_store(mail_settings(config_of(project)).store) as store:
        status, kind, reason = store.db.execute(
            "SELECT status, paused_kind, paused_reason FROM campaigns").fetchone()
    assert (status, kind) == ("paused", "transient") and reason == paused.paused

    server.recorder.rcpt_reply_fn = None  # the outage is over: the same command resumes
    run = CliRunner().invoke(send, [ISSUE, "--project", str(project), "--skip-doctor"])
    assert run.exit_code == 0, run.output
    assert "sent 15 (10 this run), deferred 0, failed 0" in run.output
    assert server.recorder.by_recipient() == dict.fromkeys(addresses, 1)


def test_a_paused_send_exits_75_and_says_how_to_resume(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server), mail={"retry_window": 0})
    addresses = add_subscribers(project, 3)
    server.recorder.rcpt_reply_fn = lambda address: "451 4.7.1 Greylisted, try again"

    run = CliRunner().invoke(send, [ISSUE, "--project", str(project), "--skip-doctor"])

    assert run.exit_code == 75
    assert ("Error: campaign paused: 3 recipient(s) deferred by temporary errors and nothing "
            "accepted for 0 s (last reply: 451 4.7.1 Greylisted, try again); nobody failed. "
            f"Run `pressroom send {ISSUE}` again to resume") in run.output
    assert {row[0] for row in ledger(project).values()} == {"retry"}
    assert set(addresses) == set(ledger(project))


def test_unsubscribes_by_cli_and_one_click_stop_the_very_next_message(tmp_path, server):
    from pressroom.web import create_app

    project = make_project(tmp_path, smtp_section(server))
    addresses = add_subscribers(project, 20)
    config = config_of(project)
    with open_store(mail_settings(config).store) as store:
        ids = {a: store.find(a).id for a in addresses}
    web = create_app(config).test_client()
    committed: dict[str, int] = {}  # address -> messages received when its unsubscribe committed

    def one_click(address: str) -> None:
        url = "/unsubscribe?t=" + make_token(ids[address], UNSUBSCRIBE)
        response = web.post(url, data={"List-Unsubscribe": "One-Click"})
        assert response.status_code == 200

    def by_cli(address: str) -> None:
        run = CliRunner().invoke(subscribers, ["unsubscribe", address, "--project", str(project)])
        assert run.exit_code == 0, run.output

    actions = {  # at this recipient's RCPT: who unsubscribes, and how
        addresses[5]: [(addresses[5], by_cli), (addresses[12], one_click)],
        addresses[8]: [(addresses[8], one_click), (addresses[15], by_cli)],
    }

    def hook(address: str) -> None:
        for who, how in actions.get(address, []):
            how(who)
            committed[who] = server.recorder.by_recipient().get(who, 0)

    server.recorder.rcpt_hook = hook
    result = send_campaign(config, ISSUE)

    gone = {addresses[i] for i in (5, 8, 12, 15)}
    assert committed == dict.fromkeys(gone, 0)
    received = server.recorder.by_recipient()
    assert not gone & set(received)  # sent after unsubscribe: 0
    assert received == dict.fromkeys(set(addresses) - gone, 1)
    assert result.counts["skipped"] == 4 and result.counts["sent"] == 16
    print(f"unsubscribed mid-campaign {len(gone)} (2 by CLI, 2 one-click), sent after "
          f"unsubscribe {sum(received.get(a, 0) for a in gone)}, others {len(received)}")
    assert {ledger(project)[a][0] for a in gone} == {"skipped"}


def test_retry_failed_requeues_only_the_failed_who_may_still_be_mailed(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    addresses = add_subscribers(project, 4)
    server.recorder.rcpt_replies[addresses[1]] = ["550 5.1.1 No such user"]
    send_campaign(config_of(project), ISSUE)
    store_path = mail_settings(config_of(project)).store
    with open_store(store_path) as store:  # an old run's failed row (before deferrals were kept)
        store.db.execute("UPDATE deliveries SET status = 'failed', last_reply = 'gave up after 5 "
                         "attempts' WHERE subscriber_id = (SELECT id FROM subscribers WHERE "
                         "email = ?)", (addresses[2],))
    server.recorder.reset()

    run = CliRunner().invoke(send, [ISSUE, "--retry-failed", "--project", str(project),
                                    "--skip-doctor"])

    assert run.exit_code == 0, run.output
    assert server.recorder.by_recipient() == {addresses[2]: 1}  # the 550 one stays suppressed
    assert ledger(project)[addresses[1]][0] == "failed"
    assert ledger(project)[addresses[2]][0] == "sent"


def test_unattended_send_logs_progress_lines_and_the_hourly_cap_wait(tmp_path, server, caplog):
    project = make_project(tmp_path, smtp_section(server, hourly_cap=600))
    add_subscribers(project, 1200)
    now = [1_800_000_000.0]

    def clock() -> float:
        now[0] += 0.01  # each look at the clock: 10 ms of work
        return now[0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with caplog.at_level(logging.INFO, logger="pressroom.mail.progress"):
        result = send_campaign(config_of(project), ISSUE, clock=clock, sleep=sleep)

    assert result.counts["sent"] == 1200
    lines = [r.getMessage() for r in caplog.records if r.name == "pressroom.mail.progress"]
    progress = [line for line in lines if line.startswith(f"{ISSUE}: sent ")]
    assert progress and all(", deferred 0, failed 0 (" in line and " msg/s, ETA " in line
                            for line in progress)
    assert any(line.startswith(f"{ISSUE}: sent 500, deferred 0, failed 0 (500/1200 done)")
               for line in progress)
    waits = [line for line in lines if line.startswith("hourly cap of 600 messages reached")]
    assert waits and all(" s, until " in w and w.endswith(" UTC") for w in waits)


def test_without_a_terminal_send_shows_progress_lines(tmp_path, server):
    from pressroom.cli import cli

    project = make_project(tmp_path, smtp_section(server))
    add_subscribers(project, 3)
    run = CliRunner().invoke(cli, ["send", ISSUE, "--project", str(project), "--skip-doctor"])
    assert run.exit_code == 0, run.output
    assert f"{ISSUE}: sent 3, deferred 0, failed 0 (3/3 done), " in run.output
