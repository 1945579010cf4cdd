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
BREAKER = "breaker"  # campaigns.paused_kind of a breaker pause
RESUMED = "campaign_resumed"
MIN_SAMPLE = 50   # fewer deliveries than this (or the window) say too little to pause on
CHECK_EVERY = 10  # recipients between checks (and after every refusal)
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
        state = store.campaign_pause(issue)
        tripped = state is not None and state[0] == "paused" and state[2] == BREAKER
        if state is not None and tripped and not resume:
            raise MailError(f"campaign {issue} is paused by its {state[1]}")
        if state is not None and tripped:
            with store.transaction():
                store.event(RESUMED, f"send:{issue}", detail=state[1])
        return cls(store, issue, settings, store.last_event_at(RESUMED, f"send:{issue}"))

    def attach(self, campaign_id: int) -> None:
        """Watch this campaign (known once the ledger is open)."""
        self.campaign_id = campaign_id

    def rates(self) -> tuple[int, int, int]:
        """(deliveries in the window, hard bounces, complaints) since the last resume."""
        assert self.campaign_id is not None  # attach() comes right after the ledger opens
        return self.store.recent_outcomes(self.campaign_id, self.since,
                                          self.settings.breaker_window)

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
