"""Opt-outs survive every path: export -> import into a new store, Mailchimp's statuses, a
suppression list; spreadsheet-safe CSV; control characters refused everywhere; strong keys."""

from __future__ import annotations

import csv
import io
import re

import pytest
from click.testing import CliRunner
from mailtest import add_subscribers, config_of, make_project, subscriber_status
from test_mail_bounces import arf, dsn, mbox

from pressroom.errors import MailError
from pressroom.mail.bounces import process_bounces
from pressroom.mail.cli import subscribers
from pressroom.mail.importing import import_subscribers
from pressroom.mail.settings import mail_settings, secret_key
from pressroom.mail.store import open_store
from pressroom.mail.subscribers import add_subscriber, export_subscribers, unsubscribe

# Every test here runs on both store backends (SQLite and PostgreSQL): tests/conftest.py.
pytestmark = pytest.mark.usefixtures("backend")


def snapshot(project) -> tuple[dict, dict]:
    """Every subscriber (email -> status, names, tags, consent) and suppression (key -> reason)."""
    with open_store(mail_settings(config_of(project)).store) as store:
        people = {s.email: (s.status, s.first_name, s.last_name, s.tags, s.consent_source,
                            s.consent_at) for s in store.iter_subscribers()}
        suppressed = {key: reason for key, reason, *_ in store.suppressions()}
    return people, suppressed


def test_old_store_to_csv_to_new_store_keeps_every_opt_out(tmp_path):
    old = make_project(tmp_path / "old")
    config = config_of(old)
    a = add_subscribers(old, 8)
    add_subscriber(config, "-dash@example.com", first_name="=HYPERLINK(\"http://x\")",
                   last_name="@SUM(1)", tags=("+vip",))
    unsubscribe(config, a[0])                                  # by CLI
    unsubscribe(config, "never-joined@example.com")            # suppression only
    process_bounces(config, mbox(tmp_path / "in.mbox",
                                 dsn("b1", (a[1], "failed", "5.1.1")),
                                 dsn("b2", ("stranger@example.net", "failed", "5.1.1")),
                                 arf("c1", rcpt=a[2])))
    with open_store(mail_settings(config).store) as store, store.transaction():
        store.set_status(store.find(a[3]).id, "pending", "test")
    before = snapshot(old)
    assert sum(1 for status, *_ in before[0].values() if status != "subscribed") == 4
    assert len(before[1]) == 5

    export_subscribers(config, tmp_path / "backup.csv")
    new = make_project(tmp_path / "new")
    result = import_subscribers(config_of(new), tmp_path / "backup.csv")

    assert not result.problems and result.opt_outs == 5
    assert snapshot(new) == before  # every opt-out, status, name, tag and consent kept
    assert subscriber_status(new, a[2]) == ("complained", "complained")


def test_export_neutralises_formula_prefixes_as_owasp_says(tmp_path):
    project = make_project(tmp_path)
    add_subscriber(config_of(project), "-x@example.com", first_name="=1+2", last_name="+44",
                   tags=("@tag",))
    add_subscriber(config_of(project), "ok@example.com", first_name="Ann-Marie")
    export_subscribers(config_of(project), tmp_path / "out.csv")
    rows = list(csv.reader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert rows[1][:4] == ["'-x@example.com", "'=1+2", "'+44", "'@tag"]
    assert rows[2][:2] == ["ok@example.com", "Ann-Marie"]
    assert all(not cell.startswith(("=", "+", "-", "@", "\t", "\r")) for row in rows
               for cell in row)


MAILCHIMP_STATUSES = (
    "Email Address,First Name,Last Name,Status,UNSUB_TIME,CLEAN_TIME\n"
    "sub@example.com,Sub,One,subscribed,,\n"
    "left@example.com,Left,Two,unsubscribed,,\n"
    "gone@example.com,Gone,Three,cleaned,,\n"
    "later@example.com,Later,Four,,2024-05-01 10:00:00,\n"
    "bounced@example.com,Bounced,Five,,,2024-05-02 10:00:00\n"
    "never@example.com,Never,Six,non-subscribed,,\n"
    "odd@example.com,Odd,Seven,maybe,,\n"
)


def test_import_honours_mailchimp_statuses_even_for_known_subscribers(tmp_path):
    project = make_project(tmp_path)
    for address in ("left@example.com", "gone@example.com"):
        add_subscriber(config_of(project), address)  # subscribed here, opted out there
    path = tmp_path / "mc.csv"
    path.write_text(MAILCHIMP_STATUSES, encoding="utf-8")

    result = import_subscribers(config_of(project), path)

    assert result.problems == [(f"{path}:8: unknown status 'maybe'; use one of subscribed, "
                                "pending, unsubscribed, cleaned, bounced, complained, suppressed, "
                                "non-subscribed, nonsubscribed, transactional, archived")]
    assert (result.added, result.opt_outs, result.not_imported) == (1, 4, 1)
    assert subscriber_status(project, "sub@example.com") == ("subscribed", None)
    assert subscriber_status(project, "left@example.com") == ("unsubscribed", "unsubscribed")
    assert subscriber_status(project, "gone@example.com") == ("bounced", "hard_bounce")
    assert subscriber_status(project, "later@example.com") == ("unsubscribed", "unsubscribed")
    assert subscriber_status(project, "bounced@example.com") == ("bounced", "hard_bounce")
    with open_store(mail_settings(config_of(project)).store) as store:
        assert store.find("never@example.com") is None


def test_a_suppression_list_import_suppresses_subscribers_and_strangers(tmp_path):
    project = make_project(tmp_path)
    add_subscriber(config_of(project), "member@example.com")
    path = tmp_path / "suppressions.csv"
    path.write_text("email,reason\nMEMBER@example.com,\nother@example.com,complained\n")
    run = CliRunner().invoke(subscribers, ["import", str(path), "--suppressions",
                                           "--project", str(project)])
    assert run.exit_code == 0, run.output
    assert "opt-outs recorded 2" in run.output
    assert subscriber_status(project, "member@example.com") == ("unsubscribed", "unsubscribed")
    with open_store(mail_settings(config_of(project)).store) as store:
        assert store.suppression("other@example.com") == "complained"


@pytest.mark.parametrize("char", ["\x0b", "\x1b", "\t", "\x7f", "\x85", "\x9b"])
def test_control_characters_are_refused_in_add_and_import(tmp_path, char):
    project = make_project(tmp_path)
    run = CliRunner().invoke(subscribers, ["add", "v@example.com", "--first-name", f"V{char}x",
                                           "--project", str(project)])
    assert run.exit_code == 1
    assert f"Error: the first name contains a control character: {f'V{char}x'!r}" in run.output
    address = CliRunner().invoke(subscribers, ["add", f"v{char}@example.com",
                                               "--project", str(project)])
    assert address.exit_code == 1 and "is not a valid email address" in address.output
    path = tmp_path / "in.csv"
    path.write_text(f"email,first_name,last_name\nw@example.com,W,L{char}x\n", encoding="utf-8")
    result = import_subscribers(config_of(project), path)
    assert result.problems == [(f"{path}:2: the last name contains a line break or control "
                                "character")]
    with open_store(mail_settings(config_of(project)).store) as store:
        assert store.counts()["subscribed"] == 0


@pytest.mark.parametrize("value, message", [
    ("short-but-random-16", ("PRESSROOM_SECRET_KEY is too short (19 bytes); use at least 32 "
                             "random characters")),
    (" " * 40, "PRESSROOM_SECRET_KEY is one character repeated, which anyone could guess"),
    ("a" * 64, "PRESSROOM_SECRET_KEY is one character repeated, which anyone could guess"),
])
def test_weak_secret_keys_are_refused(monkeypatch, value, message):
    monkeypatch.setenv("PRESSROOM_SECRET_KEY", value)
    with pytest.raises(MailError, match=re.escape(message)):
        secret_key()
