"""Several SMTP relays in failover order: a connection-level failure moves to the next relay.

Connection-level means the relay could not be used for this message at all: refused, TLS or
login failure, a timeout, a 421 "closing", or a connection lost before the final "." of DATA
(the relay cannot have accepted it). Such a relay rests for ``cooldown`` seconds while the
others carry the mail; the message goes to the next relay at once, so nothing waits and nothing
is sent twice. A reply about the message (4xx/5xx) is the message's outcome and never fails
over; a message whose reply never came after DATA stays ``unknown`` as with one relay.
"""

from __future__ import annotations

import logging
import time
from typing import Callable

from pressroom.mail.settings import Relay
from pressroom.mail.smtp import Outcome, SmtpTransport, TransportError

log = logging.getLogger(__name__)

COOLDOWN = 30.0  # seconds a failed relay rests before it is tried first again


class RelayTransport:
    """Send through the first usable relay.

    ``acquire(relay)`` runs before connecting to a relay and may answer False when every
    connection it allows is in use (then the next relay is tried); ``release(relay)`` gives the
    connection back; ``pace(relay)`` runs before each message on a relay (its own rate).
    """

    def __init__(self, transports: list[SmtpTransport],
                 acquire: Callable[[Relay], bool] | None = None,
                 release: Callable[[Relay], None] | None = None,
                 pace: Callable[[Relay], None] | None = None,
                 cooldown: float = COOLDOWN, clock: Callable[[], float] = time.monotonic) -> None:
        self.transports = transports
        self.acquire, self.release, self.pace = acquire, release, pace
        self.cooldown, self.clock = cooldown, clock
        self.resting: dict[int, float] = {}  # transport index -> rest until (clock)
        self.held: set[int] = set()  # relays whose connection slot we hold

    def __enter__(self) -> "RelayTransport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def where(self) -> str:
        """Every relay, in failover order."""
        return ", ".join(t.where for t in self.transports)

    def close(self) -> None:
        """Close every open connection (and give back its connection slot)."""
        for index in range(len(self.transports)):
            self._close(index)

    def _close(self, index: int) -> None:
        transport = self.transports[index]
        transport.close()
        if index in self.held:
            self.held.discard(index)
            if self.release is not None:
                self.release(transport.settings)  # type: ignore[arg-type]

    def order(self) -> list[int]:
        """Relays to try: the rested ones in their order, then those still resting."""
        now = self.clock()
        ready = [i for i in range(len(self.transports)) if self.resting.get(i, 0) <= now]
        return ready + sorted(set(range(len(self.transports))) - set(ready))

    def _fail(self, index: int, reason: str) -> None:
        transport = self.transports[index]
        self._close(index)
        self.resting[index] = self.clock() + self.cooldown
        log.warning("relay %s failed (%s); failing over", transport.where, reason)

    def send(self, sender: str, recipient: str, data: bytes,
             on_data: Callable[[], str | None], label: str = "") -> Outcome:
        """Deliver one message through the first relay that can take it.

        Raises TransportError (transient unless every relay failed for good) when none could.
        """
        reasons: list[str] = []
        transient = False
        for index in self.order():
            transport = self.transports[index]
            relay: Relay = transport.settings  # type: ignore[assignment]
            if index not in self.held and self.acquire is not None:
                if not self.acquire(relay):
                    reasons.append(f"{transport.where}: all {relay.connections} connections "
                                   "in use")
                    transient = True
                    continue
                self.held.add(index)
            if self.pace is not None:
                self.pace(relay)
            try:
                outcome = transport.send(sender, recipient, data, on_data, label)
            except TransportError as exc:
                self._fail(index, exc.message)
                reasons.append(exc.message)
                transient = transient or exc.transient
                continue
            if not outcome.connection:
                self.resting.pop(index, None)
                return outcome
            self._fail(index, outcome.reply)
            reasons.append(f"{transport.where}: {outcome.reply}")
            transient = True
        raise TransportError("no relay could take the message (" + "; ".join(reasons) + ")",
                             transient=transient)
