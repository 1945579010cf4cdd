"""Crash safety with real processes: SIGKILL mid-campaign then resume; two senders at once."""

from __future__ import annotations

import pytest
import os
import signal
import subprocess
import sys
import time

from click.testing import CliRunner
from mailtest import SECRET, add_subscribers, config_of, ledger, make_project, smtp_section

from pressroom.mail import send_campaign
from pressroom.mail.cli import send

# Every test here runs on both store backends (SQLite and PostgreSQL): tests/conftest.py.
pytestmark = pytest.mark.usefixtures("backend")

ISSUE = "01-welcome"


def start_send(project, *args: str) -> subprocess.Popen:
    env = {**os.environ, "PRESSROOM_SECRET_KEY": SECRET}
    return subprocess.Popen([sys.executable, "-m", "pressroom.mail", "send", ISSUE, "--project",
                             str(project), "--skip-doctor", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.005)


def kill_when(proc: subprocess.Popen, condition) -> None:
    try:
        wait_for(condition)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL


def check_exactly_once(server, project, addresses, unknown: set[str]) -> None:
    received = server.recorder.by_recipient()
    for address in addresses:
        expected = {0, 1} if address in unknown else {1}
        assert received.get(address, 0) in expected, address
    assert {status for status, _, _ in ledger(project).values()} <= {"sent", "unknown"}


def test_sigkill_while_awaiting_the_reply_leaves_one_listed_unknown(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server))
    addresses = add_subscribers(project, 300)
    # The 100th message is received, then its 250 is held back while the sender is killed.
    server.recorder.stall_after_data_at = 100
    kill_when(start_send(project), lambda: server.recorder.count() >= 100)

    result = send_campaign(config_of(project), ISSUE)

    assert [address for address, _ in result.unknown] == [addresses[99]]
    assert result.counts["sent"] == 299 and result.sent_now == 200
    check_exactly_once(server, project, addresses, set())
    run = CliRunner().invoke(send, [ISSUE, "--project", str(project), "--skip-doctor"])
    assert f"  unknown: {addresses[99]}: interrupted during delivery (crash or kill)" in run.output
    assert server.recorder.count() == 300


def test_sigkill_at_a_random_point_then_resume_sends_everyone_exactly_once(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server, rate=250))
    addresses = add_subscribers(project, 300)
    kill_when(start_send(project), lambda: server.recorder.count() >= 100)
    assert 100 <= server.recorder.count() < 300

    result = send_campaign(config_of(project), ISSUE, rate=1000)

    unknown = {address for address, _ in result.unknown}
    assert len(unknown) <= 1  # at most the one in flight when the process died
    check_exactly_once(server, project, addresses, unknown)
    assert result.counts["sent"] + result.counts["unknown"] == 300


@pytest.mark.sqlite_only  # on PostgreSQL senders cooperate (tests/mail/test_mail_scale.py)
def test_two_concurrent_sends_one_refuses(tmp_path, server):
    project = make_project(tmp_path, smtp_section(server, rate=100))
    addresses = add_subscribers(project, 60)
    first = start_send(project)
    try:
        wait_for(lambda: server.recorder.count() >= 1)
        second = CliRunner().invoke(send, [ISSUE, "--project", str(project), "--skip-doctor"])
        assert second.exit_code == 1
        assert (f"Error: another `pressroom send` is already running from this subscriber store "
                f"(pid {first.pid} on ") in second.output
        assert "wait for it to finish (or stop it), then run the command again to resume" in \
            second.output
        out, err = first.communicate(timeout=30)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, err.decode()
    assert "sent 60 (60 this run)" in out.decode()
    assert server.recorder.by_recipient() == dict.fromkeys(addresses, 1)

