"""Subscriber operations for the CLI and the site: add, list, unsubscribe, confirm, export."""

from __future__ import annotations

import csv
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from pressroom.config import Config
from pressroom.errors import MailError
from pressroom.mail.addresses import address_key, normalise_address
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import STATUSES, SUPPRESSING, Store, Subscriber, open_store
from pressroom.mail.tokens import CONFIRM, UNSUBSCRIBE, TokenError, verify_token
from pressroom.output import write_atomic

log = logging.getLogger(__name__)

EXPORT_COLUMNS = ("email", "first_name", "last_name", "tags", "status", "consent_source",
                  "consent_at", "created_at", "updated_at", "suppression_reason",
                  "suppression_source", "suppressed_at")
# OWASP CSV injection: a cell starting with one of these is read as a formula by spreadsheets.
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def add_subscriber(config: Config, email: str, *, first_name: str = "", last_name: str = "",
                   tags: tuple[str, ...] = (), source: str = "cli:add") -> Subscriber:
    """Add one subscribed address; refuse a suppressed or already-present one.

    Example: ``add_subscriber(config, "ann@example.com", first_name="Ann", tags=("vip",))``.
    """
    email = normalise_address(email)
    with open_store(mail_settings(config).store) as store, store.transaction():
        existing = store.find(email)
        if existing is not None:
            raise MailError(f"{existing.email} is already in the store (status: "
                            f"{existing.status}); nothing changed")
        reason = store.suppression(email)
        if reason:
            raise MailError(f"{email} is on the suppression list ({reason}); Pressroom never "
                            "re-subscribes a suppressed address: they can sign up again themselves")
        subscriber_id = store.insert(email, first_name=first_name.strip(),
                                     last_name=last_name.strip(), tags=tags, source=source)
        return _reload(store, subscriber_id)


def list_subscribers(config: Config, status: str | None = None) -> Iterator[Subscriber]:
    """Yield subscribers in id order (optionally only one status), streaming from the store."""
    if status is not None and status not in STATUSES:
        raise MailError(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
    with open_store(mail_settings(config).store) as store:
        yield from store.iter_subscribers(status)


def _reload(store: Store, subscriber_id: int) -> Subscriber:
    """The subscriber just written (rows are never deleted), as the store now has it."""
    subscriber = store.get(subscriber_id)
    assert subscriber is not None, subscriber_id
    return subscriber


def _unsubscribe(store: Store, subscriber: Subscriber, source: str) -> Subscriber:
    with store.transaction():
        store.suppress(subscriber.email, "unsubscribed", source)
        if subscriber.status not in SUPPRESSING:
            log.info("unsubscribed %s (%s)", subscriber.email, source)
    return _reload(store, subscriber.id)


def unsubscribe_by_token(store: Store, token: str, source: str) -> Subscriber:
    """Unsubscribe the subscriber a signed token names (idempotent); TokenError otherwise."""
    subscriber = store.get(verify_token(token, UNSUBSCRIBE))
    if subscriber is None:
        raise TokenError()
    return _unsubscribe(store, subscriber, source)


def confirm_subscriber(store: Store, token: str, source: str = "double-opt-in") -> Subscriber:
    """Confirm a pending subscriber from a double-opt-in link (idempotent); TokenError otherwise."""
    subscriber = store.get(verify_token(token, CONFIRM))
    if subscriber is None or subscriber.status not in ("pending", "subscribed"):
        raise TokenError()
    if subscriber.status == "pending":
        with store.transaction():
            store.confirm(subscriber.id, source)
    confirmed = store.get(subscriber.id)
    assert confirmed is not None  # confirming never deletes the row
    return confirmed


def unsubscribe(config: Config, email: str | None = None, token: str | None = None,
                source: str = "cli") -> tuple[Subscriber | None, str]:
    """Unsubscribe by address or by signed token; return (subscriber or None, the address).

    An address not in the store still goes on the suppression list, so no import adds it later.
    Example: ``unsubscribe(config, "bob@example.com")``.
    """
    if email is None and token is None:
        raise MailError("give the EMAIL to unsubscribe, or --token with the token from an "
                        "unsubscribe link")
    if email is not None and token is not None:
        raise MailError("give either an EMAIL or --token, not both")
    with open_store(mail_settings(config).store) as store:
        if token is not None:
            by_token = unsubscribe_by_token(store, token, f"{source}:token")
            return by_token, by_token.email
        assert email is not None  # checked above: one of email and token
        email = normalise_address(email)
        subscriber = store.find(email)
        if subscriber is None:
            with store.transaction():
                store.suppress(email, "unsubscribed", source)
            return None, email
        return _unsubscribe(store, subscriber, source), subscriber.email


def neutralise(value: str) -> str:
    """A CSV cell a spreadsheet will not run: ``'`` before a formula prefix (OWASP)."""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def export_lines(config: Config) -> Iterator[str]:
    """Yield the subscriber CSV (header first), one line at a time.

    Every subscriber with status and consent, then every suppressed address that is not a
    subscriber (status ``suppressed``): importing the file into a new store keeps every
    opt-out. Cells that a spreadsheet would read as a formula are prefixed with ``'``.
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")

    def line(values: tuple) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([neutralise(v) for v in values])
        return buffer.getvalue()

    yield line(EXPORT_COLUMNS)
    with open_store(mail_settings(config).store) as store:
        suppressed = {key: rest for key, *rest in store.suppressions()}
        for s in store.iter_subscribers():
            reason, source, _detail, at = suppressed.pop(address_key(s.email), ("", "", "", ""))
            yield line((s.email, s.first_name, s.last_name, ";".join(s.tags), s.status,
                        s.consent_source, s.consent_at, s.created_at, s.updated_at,
                        reason, source, at))
        for key, (reason, source, _detail, at) in sorted(suppressed.items()):
            yield line((key, "", "", "", "suppressed", "", "", "", "", reason, source, at))


def export_subscribers(config: Config, path: Path | str) -> int:
    """Write every subscriber to a CSV file (re-importable); return the number of rows."""
    lines = list(export_lines(config))
    write_atomic(Path(path), "".join(lines))
    return len(lines) - 1


@dataclass(frozen=True)
class CampaignStats:
    """Ledger counts for one campaign."""

    issue: str
    status: str
    counts: dict[str, int]
    paused_reason: str = ""


@dataclass(frozen=True)
class Stats:
    """Counts for ``pressroom subscribers stats``."""

    store: Path | str
    subscribers: dict[str, int]
    suppressions: dict[str, int]
    campaigns: tuple[CampaignStats, ...]


def subscriber_stats(config: Config) -> Stats:
    """Subscribers per status, suppressions per reason and each campaign's delivery counts."""
    path = mail_settings(config).store
    with open_store(path) as store:
        campaigns = tuple(CampaignStats(issue, status, counts,
                                        reason if status == "paused" else "")
                          for issue, status, counts, reason in store.campaign_counts())
        return Stats(store.path, store.counts(), store.suppression_counts(), campaigns)
