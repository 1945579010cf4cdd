"""The subscriber store and its commands: import, add, list, unsubscribe, export, stats."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner
from mailtest import config_of, subscriber_status

from pressroom.mail import commands
from pressroom.mail.cli import bounces, db, doctor, outbox, send, subscribers
from pressroom.mail.addresses import normalise_address
from pressroom.mail.importing import import_subscribers
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import SCHEMA_VERSION, open_store

# Every test here runs on both store backends (SQLite and PostgreSQL): tests/conftest.py.
pytestmark = pytest.mark.usefixtures("backend")

MAILCHIMP = (
    '\ufeffEmail Address,First Name,Last Name,MEMBER_RATING,OPTIN_TIME,CONFIRM_TIME,TAGS\n'
    'ann@example.com,Ann,Archer,2,2024-01-02 10:00:00,2024-01-02 10:05:00,"""VIP"",""Clinic"""\n'
    ' Bob@X.com ,Bob,Baker,2,,,\n'
    'a@b@c,Bad,Address,1,,,\n'
    'bob@x.com,Robert,,1,,,\n'
    '"carol@example.com","Carol\nSmith",Cook,1,,,\n'
    'dan@example.com,Dan,Dee,1,,,\n'
)
PLAIN = ("email,first_name,last_name,tags\nerin@example.com,Erin,Eve,news;clinic\n"
         "not-an-address,X,Y,\n")


def run(command, *args: str, project) -> "click.testing.Result":
    return CliRunner().invoke(command, [*args, "--project", str(project)])


def write(project, name: str, text: str):
    path = project / name
    path.write_text(text, encoding="utf-8")
    return path


def test_mailchimp_import_reports_invalid_rows_and_imports_the_rest(outbox_project, monkeypatch):
    monkeypatch.chdir(outbox_project)
    write(outbox_project, "members.csv", MAILCHIMP)
    result = run(subscribers, "import", "members.csv", project=outbox_project)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "members.csv:4: 'a@b@c' is not a valid email address: it must contain exactly one '@'",
        "members.csv:6: the first name contains a line break or control character",
        "members.csv: added 3, updated 0, unchanged 0, suppressed (not re-subscribed) 0, "
        "opt-outs recorded 0, not imported 0, duplicates 1, invalid 2",
    ]
    listing = run(subscribers, "list", project=outbox_project)
    assert listing.output.splitlines() == [
        "ann@example.com\tsubscribed\tAnn Archer\tClinic,VIP",
        "Bob@x.com\tsubscribed\tBob Baker\t",
        "dan@example.com\tsubscribed\tDan Dee\t",
    ]
    with open_store(mail_settings(config_of(outbox_project)).store) as store:
        ann = store.find("ANN@example.com")
        assert (ann.consent_source, ann.consent_at) == ("import:members.csv", "2024-01-02 10:05:00")


def test_plain_import_is_idempotent_and_dry_run_changes_nothing(outbox_project, monkeypatch):
    monkeypatch.chdir(outbox_project)
    write(outbox_project, "plain.csv", PLAIN)
    dry = run(subscribers, "import", "plain.csv", "--dry-run", project=outbox_project)
    assert "plain.csv: would add 1," in dry.output
    assert "plain.csv:3: 'not-an-address' is not a valid email address: it must contain exactly " \
           "one '@'" in dry.output
    assert run(subscribers, "list", project=outbox_project).output == ""
    first = import_subscribers(config_of(outbox_project), "plain.csv")
    again = import_subscribers(config_of(outbox_project), "plain.csv")
    assert (first.added, again.added, again.unchanged, again.updated) == (1, 0, 1, 0)
    with open_store(mail_settings(config_of(outbox_project)).store) as store:
        assert store.find("erin@example.com").tags == ("clinic", "news")


def test_addresses_differing_only_in_case_are_one_subscriber(outbox_project):
    assert run(subscribers, "add", "Bob@X.com", project=outbox_project).exit_code == 0
    again = run(subscribers, "add", "bob@x.com", project=outbox_project)
    assert again.exit_code == 1
    assert "Error: Bob@x.com is already in the store (status: subscribed); nothing changed" in \
        again.output
    assert subscriber_status(outbox_project, "BOB@x.COM") == ("subscribed", None)


@pytest.mark.parametrize("address, reason", [
    ("a@b@c", "it must contain exactly one '@'"),
    ("bob@example", "the part after the '@' must be a domain like example.com"),
    ("bob smith@example.com", "it contains a space, line break or control character"),
    ("bob..smith@example.com", "the part before the '@' has characters or dots in invalid places"),
    ("bob@example.com\r\nBcc: all@example.com",
     "it contains a space, line break or control character"),
])
def test_invalid_addresses_are_refused(outbox_project, address, reason):
    result = run(subscribers, "add", address, project=outbox_project)
    assert result.exit_code == 1
    assert f"Error: {address.strip()!r} is not a valid email address: {reason}" in result.output


def test_internationalised_domain_is_stored_as_ascii():
    assert normalise_address(" Ann@Bücher.Example ") == "Ann@xn--bcher-kva.example"


def test_name_with_line_break_is_refused(outbox_project):
    result = run(subscribers, "add", "eve@example.com", "--first-name", "Eve\r\nBcc: x@example.com",
                 project=outbox_project)
    assert result.exit_code == 1
    assert "Error: the first name contains a line break (CR or LF), which could inject email " \
           "headers" in result.output


def test_reimport_never_revives_a_suppressed_address(outbox_project, monkeypatch):
    monkeypatch.chdir(outbox_project)
    write(outbox_project, "members.csv", MAILCHIMP)
    run(subscribers, "import", "members.csv", project=outbox_project)
    assert run(subscribers, "unsubscribe", "ANN@example.com", project=outbox_project).output == \
        "unsubscribed ann@example.com\n"
    with open_store(mail_settings(config_of(outbox_project)).store) as store, store.transaction():
        store.suppress("dan@example.com", "hard_bounce", "test")
    # Never a subscriber, but unsubscribed: the address stays out of every later import.
    assert run(subscribers, "unsubscribe", "zed@example.com", project=outbox_project).output == \
        "zed@example.com is not a subscriber; added to the suppression list\n"
    write(outbox_project, "again.csv", MAILCHIMP + "zed@example.com,Zed,,1,,,\n")

    result = import_subscribers(config_of(outbox_project), "again.csv")

    assert (result.added, result.suppressed) == (0, 3)
    assert subscriber_status(outbox_project, "ann@example.com") == ("unsubscribed", "unsubscribed")
    assert subscriber_status(outbox_project, "dan@example.com") == ("bounced", "hard_bounce")
    with open_store(mail_settings(config_of(outbox_project)).store) as store:
        assert store.find("zed@example.com") is None
        events = [kind for _, kind, _, _ in store.events(store.find("ann@example.com").id)]
    assert events == ["added", "unsubscribed"]
    add = run(subscribers, "add", "ann@example.com", project=outbox_project)
    assert "Error: ann@example.com is already in the store (status: unsubscribed)" in add.output


def test_export_round_trips_and_stats_count(outbox_project, monkeypatch):
    monkeypatch.chdir(outbox_project)
    write(outbox_project, "members.csv", MAILCHIMP)
    run(subscribers, "import", "members.csv", project=outbox_project)
    run(subscribers, "unsubscribe", "dan@example.com", project=outbox_project)
    stdout = run(subscribers, "export", project=outbox_project).output
    assert stdout.splitlines()[0] == ("email,first_name,last_name,tags,status,consent_source,"
                                      "consent_at,created_at,updated_at,suppression_reason,"
                                      "suppression_source,suppressed_at")
    assert stdout.splitlines()[1].startswith("ann@example.com,Ann,Archer,Clinic;VIP,subscribed,")
    to_file = run(subscribers, "export", "backup.csv", project=outbox_project)
    assert to_file.exit_code == 0 and (outbox_project / "backup.csv").read_text() == stdout
    reimport = import_subscribers(config_of(outbox_project), "backup.csv")
    assert (reimport.added, reimport.unchanged, reimport.opt_outs) == (0, 2, 1)
    stats = run(subscribers, "stats", project=outbox_project).output.splitlines()
    assert stats[1:] == ["subscribers: pending 0, subscribed 2, unsubscribed 1, bounced 0, "
                         "complained 0", "suppressed: unsubscribed 1"]


@pytest.mark.sqlite_only
def test_store_lives_outside_output_and_a_new_file_starts_at_the_current_schema(
        outbox_project, backend):
    path = mail_settings(config_of(outbox_project)).store
    assert path == outbox_project / ".pressroom" / "subscribers.sqlite3"
    assert not path.exists()
    with open_store(path) as store:  # the one-machine default: no `db upgrade` step
        assert store.schema_version == SCHEMA_VERSION == 6
        assert store.db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_every_command_has_help_with_an_example():
    def walk(command: click.Command):
        yield command
        for sub in getattr(command, "commands", {}).values():
            yield from walk(sub)

    assert commands == [subscribers, send, bounces, outbox, doctor, db]
    for command in (c for top in commands for c in walk(top)):
        help_text = CliRunner().invoke(command, ["--help"]).output
        assert "Example" in help_text, command.name
