"""The per-recipient campaign ledger, leased batches for several senders, and the send lock.

Every state change is its own committed transaction: ``sending`` is on disk before DATA starts
and ``sent`` only after the server's 250, so a crash leaves at worst a ``sending`` row, which
the next run turns into ``unknown`` instead of mailing that person twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
import secrets
import socket
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

from pressroom.errors import MailError
from pressroom.mail.store import BATCH, Store, audience_clause, now_iso

log = logging.getLogger(__name__)

# Rows a sender leases at a time: small enough that several senders share out the last rows of
# a campaign evenly, large enough that claiming stays a small part of each message's cost.
CLAIM = 20
LEDGER_STATES = ("pending", "sending", "sent", "retry", "failed", "unknown", "skipped")
EVERYONE = ""  # the audience key for "no --tag"
TAKEN = "claimed by another sender after this one's lease ran out"
_PG_SEND_LOCK = 0x70726573_73656E64  # "pressend": the advisory lock of `pressroom send`


def is_postgres(store: Store) -> bool:
    """True when the store is PostgreSQL (several senders may share it)."""
    return getattr(store.db, "dialect", "sqlite") == "postgresql"


def worker_id() -> str:
    """This sender, as leases name it: host, process and a random part (pids get reused)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"


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
        self.worker = worker_id()
        # SQLite: one sender at a time (send_lock); PostgreSQL: several, coordinated by leases.
        self.exclusive = not is_postgres(store)

    @classmethod
    def open(cls, store: Store, issue: str, subject: str, tag: str | None) -> "Ledger":
        """Find or create the campaign for ``issue`` and snapshot the audience for ``tag``.

        Each audience (everyone, or one tag) is snapshotted once; a later run with another tag
        adds only people not already in the ledger, so nobody gets an issue twice.
        """
        stamp = now_iso()
        with store.transaction() as db:
            if is_postgres(store):  # senders starting together snapshot the audience once
                db.execute("SELECT pg_advisory_xact_lock(hashtext(?))", (f"campaign:{issue}",))
            db.execute("INSERT INTO campaigns (issue, subject, status, created_at, updated_at) "
                       "VALUES (?, ?, 'sending', ?, ?) ON CONFLICT (issue) DO NOTHING",
                       (issue, subject, stamp, stamp))
            campaign_id = db.execute("SELECT id FROM campaigns WHERE issue = ?",
                                     (issue,)).fetchone()[0]
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

    def stale_to_unknown(self, now: float | None = None) -> int:
        """Rows left in ``sending`` by a crashed sender become ``unknown``: every such row when
        we hold the SQLite lock, else those whose sender's lease expired before ``now``."""
        lease = "" if self.exclusive else " AND lease_until < ?"
        extra = () if self.exclusive else (time.time() if now is None else now,)
        return self.db.execute(
            "UPDATE deliveries SET status = 'unknown', updated_at = ?, last_reply = "
            "'interrupted during delivery (crash or kill): it may or may not have arrived' "
            f"WHERE campaign_id = ? AND status = 'sending'{lease}",
            (now_iso(), self.campaign_id, *extra)).rowcount

    def claim_batch(self, now: float, lease: float, after: int = 0,
                    limit: int = CLAIM) -> list[Due]:
        """Lease the next due rows to this sender until ``now + lease`` and return them.

        On PostgreSQL ``FOR UPDATE SKIP LOCKED`` lets several senders claim at once, each
        getting rows no other holds; a row leased by a sender that stopped renewing comes back
        when its lease expires. The sender holding the SQLite lock ignores old leases.
        """
        lease_free = ("" if self.exclusive else
                      " AND (lease_owner = '' OR lease_until < ? OR lease_owner = ?)")
        skip = " FOR UPDATE SKIP LOCKED" if is_postgres(self.store) else ""
        with self.store.transaction() as db:
            ids = [sid for (sid,) in db.execute(
                "SELECT subscriber_id FROM deliveries WHERE campaign_id = ? AND subscriber_id > ? "
                "AND (status = 'pending' OR (status = 'retry' AND next_attempt_at <= ?))"
                f"{lease_free} ORDER BY subscriber_id LIMIT ?{skip}",
                (self.campaign_id, after, now, *(() if self.exclusive else (now, self.worker)),
                 limit)).fetchall()]
            if not ids:
                return []
            marks = ", ".join("?" * len(ids))
            db.execute("UPDATE deliveries SET lease_owner = ?, lease_until = ? WHERE "
                       f"campaign_id = ? AND subscriber_id IN ({marks})",
                       (self.worker, now + lease, self.campaign_id, *ids))
        rows = self.db.execute(
            "SELECT d.subscriber_id, s.email, s.first_name, s.last_name, s.status, p.reason, "
            "d.status, d.attempts FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
            "LEFT JOIN suppressions p ON p.email_key = s.email_key "
            f"WHERE d.campaign_id = ? AND d.subscriber_id IN ({marks}) ORDER BY d.subscriber_id",
            (self.campaign_id, *ids)).fetchall()
        return [Due(*row) for row in rows]

    def release(self) -> None:
        """Give back the rows this sender claimed but did not finish (others may take them)."""
        self.db.execute("UPDATE deliveries SET lease_owner = '', lease_until = 0 WHERE "
                        "campaign_id = ? AND lease_owner = ? AND status IN ('pending', 'retry')",
                        (self.campaign_id, self.worker))

    def claimable(self, now: float) -> bool:
        """Whether a row is due that this sender could lease now (one freed by an expired
        lease, say, behind where this sender's sweep had got to)."""
        return self.db.execute(
            "SELECT 1 FROM deliveries WHERE campaign_id = ? AND (status = 'pending' OR "
            "(status = 'retry' AND next_attempt_at <= ?)) AND (lease_owner = '' OR "
            "lease_until < ? OR lease_owner = ?) LIMIT 1",
            (self.campaign_id, now, now, self.worker)).fetchone() is not None

    def others_busy(self, now: float) -> float | None:
        """When the last live lease of another sender on this campaign expires (None: no other
        sender holds unfinished rows)."""
        return self.db.execute(
            "SELECT MAX(lease_until) FROM deliveries WHERE campaign_id = ? AND lease_owner <> ? "
            "AND lease_owner <> '' AND lease_until >= ? AND status IN ('pending', 'retry', "
            "'sending')",
            (self.campaign_id, self.worker, now)).fetchone()[0]

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

    def relays(self) -> list[tuple[str, int]]:
        """(relay, messages it accepted) for this campaign, most first."""
        return self.db.execute(
            "SELECT relay, COUNT(*) FROM deliveries WHERE campaign_id = ? AND status = 'sent' "
            "AND relay <> '' GROUP BY relay ORDER BY COUNT(*) DESC, relay",
            (self.campaign_id,)).fetchall()

    def claim(self, subscriber_id: int) -> str | None:
        """Commit ``sending`` before DATA if the recipient may still be mailed; else say why not.

        The check and the mark are one write transaction, so an unsubscribe that commits
        before it stops the message, and one that commits after it finds the message already
        on its way. A recipient who may no longer be mailed is marked ``skipped``.
        """
        with self.store.transaction() as db:
            lock = " FOR UPDATE" if is_postgres(self.store) else ""
            mine = db.execute("SELECT status, lease_owner FROM deliveries WHERE campaign_id = ? "
                              f"AND subscriber_id = ?{lock}",
                              (self.campaign_id, subscriber_id)).fetchone()
            if mine is None or mine[0] not in ("pending", "retry", "sending") or (
                    mine[1] != self.worker):
                return TAKEN  # our lease ran out and another sender has it: leave it to them
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
             attempts: int, relay: str = "") -> None:
        """Commit ``sent`` after the server's 250 (``relay``: host:port that accepted it)."""
        self._set(subscriber_id, "sent", message_id=message_id, last_reply=reply,
                  submitted_at=at, attempts=attempts, relay=relay)

    def unknown(self, subscriber_id: int, message_id: str, reply: str, at: float,
                attempts: int, relay: str = "") -> None:
        """The message went out (through ``relay``) but its reply never came."""
        self._set(subscriber_id, "unknown", message_id=message_id, last_reply=reply,
                  submitted_at=at, attempts=attempts, relay=relay)

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
