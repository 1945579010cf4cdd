"""The campaign circuit-breaker: pause a send whose recent deliveries bounce or draw complaints.

Over the last ``mail.breaker_window`` deliveries of the campaign (recipients handed to the
server, accepted or refused), a hard-bounce rate above ``mail.max_hard_bounce_rate`` (5%) or
a complaint rate above ``mail.max_complaint_rate`` (0.3%) pauses the campaign with the reason
stored in the ledger. Hard bounces are refusals during the send (suppressed as ``rejected``)
and bounce reports processed meanwhile (``hard_bounce``); complaints are ``complained``
suppressions. A breaker pause is resumed only by ``pressroom send ISSUE --resume``, which
records a ``campaign_resumed`` event: deliveries up to that second no longer count.

The send loop needs two calls: ``Breaker.before_open`` before the ledger is opened (it refuses
a breaker-paused campaign without ``resume``) and ``breaker.check(rejected)`` after each
recipient; a returned reason means "pause now with this reason".
"""

from __future__ import annotations

from pressroom.errors import MailError
from pressroom.mail.settings import MailSettings
from pressroom.mail.store import Store

PREFIX = "circuit-breaker: "
RESUMED = "campaign_resumed"
MIN_SAMPLE = 50   # fewer deliveries than this (or the window) say too little to pause on
CHECK_EVERY = 10  # recipients between checks (and after every refusal)
HARD = ("hard_bounce", "rejected")

_WINDOW_SQL = (
    "SELECT COUNT(*), COALESCE(SUM(reason IN (?, ?)), 0), "
    "COALESCE(SUM(reason = 'complained'), 0) FROM (SELECT p.reason AS reason FROM deliveries d "
    "JOIN subscribers s ON s.id = d.subscriber_id "
    "LEFT JOIN suppressions p ON p.email_key = s.email_key WHERE d.campaign_id = ? "
    "AND d.status IN ('sent', 'failed') AND d.updated_at > ? "
    "ORDER BY d.updated_at DESC, d.subscriber_id DESC LIMIT ?)")


class Breaker:
    """Watches one campaign's recent deliveries; says when to pause and why."""

    def __init__(self, store: Store, issue: str, settings: MailSettings, since: str) -> None:
        self.store, self.issue, self.settings, self.since = store, issue, settings, since
        self.campaign_id: int | None = None
        self.seen = 0

    @classmethod
    def before_open(cls, store: Store, issue: str, settings: MailSettings,
                    resume: bool) -> "Breaker":
        """Refuse a breaker-paused campaign unless ``resume``; on resume, start a new window."""
        row = store.db.execute("SELECT status, paused_reason FROM campaigns WHERE issue = ?",
                               (issue,)).fetchone()
        tripped = row is not None and row[0] == "paused" and row[1].startswith(PREFIX)
        if tripped and not resume:
            raise MailError(f"campaign {issue} is paused by its {row[1]}")
        if tripped:
            with store.transaction():
                store.event(RESUMED, f"send:{issue}", detail=row[1])
        since = store.db.execute("SELECT MAX(at) FROM events WHERE kind = ? AND source = ?",
                                 (RESUMED, f"send:{issue}")).fetchone()[0]
        return cls(store, issue, settings, since or "")

    def attach(self, campaign_id: int) -> None:
        """Watch this campaign (known once the ledger is open)."""
        self.campaign_id = campaign_id

    def rates(self) -> tuple[int, int, int]:
        """(deliveries in the window, hard bounces, complaints) since the last resume."""
        s = self.settings
        row = self.store.db.execute(_WINDOW_SQL, (*HARD, self.campaign_id, self.since,
                                                  s.breaker_window)).fetchone()
        return row[0], row[1], row[2]

    def check(self, rejected: bool = False) -> str | None:
        """After one recipient: the pause reason when a limit is exceeded, else None."""
        self.seen += 1
        if self.campaign_id is None or not (rejected or self.seen % CHECK_EVERY == 0):
            return None
        s = self.settings
        total, hard, complaints = self.rates()
        if total < min(MIN_SAMPLE, s.breaker_window):
            return None
        resume = f"; then run `pressroom send {self.issue} --resume`"
        if hard / total > s.max_hard_bounce_rate:
            return (f"{PREFIX}hard bounces: {hard} of the last {total} deliveries "
                    f"({hard / total:.1%}, limit {s.max_hard_bounce_rate:.1%}); remove the bad "
                    f"addresses and find out where they came from{resume}")
        if complaints / total > s.max_complaint_rate:
            return (f"{PREFIX}spam complaints: {complaints} of the last {total} deliveries "
                    f"({complaints / total:.1%}, limit {s.max_complaint_rate:.1%}); check that "
                    f"everyone on the list asked for this newsletter{resume}")
        return None
