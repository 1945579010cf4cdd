"""Progress lines for unattended sends: every 500 messages or 30 seconds, on their own logger.

The library only logs (logger ``pressroom.mail.progress``, level INFO); the ``send`` command
turns that logger on when its output is not a terminal (cron, systemd), where no progress bar
is drawn.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

LOGGER = "pressroom.mail.progress"
log = logging.getLogger(LOGGER)

EVERY_MESSAGES = 500
EVERY_SECONDS = 30.0


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return f"{seconds // 3600:d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class ProgressLog:
    """Counts outcomes and logs a line when 500 messages or 30 s have passed since the last."""

    def __init__(self, issue: str, total: int, clock: Callable[[], float]) -> None:
        self.issue, self.total, self.clock = issue, total, clock
        self.started = self.last_at = clock()
        self.sent = self.failed = self.other = 0
        self.waiting: set[int] = set()  # recipients deferred now (a retry is due later)
        self.last_done = 0

    @property
    def done(self) -> int:
        """Recipients finished this run (sent, failed, skipped or unknown)."""
        return self.sent + self.failed + self.other

    @property
    def deferred(self) -> int:
        """Recipients currently deferred by a temporary error."""
        return len(self.waiting)

    def count(self, kind: str, subscriber_id: int) -> None:
        """Count one outcome (``sent``, ``deferred``, ``failed`` or another) and maybe log."""
        if kind == "deferred":
            self.waiting.add(subscriber_id)
        else:
            self.waiting.discard(subscriber_id)
            if kind in ("sent", "failed"):
                setattr(self, kind, getattr(self, kind) + 1)
            else:
                self.other += 1
        now = self.clock()
        if self.done - self.last_done >= EVERY_MESSAGES or now - self.last_at >= EVERY_SECONDS:
            self.line(now)

    def line(self, now: float | None = None) -> str:
        """Log (and return) one progress line: counts, rate and time left."""
        now = self.clock() if now is None else now
        self.last_at, self.last_done = now, self.done
        elapsed = max(now - self.started, 1e-9)
        rate = self.sent / elapsed
        left = max(self.total - self.done, 0)
        eta = _duration(left / rate) if rate > 0 else "unknown"
        text = (f"{self.issue}: sent {self.sent}, deferred {self.deferred}, failed {self.failed} "
                f"({self.done}/{self.total} done), {rate:.1f} msg/s, ETA {eta}")
        log.info("%s", text)
        return text
