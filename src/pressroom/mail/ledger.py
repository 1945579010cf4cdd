"""The per-recipient campaign ledger, the send lock and the pacer that spans restarts.

Every state change is its own committed transaction: ``sending`` is on disk before DATA starts
and ``sent`` only after the server's 250, so a crash leaves at worst a ``sending`` row, which
the next run turns into ``unknown`` instead of mailing that person twice.
"""

from __future__ import annotations

import collections
import datetime as _dt
import fcntl
import logging
import os
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator

from pressroom.errors import MailError
from pressroom.mail.progress import log as progress_log
from pressroom.mail.store import BATCH, Store, audience_clause, now_iso

log = logging.getLogger(__name__)

LEDGER_STATES = ("pending", "sending", "sent", "retry", "failed", "unknown", "skipped")
EVERYONE = ""  # the audience key for "no --tag"
_PG_SEND_LOCK = 0x70726573_73656E64  # "pressend": the advisory lock of `pressroom send`


@dataclass(frozen=True)
class Due:
    """One recipient ready for an attempt, joined with what we need to check and render."""

    subscriber_id: int
    email: str
    first_name: str
    last_name: str
    subscriber_status: str
    suppressed: str | None
    status: str
    attempts: int


class Ledger:
    """The deliveries of one campaign (one newsletter issue) in an open store."""

    def __init__(self, store: Store, campaign_id: int, issue: str) -> None:
        self.store = store
        self.db = store.db
        self.campaign_id = campaign_id
        self.issue = issue

    @classmethod
    def open(cls, store: Store, issue: str, subject: str, tag: str | None) -> "Ledger":
        """Find or create the campaign for ``issue`` and snapshot the audience for ``tag``.

        Each audience (everyone, or one tag) is snapshotted once; a later run with another tag
        adds only people not already in the ledger, so nobody gets an issue twice.
        """
        stamp = now_iso()
        with store.transaction() as db:
            row = db.execute("SELECT id FROM campaigns WHERE issue = ?", (issue,)).fetchone()
            if row is None:
                campaign_id = db.execute(
                    "INSERT INTO campaigns (issue, subject, status, created_at, updated_at) "
                    "VALUES (?, ?, 'sending', ?, ?) RETURNING id",
                    (issue, subject, stamp, stamp)).fetchone()[0]
            else:
                campaign_id = row[0]
            key = (tag or EVERYONE).lower()  # tags compare case-insensitively
            taken = db.execute("SELECT 1 FROM campaign_audiences WHERE campaign_id = ? AND tag = ?",
                               (campaign_id, key)).fetchone()
            if not taken:
                clause, args = audience_clause(tag)
                sql = ("INSERT INTO deliveries (campaign_id, subscriber_id, status, updated_at) "
                       f"SELECT ?, s.id, 'pending', ? {clause} ON CONFLICT DO NOTHING")
                added = db.execute(sql, (campaign_id, stamp, *args)).rowcount
                db.execute("INSERT INTO campaign_audiences (campaign_id, tag, snapshot_at) "
                           "VALUES (?, ?, ?)", (campaign_id, key, stamp))
                log.info("%s: snapshotted %d recipients (%s)", issue, added,
                         f"tag {tag}" if tag else "everyone subscribed")
            db.execute("UPDATE campaigns SET status = 'sending', paused_reason = '', "
                       "paused_kind = '', updated_at = ? WHERE id = ?", (stamp, campaign_id))
            # A new run is a new chance for everyone deferred: try them now, not at the backoff.
            db.execute("UPDATE deliveries SET next_attempt_at = 0 WHERE campaign_id = ? AND "
                       "status = 'retry'", (campaign_id,))
        return cls(store, campaign_id, issue)

    @classmethod
    def find(cls, store: Store, issue: str) -> "Ledger | None":
        """The existing campaign for ``issue``, or None."""
        row = store.db.execute("SELECT id FROM campaigns WHERE issue = ?", (issue,)).fetchone()
        return cls(store, row[0], issue) if row else None

    def _set(self, subscriber_id: int, status: str, **values: object) -> None:
        columns = "".join(f", {name} = ?" for name in values)
        sql = (f"UPDATE deliveries SET status = ?, updated_at = ?{columns} "
               "WHERE campaign_id = ? AND subscriber_id = ?")
        args = (status, now_iso(), *values.values(), self.campaign_id, subscriber_id)
        if status == "sending" or self.db.in_transaction:
            self.db.execute(sql, args)
        else:
            # Losing any later mark to a power cut leaves 'sending' (reported as unknown, never
            # re-sent), and the next 'sending' commit flushes it anyway: skip its own fsync.
            with self.store.relaxed_sync():
                self.db.execute(sql, args)

    def stale_to_unknown(self) -> int:
        """Rows left in ``sending`` by a crashed run (we hold the lock) become ``unknown``."""
        return self.db.execute(
            "UPDATE deliveries SET status = 'unknown', updated_at = ?, last_reply = "
            "'interrupted during delivery (crash or kill): it may or may not have arrived' "
            "WHERE campaign_id = ? AND status = 'sending'", (now_iso(), self.campaign_id)).rowcount

    def requeue_unknown(self) -> int:
        """--resend-unknown: put every ``unknown`` row back in the queue."""
        return self.db.execute(
            "UPDATE deliveries SET status = 'retry', next_attempt_at = 0, updated_at = ? "
            "WHERE campaign_id = ? AND status = 'unknown'", (now_iso(), self.campaign_id)).rowcount

    def due(self, now: float, after: int, include_unknown: bool = False,
            limit: int = BATCH) -> list[Due]:
        """The next batch of recipients to attempt, in subscriber order after ``after``."""
        extra = " OR d.status = 'unknown'" if include_unknown else ""
        rows = self.db.execute(
            "SELECT d.subscriber_id, s.email, s.first_name, s.last_name, s.status, p.reason, "
            "d.status, d.attempts FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
            "LEFT JOIN suppressions p ON p.email_key = s.email_key "
            "WHERE d.campaign_id = ? AND d.subscriber_id > ? AND (d.status = 'pending' OR "
            f"(d.status = 'retry' AND d.next_attempt_at <= ?){extra}) "
            "ORDER BY d.subscriber_id LIMIT ?", (self.campaign_id, after, now, limit)).fetchall()
        return [Due(*row) for row in rows]

    def next_retry_at(self) -> float | None:
        """When the earliest waiting retry becomes due (None when none waits)."""
        return self.db.execute("SELECT MIN(next_attempt_at) FROM deliveries WHERE campaign_id = ? "
                               "AND status = 'retry'", (self.campaign_id,)).fetchone()[0]

    def claim(self, subscriber_id: int) -> str | None:
        """Commit ``sending`` before DATA if the recipient may still be mailed; else say why not.

        The check and the mark are one write transaction, so an unsubscribe that commits
        before it stops the message, and one that commits after it finds the message already
        on its way. A recipient who may no longer be mailed is marked ``skipped``.
        """
        with self.store.transaction() as db:
            row = db.execute("SELECT s.status, p.reason FROM subscribers s LEFT JOIN suppressions "
                             "p ON p.email_key = s.email_key WHERE s.id = ?",
                             (subscriber_id,)).fetchone()
            if row is None or row[0] != "subscribed" or row[1]:
                reason = f"{(row[1] or row[0]) if row else 'deleted'} since the snapshot"
                self._set(subscriber_id, "skipped", last_reply=reason)
                return reason
            self._set(subscriber_id, "sending")
        return None

    def sent(self, subscriber_id: int, message_id: str, reply: str, at: float,
             attempts: int) -> None:
        """Commit ``sent`` after the server's 250."""
        self._set(subscriber_id, "sent", message_id=message_id, last_reply=reply,
                  submitted_at=at, attempts=attempts)

    def unknown(self, subscriber_id: int, message_id: str, reply: str, at: float,
                attempts: int) -> None:
        """The message went out but its reply never came."""
        self._set(subscriber_id, "unknown", message_id=message_id, last_reply=reply,
                  submitted_at=at, attempts=attempts)

    def retry(self, subscriber_id: int, reply: str, attempts: int, at: float) -> None:
        """A transient failure: try again at ``at``."""
        self._set(subscriber_id, "retry", last_reply=reply, attempts=attempts, next_attempt_at=at)

    def failed(self, subscriber_id: int, reply: str, attempts: int) -> None:
        """A permanent failure for this recipient."""
        self._set(subscriber_id, "failed", last_reply=reply, attempts=attempts)

    def skipped(self, subscriber_id: int, reason: str) -> None:
        """No longer to be mailed (unsubscribed or suppressed since the snapshot)."""
        self._set(subscriber_id, "skipped", last_reply=reason)

    def restore(self, subscriber_id: int, status: str) -> None:
        """Put a recipient back as it was before an attempt the campaign did not finish."""
        self._set(subscriber_id, status if status in ("pending", "retry") else "retry")

    def pause(self, reason: str, kind: str) -> None:
        """Mark the campaign paused: ``kind`` says who paused it, ``reason`` what to do."""
        self.db.execute("UPDATE campaigns SET status = 'paused', paused_reason = ?, "
                        "paused_kind = ?, updated_at = ? WHERE id = ?",
                        (reason, kind, now_iso(), self.campaign_id))

    def requeue_failed(self) -> int:
        """--retry-failed: queue again every failed recipient who is still subscribed and
        not suppressed (the others stay failed)."""
        return self.db.execute(
            "UPDATE deliveries SET status = 'retry', next_attempt_at = 0, updated_at = ? "
            "WHERE campaign_id = ? AND status = 'failed' AND subscriber_id IN (SELECT s.id "
            "FROM subscribers s WHERE s.status = 'subscribed' AND NOT EXISTS (SELECT 1 FROM "
            "suppressions p WHERE p.email_key = s.email_key))",
            (now_iso(), self.campaign_id)).rowcount

    def finish_if_done(self) -> bool:
        """Mark the campaign done when nothing is left to attempt."""
        counts = self.counts()
        if counts["pending"] or counts["retry"] or counts["sending"]:
            return False
        self.db.execute("UPDATE campaigns SET status = 'done', updated_at = ? WHERE id = ?",
                        (now_iso(), self.campaign_id))
        return True

    def counts(self) -> dict[str, int]:
        """Deliveries per ledger state (all states present)."""
        out = dict.fromkeys(LEDGER_STATES, 0)
        out.update(self.db.execute("SELECT status, COUNT(*) FROM deliveries WHERE campaign_id = ? "
                                   "GROUP BY status", (self.campaign_id,)))
        return out

    def last_reply(self, status: str) -> str:
        """The most recent server reply among recipients in ``status`` ('' when none)."""
        row = self.db.execute("SELECT last_reply FROM deliveries WHERE campaign_id = ? AND "
                              "status = ? ORDER BY updated_at DESC, subscriber_id DESC LIMIT 1",
                              (self.campaign_id, status)).fetchone()
        return row[0] if row else ""

    def addresses(self, status: str) -> list[tuple[str, str]]:
        """(address, last reply) of every recipient in ``status`` (for unknown/failed reports)."""
        return self.db.execute(
            "SELECT s.email, d.last_reply FROM deliveries d JOIN subscribers s ON "
            "s.id = d.subscriber_id WHERE d.campaign_id = ? AND d.status = ? "
            "ORDER BY d.subscriber_id", (self.campaign_id, status)).fetchall()


def lock_path(store: Store) -> str:
    """The lock file next to the store (matches the store's git-ignore pattern)."""
    return f"{store.path}-send.lock"


@contextmanager
def send_lock(store: Store, issue: str) -> Iterator[None]:
    """Hold the store's send lock; a second sender gets a MailError naming the first.

    ``flock`` is released by the kernel when the holder dies, so a crash never leaves the
    campaign locked; the lock row only tells the second process who holds it. On PostgreSQL a
    session advisory lock plays flock's part (released when the connection ends).
    """
    fd = -1
    if store.db.dialect == "postgresql":
        held = store.db.execute("SELECT pg_try_advisory_lock(?)", (_PG_SEND_LOCK,)).fetchone()[0]
    else:
        fd = os.open(lock_path(store), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            os.close(fd)
            held = False
    if not held:
        row = store.db.execute("SELECT pid, host, issue, started_at FROM send_lock").fetchone()
        who = (f" (pid {row[0]} on {row[1]}, sending {row[2]} since {row[3]})" if row else "")
        raise MailError(f"another `pressroom send` is already running from this subscriber "
                        f"store{who}; wait for it to finish (or stop it), then run the command "
                        "again to resume") from None
    try:
        with store.transaction() as db:
            db.execute("INSERT INTO send_lock (id, pid, host, issue, started_at) "
                       "VALUES (1, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET pid = excluded.pid, "
                       "host = excluded.host, issue = excluded.issue, "
                       "started_at = excluded.started_at",
                       (os.getpid(), socket.gethostname(), issue, now_iso()))
        yield
    finally:
        try:
            store.db.execute("DELETE FROM send_lock WHERE id = 1 AND pid = ?", (os.getpid(),))
        finally:
            if fd >= 0:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            else:
                store.db.execute("SELECT pg_advisory_unlock(?)", (_PG_SEND_LOCK,))


class Pacer:
    """Messages per second and per hour, counted from the ledger so limits hold across restarts."""

    def __init__(self, store: Store, rate: float | None, hourly_cap: int | None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate, self.cap, self.clock, self.sleep = rate, hourly_cap, clock, sleep
        self.last = store.db.execute("SELECT MAX(submitted_at) FROM deliveries").fetchone()[0]
        self.window: collections.deque[float] = collections.deque()
        if hourly_cap:
            recent = store.db.execute(
                "SELECT submitted_at FROM deliveries WHERE submitted_at > ? "
                "ORDER BY submitted_at DESC LIMIT ?", (clock() - 3600, hourly_cap)).fetchall()
            self.window.extend(sorted(t for (t,) in recent))

    def wait(self) -> None:
        """Sleep until the next message is allowed."""
        now = self.clock()
        at = now
        if self.rate and self.last is not None:
            at = max(at, self.last + 1.0 / self.rate)
        if self.cap and len(self.window) >= self.cap:
            at = max(at, self.window[0] + 3600.0)
            if at > now:
                until = _dt.datetime.fromtimestamp(at, _dt.UTC).strftime("%H:%M:%S UTC")
                progress_log.info("hourly cap of %d messages reached; waiting %.0f s, until %s",
                            self.cap, at - now, until)
        if at > now:
            self.sleep(at - now)

    def record(self, at: float) -> None:
        """Count one message handed to the server at ``at``."""
        self.last = at
        if self.cap:
            self.window.append(at)
            while len(self.window) > self.cap:
                self.window.popleft()
