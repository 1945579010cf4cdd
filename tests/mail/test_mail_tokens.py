"""Signed unsubscribe/confirm tokens, and what a valid one does to later campaigns."""

from __future__ import annotations

import base64

import pytest
from click.testing import CliRunner
from mailtest import add_subscribers, config_of, ledger, subscriber_status

from pressroom.mail import (confirm_subscriber, make_token, send_campaign, unsubscribe_by_token,
                            verify_token)
from pressroom.mail.cli import subscribers
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import open_store
from pressroom.mail.tokens import TokenError

GENERIC = "this link is not valid; it may have been copied incompletely"


def altered(token: str) -> list[str]:
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    out = []
    for index in (1, 8, 9, len(raw) - 1):  # the id, and the first and last MAC bytes
        changed = bytearray(raw)
        changed[index] ^= 0x01
        out.append(base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode())
    out.append(token[:-1] + ("B" if token[-1] == "A" else "A"))  # last character
    out.append(token + "A")                                       # extended
    out.append(token[:-3])                                        # truncated
    out.append(token[:10] + "!" + token[10:])                     # stray character
    return out


def test_valid_token_round_trips():
    token = make_token(42, "unsubscribe")
    assert verify_token(token, "unsubscribe") == 42
    assert len(token) == 55 and set(token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@pytest.mark.parametrize("bad", altered(make_token(42, "unsubscribe", b"k" * 32)) + [
    "", "x" * 300, "not a token",
    base64.urlsafe_b64encode(b"\x01" + (42).to_bytes(8, "big") + b"\0" * 32).decode().rstrip("="),
    make_token(42, "confirm", b"k" * 32),                 # right key, wrong purpose
    make_token(42, "unsubscribe", b"another-key-entirely"),  # forged with another key
])
def test_forged_or_altered_tokens_get_one_generic_error(bad):
    with pytest.raises(TokenError) as caught:
        verify_token(bad, "unsubscribe", b"k" * 32)
    assert caught.value.message.startswith(GENERIC)


def test_valid_token_unsubscribes_and_later_campaign_skips(outbox_project):
    addresses = add_subscribers(outbox_project, 3)
    config = config_of(outbox_project)
    with open_store(mail_settings(config).store) as store:
        victim = store.find(addresses[1])
        with pytest.raises(TokenError):
            unsubscribe_by_token(store, make_token(victim.id, "confirm"), "web")
        assert store.find(addresses[1]).status == "subscribed"
        done = unsubscribe_by_token(store, make_token(victim.id, "unsubscribe"), "web")
        assert done.status == "unsubscribed"
        again = unsubscribe_by_token(store, make_token(victim.id, "unsubscribe"), "web")
        assert again.id == victim.id
        assert [(kind, source) for _, kind, source, _ in store.events(victim.id)] == [
            ("added", "import:generated.csv"), ("unsubscribed", "web")]

    result = send_campaign(config, "01-welcome")

    assert result.counts["sent"] == 2
    assert addresses[1] not in ledger(outbox_project)
    outbox = outbox_project / "output" / "outbox" / "01-welcome"
    assert not list(outbox.glob(f"*{addresses[1]}.eml"))


def test_unsubscribe_after_the_snapshot_is_skipped_on_resume(outbox_project):
    addresses = add_subscribers(outbox_project, 3)
    config = config_of(outbox_project)
    # Snapshot the audience without sending: a dry send would not, so open the ledger directly.
    from pressroom.mail.ledger import Ledger

    with open_store(mail_settings(config).store) as store:
        Ledger.open(store, "01-welcome", "Welcome", None)
        token = make_token(store.find(addresses[0]).id, "unsubscribe")
    cli = CliRunner().invoke(subscribers, ["unsubscribe", "--token", token, "--project",
                                           str(outbox_project)])
    assert cli.output == f"unsubscribed {addresses[0]}\n"

    result = send_campaign(config, "01-welcome")

    assert (result.counts["sent"], result.counts["skipped"]) == (2, 1)
    assert ledger(outbox_project)[addresses[0]] == ("skipped", 0, "unsubscribed since the snapshot")


def test_cli_rejects_a_bad_token_generically(outbox_project):
    result = CliRunner().invoke(subscribers, ["unsubscribe", "--token", "AAAA", "--project",
                                              str(outbox_project)])
    assert result.exit_code == 1 and result.output == f"Error: {GENERIC}. Use the link from your " \
                                                      "most recent email\n"


def test_confirm_token_subscribes_a_pending_address(outbox_project):
    with open_store(mail_settings(config_of(outbox_project)).store) as store:
        with store.transaction():
            sid = store.insert("new@example.com", status="pending", source="web:signup")
        confirmed = confirm_subscriber(store, make_token(sid, "confirm"))
        assert confirmed.status == "subscribed" and confirmed.consent_source == "double-opt-in"
        with pytest.raises(TokenError):
            confirm_subscriber(store, make_token(sid, "unsubscribe"))
    assert subscriber_status(outbox_project, "new@example.com") == ("subscribed", None)
