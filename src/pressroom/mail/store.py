"""The subscriber store: one SQLite file (WAL) or PostgreSQL database, versioned schema
(mail/schema.py), suppression list and event log."""

from __future__ import annotations

import datetime as _dt
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterable, Iterator

from pressroom.errors import MailError
from pressroom.mail.addresses import address_key, check_text, normalise_address
from pressroom.mail import schema
from pressroom.mail.database import Database, Location, connect, is_url
from pressroom.mail.schema import SCHEMA_VERSION  # noqa: F401  (re-exported)

log = logging.getLogger(__name__)

STATUSES = ("pending", "subscribed", "unsubscribed", "bounced", "complained")
SUPPRESSING = ("unsubscribed", "bounced", "complained")
BATCH = 500



def now_iso() -> str:
    """The current UTC time as ISO 8601 text (how the store records every timestamp)."""
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True)
class Subscriber:
    """One row of the subscriber table, with its tags."""

    id: int
    email: str
    first_name: str
    last_name: str
    status: str
    consent_source: str
    consent_at: str
    soft_bounces: int
    created_at: str
    updated_at: str
    tags: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        """First and last name, as one display name."""
        return " ".join(part for part in (self.first_name, self.last_name) if part)


_COLUMNS = ("id, email, first_name, last_name, status, consent_source, consent_at, soft_bounces, "
            "created_at, updated_at")


# Suppression reasons that count as hard bounces (refused during a send, or a DSN's 5.1.x).
HARD_BOUNCES = ("hard_bounce", "rejected")
_WINDOW_SQL = (
    "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN reason IN (?, ?) THEN 1 ELSE 0 END), 0) AS "
    "INTEGER), CAST(COALESCE(SUM(CASE WHEN reason = 'complained' THEN 1 ELSE 0 END), 0) AS "
    "INTEGER) FROM (SELECT p.reason AS reason FROM deliveries d "
    "JOIN subscribers s ON s.id = d.subscriber_id "
    "LEFT JOIN suppressions p ON p.email_key = s.email_key WHERE d.campaign_id = ? "
    "AND d.status IN ('sent', 'failed') AND d.updated_at > ? "
    "ORDER BY d.updated_at DESC, d.subscriber_id DESC LIMIT ?) AS w")
_RATES_SQL = (
    "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN p.reason IN (?, ?) THEN 1 ELSE 0 END), 0) AS "
    "INTEGER), CAST(COALESCE(SUM(CASE WHEN p.reason = 'complained' THEN 1 ELSE 0 END), 0) AS "
    "INTEGER) FROM deliveries d "
    "JOIN campaigns c ON c.id = d.campaign_id JOIN subscribers s ON s.id = d.subscriber_id "
    "LEFT JOIN suppressions p ON p.email_key = s.email_key AND p.created_at >= c.created_at "
    "AND NOT EXISTS (SELECT 1 FROM deliveries d2 JOIN campaigns c2 ON c2.id = d2.campaign_id "
    "WHERE d2.subscriber_id = d.subscriber_id AND c2.created_at > c.created_at "
    "AND c2.created_at <= p.created_at AND d2.status IN ('sent', 'failed')) "
    "WHERE d.campaign_id = ? AND d.status IN ('sent', 'failed')")


class Store:
    """An open subscriber store. Use as a context manager, or call ``close()``."""

    def __init__(self, location: Location, fsync: bool = False) -> None:
        self.location = location if is_url(location) else Path(location)
        self.db: Database = connect(self.location, fsync)
        # A file path, or the URL without a password: what messages and the send lock name.
        self.path = self.location if isinstance(self.location, Path) else self.db.label
        try:
            if self.db.dialect == "sqlite" and schema.is_empty(self.db):
                schema.migrate(self.db)  # a brand-new file: the one-machine default needs no step
            schema.check(self.db)
        except BaseException:
            self.db.close()
            raise

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    @property
    def schema_version(self) -> int:
        """The schema version of the open store."""
        return schema.read_version(self.db)

    def relaxed_sync(self) -> Any:
        """Commit without waiting for the disk; only for writes whose loss is harmless."""
        return self.db.relaxed()

    def transaction(self) -> Any:
        """One write transaction (SQLite: BEGIN IMMEDIATE), rolled back on any error; yields
        the database."""
        return self.db.transaction()

    # -- subscribers ---------------------------------------------------------------------------

    def _row(self, row: tuple[Any, ...]) -> Subscriber:
        tags = tuple(t for (t,) in self.db.execute(
            "SELECT tag FROM subscriber_tags WHERE subscriber_id = ?", (row[0],)))
        return replace(Subscriber(*row), tags=tuple(sorted(tags, key=str.lower)))

    def get(self, subscriber_id: int) -> Subscriber | None:
        """The subscriber with this id, or None."""
        row = self.db.execute(f"SELECT {_COLUMNS} FROM subscribers WHERE id = ?",
                              (subscriber_id,)).fetchone()
        return self._row(row) if row else None

    def find(self, email: str) -> Subscriber | None:
        """The subscriber with this address (compared case-insensitively), or None."""
        row = self.db.execute(f"SELECT {_COLUMNS} FROM subscribers WHERE email_key = ?",
                              (address_key(email),)).fetchone()
        return self._row(row) if row else None

    def iter_subscribers(self, status: str | None = None) -> Iterator[Subscriber]:
        """Every subscriber (optionally of one status) in id order, read in batches."""
        last = 0
        while True:
            where = "id > ?" + (" AND status = ?" if status else "")
            args = (last, status) if status else (last,)
            rows = self.db.execute(f"SELECT {_COLUMNS} FROM subscribers WHERE {where} "
                                   f"ORDER BY id LIMIT {BATCH}", args).fetchall()
            if not rows:
                return
            tags: dict[int, list[str]] = {}
            for subscriber_id, tag in self.db.execute(
                    "SELECT subscriber_id, tag FROM subscriber_tags WHERE subscriber_id > ? "
                    "AND subscriber_id <= ?", (last, rows[-1][0])):
                tags.setdefault(subscriber_id, []).append(tag)
            for row in rows:
                yield replace(Subscriber(*row),
                              tags=tuple(sorted(tags.get(row[0], ()), key=str.lower)))
            last = rows[-1][0]

    def suppression(self, email: str) -> str | None:
        """The suppression reason for an address, or None when it may be mailed."""
        row = self.db.execute("SELECT reason FROM suppressions WHERE email_key = ?",
                              (address_key(email),)).fetchone()
        return row[0] if row else None

    def insert(self, email: str, *, first_name: str = "", last_name: str = "",
               tags: Iterable[str] = (), status: str = "subscribed", source: str,
               consent_at: str | None = None) -> int:
        """Insert a new subscriber (inside the caller's transaction); return its id."""
        email = normalise_address(email)
        check_text("first name", first_name)
        check_text("last name", last_name)
        if status not in STATUSES:
            raise MailError(f"unknown subscriber status {status!r}; use one of "
                            f"{', '.join(STATUSES)}")
        stamp = now_iso()
        subscriber_id = self.db.execute(
            "INSERT INTO subscribers (email, email_key, first_name, last_name, status, "
            "consent_source, consent_at, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            (email, address_key(email), first_name, last_name, status, source,
             consent_at or stamp, stamp, stamp)).fetchone()[0]
        self.add_tags(subscriber_id, tags)
        self.event("added", source, subscriber_id, email, status)
        return subscriber_id

    def add_tags(self, subscriber_id: int, tags: Iterable[str]) -> int:
        """Add tags (case-insensitively unique); return how many were new."""
        added = 0
        for tag in tags:
            check_text("tag", tag)
            cur = self.db.execute("INSERT INTO subscriber_tags (subscriber_id, tag) VALUES (?, ?) "
                                  "ON CONFLICT DO NOTHING", (subscriber_id, tag.strip()))
            added += cur.rowcount
        return added

    def update_names(self, subscriber_id: int, first_name: str, last_name: str) -> bool:
        """Set the names when they differ; return whether anything changed."""
        check_text("first name", first_name)
        check_text("last name", last_name)
        cur = self.db.execute(
            "UPDATE subscribers SET first_name = ?, last_name = ?, updated_at = ? "
            "WHERE id = ? AND (first_name != ? OR last_name != ?)",
            (first_name, last_name, now_iso(), subscriber_id, first_name, last_name))
        return cur.rowcount > 0

    def set_status(self, subscriber_id: int, status: str, source: str, detail: str = "") -> None:
        """Change a subscriber's status and log it (inside the caller's transaction)."""
        self.db.execute("UPDATE subscribers SET status = ?, updated_at = ? WHERE id = ?",
                        (status, now_iso(), subscriber_id))
        self.event(status, source, subscriber_id, "", detail)

    def suppress(self, email: str, reason: str, source: str, detail: str = "") -> None:
        """Put an address on the suppression list (kept across imports) and mark its subscriber."""
        key = address_key(email)
        self.db.execute("INSERT INTO suppressions (email_key, reason, source, detail, "
                        "created_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                        (key, reason, source, detail, now_iso()))
        status = "unsubscribed" if reason == "unsubscribed" else (
            "complained" if reason == "complained" else "bounced")
        if status == "complained":  # a complaint outranks an earlier reason: keep it on record
            self.db.execute("UPDATE suppressions SET reason = ?, source = ?, detail = ? "
                            "WHERE email_key = ?", (reason, source, detail, key))
        row = self.db.execute("SELECT id, status FROM subscribers WHERE email_key = ?",
                              (key,)).fetchone()
        if row and (row[1] not in SUPPRESSING or status == "complained" != row[1]):
            self.set_status(row[0], status, source, detail or reason)
        elif not row:
            self.event("suppressed", source, None, email, f"{reason}: {detail}".rstrip(": "))

    def event(self, kind: str, source: str, subscriber_id: int | None = None, email: str = "",
              detail: str = "") -> None:
        """Append to the event log (time, what, where it came from)."""
        self.db.execute("INSERT INTO events (at, subscriber_id, email, kind, source, detail) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (now_iso(), subscriber_id, email, kind, source, detail))

    def events(self, subscriber_id: int) -> list[tuple[str, str, str, str]]:
        """(at, kind, source, detail) for one subscriber, oldest first."""
        return self.db.execute("SELECT at, kind, source, detail FROM events "
                               "WHERE subscriber_id = ? ORDER BY id", (subscriber_id,)).fetchall()

    def counts(self) -> dict[str, int]:
        """Subscribers per status (every status present, zero included)."""
        out = dict.fromkeys(STATUSES, 0)
        out.update(self.db.execute("SELECT status, COUNT(*) FROM subscribers GROUP BY status"))
        return out

    def suppression_counts(self) -> dict[str, int]:
        """Suppressed addresses per reason."""
        return dict(self.db.execute("SELECT reason, COUNT(*) FROM suppressions GROUP BY reason "
                                    "ORDER BY reason"))


    # -- audience, bounces, confirmations, stats -----------------------------------------------

    def audience(self, tag: str | None, after: int = 0,
                 limit: int = BATCH) -> list[tuple[int, str, str, str]]:
        """(id, email, first name, last name) of who gets an issue now, in id order after ``after``.

        The dry run reads this; the campaign snapshot inserts the same rows (``audience_clause``).
        """
        clause, args = audience_clause(tag)
        return self.db.execute(f"SELECT s.id, s.email, s.first_name, s.last_name {clause} "
                               f"AND s.id > ? ORDER BY s.id LIMIT {int(limit)}",
                               (*args, after)).fetchall()

    def first_report(self, report_id: str, source: str) -> bool:
        """Record a bounce or feedback report as processed; False when it was seen before."""
        return self.db.execute("INSERT INTO bounce_reports (report_id, source, "
                               "processed_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                               (report_id, source, now_iso())).rowcount > 0

    def failed_delivery(self, email: str, delivery: str, kind: str, status: str) -> bool:
        """Record one failed delivery to ``email``; False when this delivery was counted before."""
        return self.db.execute("INSERT INTO failed_deliveries (email_key, delivery, kind, "
                               "status, at) VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                               (address_key(email), delivery, kind, status, now_iso())).rowcount > 0

    def add_soft_bounce(self, subscriber_id: int, source: str, detail: str) -> int:
        """Count one more soft bounce for a subscriber; return the new count."""
        self.db.execute("UPDATE subscribers SET soft_bounces = soft_bounces + 1, updated_at = ? "
                        "WHERE id = ?", (now_iso(), subscriber_id))
        self.event("soft_bounce", source, subscriber_id, "", detail)
        return self.db.execute("SELECT soft_bounces FROM subscribers WHERE id = ?",
                               (subscriber_id,)).fetchone()[0]

    def recipient_of(self, message_id: str) -> str | None:
        """The address a campaign message with this Message-ID went to (for feedback reports)."""
        row = self.db.execute("SELECT s.email FROM deliveries d JOIN subscribers s ON "
                              "s.id = d.subscriber_id WHERE d.message_id = ? LIMIT 1",
                              (message_id,)).fetchone()
        return row[0] if row else None

    def confirm(self, subscriber_id: int, source: str) -> None:
        """A pending subscriber confirmed by email: subscribed, consent recorded, unsuppressed."""
        stamp = now_iso()
        self.db.execute("UPDATE subscribers SET status = 'subscribed', consent_source = ?, "
                        "consent_at = ?, updated_at = ? WHERE id = ?",
                        (source, stamp, stamp, subscriber_id))
        self.db.execute("DELETE FROM suppressions WHERE email_key = (SELECT email_key FROM "
                        "subscribers WHERE id = ?)", (subscriber_id,))
        self.event("confirmed", source, subscriber_id)

    def suppressions(self) -> Iterator[tuple[str, str, str, str, str]]:
        """Every suppression as (address key, reason, source, detail, created at), by key."""
        last = ""
        while rows := self.db.execute(
                "SELECT email_key, reason, source, detail, created_at FROM suppressions "
                f"WHERE email_key > ? ORDER BY email_key LIMIT {BATCH}", (last,)).fetchall():
            yield from rows
            last = rows[-1][0]

    def campaign_counts(self) -> list[tuple[str, str, dict[str, int], str]]:
        """(issue, campaign status, deliveries per state, why it paused) for every campaign,
        oldest first."""
        out = []
        for cid, issue, status, reason in self.db.execute(
                "SELECT id, issue, status, paused_reason FROM campaigns ORDER BY id").fetchall():
            counts = dict(self.db.execute(
                "SELECT status, COUNT(*) FROM deliveries WHERE campaign_id = ? "
                "GROUP BY status ORDER BY status", (cid,)))
            out.append((issue, status, counts, reason or ""))
        return out

    # -- deliverability: what the circuit-breaker and `pressroom doctor` read -------------------

    def campaign_pause(self, issue: str) -> tuple[str, str, str] | None:
        """(status, paused_reason, paused_kind) of the campaign for ``issue``, or None."""
        row = self.db.execute("SELECT status, paused_reason, paused_kind FROM campaigns "
                              "WHERE issue = ?", (issue,)).fetchone()
        return (row[0], row[1] or "", row[2] or "") if row else None

    def last_event_at(self, kind: str, source: str) -> str:
        """When the newest event of this kind and source happened ('' when there is none)."""
        row = self.db.execute("SELECT MAX(at) FROM events WHERE kind = ? AND source = ?",
                              (kind, source)).fetchone()
        return row[0] or ""

    def recent_outcomes(self, campaign_id: int, since: str, window: int) -> tuple[int, int, int]:
        """(deliveries, hard bounces, complaints) among the campaign's last ``window``
        deliveries (recipients handed to the server) after ``since``."""
        row = self.db.execute(_WINDOW_SQL, (*HARD_BOUNCES, campaign_id, since, window)).fetchone()
        return row[0], row[1], row[2]

    def campaign_rates(self, recent: int) -> list[tuple[str, int, int, int]]:
        """(issue, delivered, hard bounces, complaints) of the ``recent`` newest campaigns; a
        suppression counts against the latest campaign sent to the address before it."""
        campaigns = self.db.execute(
            "SELECT id, issue FROM campaigns ORDER BY created_at DESC, id DESC LIMIT ?",
            (recent,)).fetchall()
        return [(issue, *self.db.execute(_RATES_SQL, (*HARD_BOUNCES, cid)).fetchone())
                for cid, issue in campaigns]

    # -- the notice outbox (confirmation and "already subscribed" emails) -----------------------

    def enqueue_notice(self, recipient: str, message_id: str, data: bytes) -> int:
        """Queue one built message for the outbox sender; return its row id."""
        stamp = now_iso()
        return int(self.db.execute(
            "INSERT INTO notices (recipient, message_id, data, status, created_at, updated_at) "
            "VALUES (?, ?, ?, 'queued', ?, ?) RETURNING id",
            (recipient, message_id, data, stamp, stamp)).fetchone()[0])

    def claim_notice(self, now: float, lease: float) -> tuple[int, str, bytes, int, float] | None:
        """Take the oldest due notice for sending: (id, recipient, data, attempts, claim), or
        None. ``claim`` is the claim's lease end; pass it back to :meth:`finish_notice`.

        A claimed row is ``sending`` until ``now + lease``; after that another sender may take
        it (its sender died), so two senders never send one notice at the same time. On
        PostgreSQL the row is locked while it is claimed and other workers skip it.
        """
        skip = " FOR UPDATE SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        claim = now + lease
        with self.transaction() as db:
            row = db.execute("SELECT id, recipient, data, attempts FROM notices WHERE status IN "
                             "('queued', 'sending') AND next_attempt_at <= ? ORDER BY id "
                             f"LIMIT 1{skip}", (now,)).fetchone()
            if row is not None:
                db.execute("UPDATE notices SET status = 'sending', next_attempt_at = ?, "
                           "updated_at = ? WHERE id = ?", (claim, now_iso(), row[0]))
        return (row[0], row[1], bytes(row[2]), row[3], claim) if row else None

    def finish_notice(self, notice_id: int, claim: float, status: str, reply: str,
                      attempts: int, next_attempt_at: float = 0) -> bool:
        """Record an attempt: ``sent``, ``failed``, or ``queued`` again for ``next_attempt_at``.

        Only while this sender still holds its ``claim``: once the lease ran out and another
        sender took the notice over, the row is that sender's (it may have sent it already),
        and False is returned with nothing changed.
        """
        with self.transaction() as db:
            changed = db.execute(
                "UPDATE notices SET status = ?, last_reply = ?, attempts = ?, next_attempt_at = ?, "
                "updated_at = ? WHERE id = ? AND status = 'sending' AND next_attempt_at = ?",
                (status, reply, attempts, next_attempt_at, now_iso(), notice_id, claim)).rowcount
        return changed == 1

    def notice_counts(self) -> dict[str, int]:
        """Notices per status (queued, sending, sent, failed)."""
        out = dict.fromkeys(("queued", "sending", "sent", "failed"), 0)
        out.update(self.db.execute("SELECT status, COUNT(*) FROM notices GROUP BY status"))
        return out

    def next_notice_at(self) -> float | None:
        """When the earliest unsent notice becomes due (None when none waits)."""
        return self.db.execute("SELECT MIN(next_attempt_at) FROM notices WHERE status IN "
                               "('queued', 'sending')").fetchone()[0]


def audience_clause(tag: str | None) -> tuple[str, tuple[str, ...]]:
    """The one definition of "who gets this issue": FROM/WHERE over subscribers ``s``, and args.

    Subscribed, not on the suppression list, and (with a tag) tagged so, compared
    case-insensitively (lower() on both engines). The dry run and the campaign snapshot both
    use it.
    """
    clause = ("FROM subscribers s WHERE s.status = 'subscribed' AND NOT EXISTS "
              "(SELECT 1 FROM suppressions p WHERE p.email_key = s.email_key)")
    if not tag:
        return clause, ()
    return (clause + " AND EXISTS (SELECT 1 FROM subscriber_tags t WHERE t.subscriber_id = s.id "
            "AND lower(t.tag) = lower(?))", (tag,))


def open_store(location: Location, fsync: bool = False) -> Store:
    """Open the store at ``location`` (a SQLite file, created if new, or a postgresql:// URL).

    Raises MailError when its schema is older (run `pressroom db upgrade`) or newer than this
    code's. Example: ``with open_store(Path(".pressroom/subscribers.sqlite3")) as store: ...``.
    """
    return Store(location, fsync)
