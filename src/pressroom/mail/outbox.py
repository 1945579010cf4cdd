"""The durable outbox for the web service's emails (confirmations, "already subscribed"):
a request only queues the message in the store; a background thread (started by the app)
or `pressroom outbox flush` (for cron) sends it, retrying temporary failures with backoff.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pressroom.config import Config
from pressroom.errors import PressroomError
from pressroom.mail import smtp as outcomes
from pressroom.mail.campaign import open_transport
from pressroom.mail.message import build_message
from pressroom.mail.settings import mail_settings, smtp_settings
from pressroom.mail.smtp import TransportError, safe_label
from pressroom.mail.store import open_store

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10     # about 17 hours of retries at the backoff below
BACKOFF = 60.0        # seconds before the first retry, doubling, at most an hour
LEASE = 600.0         # a claimed notice is retaken after this long (its sender died)
IDLE_CHECK = 1.0      # the background sender's shortest sleep


@dataclass
class FlushResult:
    """What one flush did, and what is still waiting."""

    sent: int = 0
    deferred: int = 0
    failed: int = 0
    waiting: int = 0
    next_at: float | None = None


def enqueue_notice(config: Config, to_addr: str, subject: str, html: str | None,
                   text: str) -> str:
    """Build one non-newsletter email, queue it in the store and wake the background sender.

    Returns its Message-ID at once: nothing here waits on SMTP. No list headers. Example:
    ``enqueue_notice(config, "ann@example.com", "Please confirm", html, text)``.
    """
    settings, smtp = mail_settings(config), smtp_settings(config)
    message = build_message(sender=settings.sender, sender_name=settings.sender_name,
                            reply_to=settings.reply_to, to=to_addr, subject=subject, text=text,
                            html=html, dkim_settings=smtp.dkim if smtp else None)
    with open_store(settings.store) as store, store.transaction():
        store.enqueue_notice(message.recipient, message.message_id, message.data)
    sender_for(config).wake()
    return message.message_id


def _backoff(attempts: int) -> float:
    return min(BACKOFF * 2 ** max(attempts - 1, 0), 3600.0)


def flush_outbox(config: Config, clock: Callable[[], float] = time.time) -> FlushResult:
    """Send every due notice once; temporary failures wait with backoff, others fail.

    Stops at the first connection failure (the rest stay queued). Example:
    ``flush_outbox(load_config("."))`` (what `pressroom outbox flush` runs).
    """
    settings, smtp = mail_settings(config), smtp_settings(config)
    result = FlushResult()
    with open_store(settings.store) as store, \
            open_transport(settings, smtp, "transactional") as transport:
        while (row := store.claim_notice(clock(), LEASE)) is not None:
            notice_id, recipient, data, attempts, claim = row
            attempts += 1
            unreachable = False
            try:
                outcome = transport.send(settings.sender, recipient, data, on_data=lambda: None,
                                         label=f"{int(clock() * 1000)}-{safe_label(recipient)}")
            except TransportError as exc:
                unreachable = True
                outcome = outcomes.Outcome(outcomes.RETRY if exc.transient else outcomes.PAUSE,
                                           exc.message)
            if outcome.kind in (outcomes.SENT, outcomes.UNKNOWN):  # never mail a notice twice
                status, when = "sent", 0.0
            elif outcome.kind == outcomes.RETRY and attempts < MAX_ATTEMPTS:
                status, when = "queued", clock() + _backoff(attempts)
            else:
                status, when = "failed", 0.0
            if not store.finish_notice(notice_id, claim, status, outcome.reply, attempts, when):
                log.warning("outbox: the email to %s was taken over by another sender after its "
                            "lease ran out; this attempt is not recorded", recipient)
                continue
            _count(result, status, recipient, outcome.reply)
            if status == "queued" and unreachable:
                break  # leave the rest queued rather than wait on the server for each
        counts = store.notice_counts()
        result.waiting = counts["queued"] + counts["sending"]
        result.next_at = store.next_notice_at()
    return result


def _count(result: FlushResult, status: str, recipient: str, reply: str) -> None:
    if status == "sent":
        result.sent += 1
    elif status == "queued":
        result.deferred += 1
        log.warning("outbox: the email to %s is deferred: %s", recipient, reply)
    else:
        result.failed += 1
        log.error("outbox: the email to %s failed: %s", recipient, reply)


class NoticeSender:
    """A background thread that flushes one store's outbox whenever woken, then while notices
    wait for a retry; it ends when the outbox is empty and restarts on the next wake()."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self._stopped = False

    def wake(self) -> None:
        """Flush soon (starting the thread if it is not running)."""
        with self._lock:
            if self._stopped:
                return
            self._wake.set()
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="pressroom-outbox",
                                                daemon=True)
                self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """End the thread after its current flush (what is still queued stays queued)."""
        with self._lock:
            self._stopped = True
            self._wake.set()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stopped:
            self._wake.clear()
            try:
                result = flush_outbox(self.config)
            except (PressroomError, sqlite3.Error, OSError) as exc:
                log.error("outbox: flushing failed (%s); trying again later", exc)
                result = FlushResult(waiting=1, next_at=time.time() + BACKOFF)
            with self._lock:
                if self._stopped or (not self._wake.is_set() and not result.waiting):
                    self._thread = None
                    return
            delay = (result.next_at or 0) - time.time()
            self._wake.wait(max(delay, IDLE_CHECK))
        with self._lock:
            self._thread = None


_SENDERS: dict[Path | str, NoticeSender] = {}
_SENDERS_LOCK = threading.Lock()


def sender_for(config: Config) -> NoticeSender:
    """The one background sender of this config's store in this process."""
    key = mail_settings(config).store
    with _SENDERS_LOCK:
        sender = _SENDERS.get(key)
        if sender is None or sender.config is not config:
            sender = _SENDERS[key] = NoticeSender(config)
        return sender


def stop_notice_senders(store: Path | str) -> None:
    """Stop this process's background sender for ``store`` (a file or URL), if one runs.

    For a clean shutdown, or before the store goes away. Example:
    ``stop_notice_senders(mail_settings(config).store)``.
    """
    with _SENDERS_LOCK:
        sender = _SENDERS.pop(store, None)
    if sender is not None:
        sender.stop()


def start_notice_sender(config: Config) -> None:
    """Send whatever an earlier process left queued (what the web app calls when it starts)."""
    sender_for(config).wake()
