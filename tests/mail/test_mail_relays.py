"""Several relays: the smtp.relays list, failover on connection-level failures only, and the
relay each message went through, against real aiosmtpd servers."""

from __future__ import annotations

import shutil
import socket
import sqlite3
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner
from mailtest import (add_subscribers, closed_port, config_of, ledger, make_project,
                      recording_server)


from pressroom.errors import ConfigError, MailError
from pressroom.mail import send_campaign
from pressroom.mail.cli import send
from pressroom.mail.settings import mail_settings, smtp_settings

ISSUE = "01-welcome"
FIXTURES = Path(__file__).parents[1] / "fixtures"


@pytest.fixture(scope="module")
def backup_server():
    """A second real SMTP server: the relay failed over to."""
    with recording_server() as controller:
        yield controller


@pytest.fixture
def backup(backup_server):
    backup_server.recorder.reset()
    return backup_server


def relay(port: int, **extra) -> dict:
    return {"host": "127.0.0.1", "port": port, "security": "none", "timeout": 5, **extra}


def relays_of(project) -> dict[str, str]:
    """address -> relay recorded in the ledger."""
    db = sqlite3.connect(mail_settings(config_of(project)).store)
    try:
        return dict(db.execute("SELECT s.email, d.relay FROM deliveries d JOIN subscribers s "
                               "ON s.id = d.subscriber_id"))
    finally:
        db.close()


def test_relays_list_and_the_single_mapping_form(tmp_path, server):
    listed = make_project(tmp_path / "a", {"relays": [
        relay(2525, connections=2, rate=5, username="news", password_env="RELAY_A_PASSWORD"),
        {"host": "backup.example.com"}], "rate": 10, "hourly_cap": 100})
    s = smtp_settings(config_of(listed))
    assert [(r.name, r.connections, r.rate, r.password_env) for r in s.relays] == [
        ("127.0.0.1:2525", 2, 5.0, "RELAY_A_PASSWORD"),
        ("backup.example.com:587", None, None, "PRESSROOM_SMTP_PASSWORD")]
    assert (s.host, s.port, s.username, s.rate, s.hourly_cap) == (
        "127.0.0.1", 2525, "news", 10.0, 100)
    single = smtp_settings(config_of(make_project(tmp_path / "b", relay(server.port))))
    assert [r.name for r in single.relays] == [f"127.0.0.1:{server.port}"]


@pytest.mark.parametrize("section, key, message", [
    ({"host": "a", "relays": [{"host": "b"}]}, "host",
     "'smtp.host' belongs to each entry of 'smtp.relays' when relays are listed; move it into "
     "the relays"),
    ({"relays": [{"host": "b"}, {"host": "b", "port": 587}]}, "host",
     "'smtp.relays' lists b:587 twice"),
    ({"relays": [{"host": "b", "password_env": "MY-PASSWORD"}]}, "password_env",
     "'smtp.relays.0.password_env' must name an environment variable (letters, digits, _), "
     "got 'MY-PASSWORD'"),
    ({"relays": [{"host": "b", "connections": 0}]}, "connections",
     "'smtp.relays.0.connections' must be at least 1, got 0"),
    ({"relays": [{"host": "b", "pasword": "x"}]}, "pasword",
     "unknown key 'smtp.relays.0.pasword' — did you mean 'password_env'?"),
    ({"relays": []}, "relays", "'smtp.relays' must be a list of at least 1 entries"),
])
def test_bad_relays_name_the_line(tmp_path, section, key, message):
    project = make_project(tmp_path, section)
    lines = (project / "content" / "publication.yaml").read_text().splitlines()
    # The top-level host comes first; for a duplicate relay, its second entry is named.
    found = [i for i, line in enumerate(lines, 1)
             if line.strip().lstrip("- ").startswith(f"{key}:")]
    expected = found[0] if "belongs" in message else found[-1]
    with pytest.raises(ConfigError) as caught:
        smtp_settings(config_of(project))
    assert (caught.value.line, caught.value.reason) == (expected, message)


def test_check_reports_a_bad_relay_with_file_and_line(tmp_path):
    from pressroom.cli import cli

    project = tmp_path / "minimal"
    shutil.copytree(FIXTURES / "minimal", project)
    with (project / "content" / "publication.yaml").open("a", encoding="utf-8") as fh:
        fh.write("smtp:\n  relays:\n    - host: relay.example.com\n      port: 0\n")
    run = CliRunner().invoke(cli, ["check", "--project", str(project)])
    lines = (project / "content" / "publication.yaml").read_text().splitlines()
    line = next(i for i, text in enumerate(lines, 1) if text.strip().startswith("port: 0"))
    assert run.exit_code == 1
    assert (f"content/publication.yaml:{line}: 'smtp.relays.0.port' must be at least 1, got 0"
            in run.output)


def test_each_relay_reads_its_own_password_variable(tmp_path, server, monkeypatch):
    project = make_project(tmp_path, {"relays": [
        relay(server.port), relay(server.port + 1, username="u", password_env="BACKUP_PASSWORD")]})
    add_subscribers(project, 1)
    monkeypatch.setenv("PRESSROOM_SMTP_PASSWORD", "not this one")
    with pytest.raises(MailError) as caught:
        send_campaign(config_of(project), ISSUE)
    assert caught.value.message == (
        f"the username of relay 127.0.0.1:{server.port + 1} is set but BACKUP_PASSWORD is not; "
        "export the SMTP password in BACKUP_PASSWORD (it is never read from publication.yaml)")


def test_a_refused_relay_fails_over_and_the_ledger_names_the_relay(tmp_path, backup):
    with closed_port() as dead:
        project = make_project(tmp_path, {"relays": [relay(dead), relay(backup.port)]})
        addresses = add_subscribers(project, 5)
        run = CliRunner().invoke(send, [ISSUE, "--project", str(project), "--skip-doctor"])
    assert run.exit_code == 0, run.output
    assert backup.recorder.by_recipient() == dict.fromkeys(addresses, 1)
    assert relays_of(project) == dict.fromkeys(addresses, f"127.0.0.1:{backup.port}")
    assert (f"{ISSUE} via 127.0.0.1:{dead}, 127.0.0.1:{backup.port}: sent 5 (5 this run)"
            in run.output)
    assert f"  accepted by 127.0.0.1:{backup.port}: 5\n" in run.output


def greet_421_server() -> tuple[socket.socket, threading.Thread]:
    """A relay that answers every connection with 421 and hangs up (a relay shutting down)."""
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn:
                conn.sendall(b"421 4.3.2 Service not available, closing channel\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return listener, thread


def test_a_421_greeting_fails_over(tmp_path, backup):
    listener, thread = greet_421_server()
    try:
        project = make_project(tmp_path, {"relays": [relay(listener.getsockname()[1]),
                                                     relay(backup.port)]})
        addresses = add_subscribers(project, 3)
        result = send_campaign(config_of(project), ISSUE)
    finally:
        listener.close()
        thread.join(5)
    assert result.counts["sent"] == 3
    assert backup.recorder.by_recipient() == dict.fromkeys(addresses, 1)


def test_a_relay_dropping_mid_run_loses_and_duplicates_nothing(tmp_path, server, backup):
    # The 4th DATA on the first relay gets "421 closing" and the connection drops.
    server.recorder.close_with_421_at = 4
    project = make_project(tmp_path, {"relays": [relay(server.port), relay(backup.port)]})
    addresses = add_subscribers(project, 10)
    result = send_campaign(config_of(project), ISSUE)
    first, second = server.recorder.by_recipient(), backup.recorder.by_recipient()
    assert result.counts["sent"] == 10 and not result.unknown
    assert sorted(first) == addresses[:3] and sorted(second) == addresses[3:]
    assert set(first.values()) == set(second.values()) == {1}
    recorded = relays_of(project)
    assert {recorded[a] for a in addresses[:3]} == {f"127.0.0.1:{server.port}"}
    assert {recorded[a] for a in addresses[3:]} == {f"127.0.0.1:{backup.port}"}
    assert result.relays == [(f"127.0.0.1:{backup.port}", 7), (f"127.0.0.1:{server.port}", 3)]


def test_a_message_level_deferral_does_not_fail_over(tmp_path, server, backup):
    project = make_project(tmp_path, {"relays": [relay(server.port), relay(backup.port)]})
    addresses = add_subscribers(project, 3)
    server.recorder.rcpt_replies[addresses[1]] = ["450 4.2.1 Mailbox busy, try later"]
    result = send_campaign(config_of(project), ISSUE)
    assert backup.recorder.count() == 0
    assert server.recorder.by_recipient() == dict.fromkeys(addresses, 1)
    assert ledger(project)[addresses[1]][:2] == ("sent", 2)
    assert result.counts["sent"] == 3
