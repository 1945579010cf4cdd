"""Send slots shared by every sender of a store: the rate, the hourly cap, relay connections.

The limits live in the database, not in a process, so they hold across restarts and across
several senders on several hosts. One ``send_pacing`` row per key ('global', or
'relay:HOST:PORT' for a relay's own rate) holds the next free slot; a sender takes a slot in
one transaction that locks the row (``FOR UPDATE`` on PostgreSQL, the write lock on SQLite),
so two senders never get the same slot. The hourly cap counts the slots handed out in the last
hour (``deliveries.paced_at``), whoever took them. A relay's ``connections`` limit is a set of
leased rows in ``relay_slots``.
"""

from __future__ import annotations

import datetime as _dt
import logging
import threading
import time
from typing import Callable

from pressroom.mail.ledger import Ledger, is_postgres
from pressroom.mail.progress import log as progress_log
from pressroom.mail.settings import Relay
from pressroom.mail.store import Store, open_store

log = logging.getLogger(__name__)

GLOBAL = "global"
HOUR = 3600.0


class Pacer:
    """Messages per second and per hour for every sender of the store (see the module doc)."""

    def __init__(self, ledger: Ledger, rate: float | None, hourly_cap: int | None,
                 clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, lease: float = 60.0) -> None:
        self.ledger, self.store = ledger, ledger.store
        self.rate, self.cap, self.clock, self.sleep = rate, hourly_cap, clock, sleep
        self.lease = lease

    def _next_at(self, key: str) -> float:
        """Lock the key's row (inside the caller's transaction) and read its next free slot."""
        db = self.store.db
        db.execute("INSERT INTO send_pacing (key, next_at) VALUES (?, 0) "
                   "ON CONFLICT (key) DO NOTHING", (key,))
        lock = " FOR UPDATE" if is_postgres(self.store) else ""
        return db.execute(f"SELECT next_at FROM send_pacing WHERE key = ?{lock}",
                          (key,)).fetchone()[0]

    def _capped(self, at: float) -> float:
        """The earliest time from ``at`` when fewer than ``cap`` slots fall in the last hour."""
        row = self.store.db.execute(
            "SELECT paced_at FROM deliveries WHERE paced_at > ? ORDER BY paced_at DESC "
            "LIMIT 1 OFFSET ?", (at - HOUR, (self.cap or 1) - 1)).fetchone()
        return max(at, row[0] + HOUR) if row else at

    def wait(self, subscriber_id: int) -> None:
        """Take the next global send slot for this recipient and sleep until it comes."""
        if not self.rate and not self.cap:
            return
        now = self.clock()
        with self.store.transaction() as db:
            at = max(now, self._next_at(GLOBAL)) if self.rate else now
            capped = self._capped(at) if self.cap else at
            db.execute("UPDATE deliveries SET paced_at = ? WHERE campaign_id = ? AND "
                       "subscriber_id = ?", (capped, self.ledger.campaign_id, subscriber_id))
            if self.rate:
                db.execute("UPDATE send_pacing SET next_at = ? WHERE key = ?",
                           (capped + 1.0 / self.rate, GLOBAL))
        if capped > at:
            until = _dt.datetime.fromtimestamp(capped, _dt.UTC).strftime("%H:%M:%S UTC")
            progress_log.info("hourly cap of %d messages reached; waiting %.0f s, until %s",
                              self.cap, capped - now, until)
        if capped > now:
            self.sleep(capped - now)

    def relay(self, relay: Relay) -> None:
        """Take the next slot of one relay's own rate (if it has one) and sleep until it."""
        if not relay.rate:
            return
        now = self.clock()
        key = f"relay:{relay.name}"
        with self.store.transaction() as db:
            at = max(now, self._next_at(key))
            db.execute("UPDATE send_pacing SET next_at = ? WHERE key = ?",
                       (at + 1.0 / relay.rate, key))
        if at > now:
            self.sleep(at - now)

    def acquire(self, relay: Relay) -> bool:
        """Lease one of the relay's connection slots (True), or say every one is in use."""
        if relay.connections is None:
            return True
        now, worker = self.clock(), self.ledger.worker
        with self.store.transaction() as db:
            self._next_at(f"relay:{relay.name}")  # serialises the slot hand-out per relay
            taken = {slot: (owner, until) for slot, owner, until in db.execute(
                "SELECT slot, owner, until FROM relay_slots WHERE relay = ?", (relay.name,))}
            for slot in range(relay.connections):
                owner, until = taken.get(slot, ("", 0.0))
                if owner == worker or until < now:
                    db.execute("INSERT INTO relay_slots (relay, slot, owner, until) VALUES "
                               "(?, ?, ?, ?) ON CONFLICT (relay, slot) DO UPDATE SET owner = "
                               "excluded.owner, until = excluded.until",
                               (relay.name, slot, worker, now + self.lease))
                    return True
        return False

    def release(self, relay: Relay) -> None:
        """Give back this sender's connection slot on ``relay``."""
        if relay.connections is not None:
            self.store.db.execute("DELETE FROM relay_slots WHERE relay = ? AND owner = ?",
                                  (relay.name, self.ledger.worker))


class LeaseKeeper:
    """A thread that renews this sender's leases (claimed rows, relay connections) every third
    of the lease, on its own connection to the store, while the send runs.

    If the process dies the renewals stop, and after ``lease`` seconds the other senders take
    its claimed rows and report its in-flight ones as ``unknown``.
    """

    def __init__(self, ledger: Ledger, lease: float) -> None:
        self.ledger, self.lease = ledger, lease
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lease-keeper", daemon=True)

    def __enter__(self) -> "LeaseKeeper":
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()

    def _run(self) -> None:
        store: Store = open_store(self.ledger.store.location)
        try:
            while not self.stop.wait(self.lease / 3):
                renew(store, self.ledger, time.time() + self.lease)
        finally:
            store.close()


def renew(store: Store, ledger: Ledger, until: float) -> None:
    """Extend every lease ``ledger``'s sender holds, through ``store``."""
    with store.transaction() as db:
        db.execute("UPDATE deliveries SET lease_until = ? WHERE campaign_id = ? AND "
                   "lease_owner = ? AND status IN ('pending', 'retry', 'sending')",
                   (until, ledger.campaign_id, ledger.worker))
        db.execute("UPDATE relay_slots SET until = ? WHERE owner = ?", (until, ledger.worker))
