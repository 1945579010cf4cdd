"""Send a built newsletter: snapshot the audience, mail everyone once, resume after a crash."""

from __future__ import annotations

import logging
import time
from collections import deque
from contextlib import contextmanager, nullcontext
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from dataclasses import dataclass, field
from typing import Callable, Iterator

from pressroom.config import Config
from pressroom.errors import MailError
from pressroom.mail import smtp as outcomes
from pressroom.mail.addresses import normalise_address
from pressroom.mail.breaker import BREAKER, Breaker
from pressroom.mail.ledger import TAKEN, Due, Ledger, is_postgres, send_lock
from pressroom.mail.message import (Built, MessageTemplate, Outgoing, build_message, check_dkim,
                                    load_built)
from pressroom.mail.pacing import LeaseKeeper, Pacer
from pressroom.mail.progress import ProgressLog
from pressroom.mail.relays import RelayTransport
from pressroom.mail.settings import (DkimSettings, MailSettings, SmtpSettings, mail_settings,
                                     secret_key, smtp_password, smtp_settings)
from pressroom.mail.smtp import OutboxTransport, SmtpTransport, TransportError, safe_label
from pressroom.mail.store import Store, open_store
from pressroom.mail.tokens import UNSUBSCRIBE, make_token
from pressroom.mergefields import UNSUBSCRIBE_URL, values

log = logging.getLogger(__name__)
PREFETCH = 4  # messages rendered ahead of the one being sent
# campaigns.paused_kind values set here (other modules may add their own, e.g. a breaker's).
TRANSIENT = "transient"  # the server kept deferring: run again later, nothing is lost
REFUSED = "refused"      # the server refused the message, sender or login: fix it, run again

TEST_PREFIX = "[TEST] "
Transport = SmtpTransport | OutboxTransport | RelayTransport
Progress = Callable[[int, int], None]


@dataclass
class SendResult:
    """What a ``send`` run did; the ledger counts cover the whole campaign, not just this run."""

    issue: str
    mode: str  # "campaign", "test" or "dry-run"
    destination: str
    counts: dict[str, int] = field(default_factory=dict)
    sent_now: int = 0
    rendered: int = 0
    requeued_unknown: int = 0
    requeued_failed: int = 0
    unknown: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    paused: str | None = None
    paused_kind: str = ""
    relays: list[tuple[str, int]] = field(default_factory=list)  # (relay, accepted), campaign


class Renderer:
    """Fills a built newsletter for one recipient and builds the signed message."""

    def __init__(self, settings: MailSettings, built: Built, dkim: DkimSettings | None,
                 key: bytes, prefix: str = "") -> None:
        self.settings, self.built, self.dkim, self.key = settings, built, dkim, key
        self.prefix = prefix
        self.view_url = settings.view_link(built.slug)
        s = settings
        self.template = MessageTemplate(
            sender=s.sender, sender_name=s.sender_name, reply_to=s.reply_to,
            subject=prefix + built.subject, text=built.text, html=built.html, list_id=s.list_id,
            unsubscribe_mailto=s.unsubscribe_mailto, dkim_settings=dkim)

    def render(self, subscriber_id: int, email: str, first_name: str = "",
               last_name: str = "") -> Outgoing:
        """One personalised message (MailError if an address or header value is unsafe)."""
        s = self.settings
        unsubscribe_url = s.unsubscribe_link(make_token(subscriber_id, UNSUBSCRIBE, self.key))
        fill = values(first_name, s.fallback_name, unsubscribe_url, self.view_url)
        return self.template.build(
            to=email,
            to_name=" ".join(p for p in (first_name, last_name) if p),
            values=fill,
            unsubscribe_https=unsubscribe_url,
        )


def open_transport(settings: MailSettings, smtp: SmtpSettings | None, folder: str) -> Transport:
    """SMTP when configured, else the embedded outbox ``<out>/outbox/<folder>/``."""
    if smtp is None:
        return OutboxTransport(settings.outbox / folder)
    if len(smtp.relays) > 1:
        return RelayTransport([SmtpTransport(relay, helo=settings.sender_domain,
                                             password=smtp_password(relay))
                               for relay in smtp.relays])
    return SmtpTransport(smtp, helo=settings.sender_domain, password=smtp_password(smtp))


def _destination(settings: MailSettings, smtp: SmtpSettings | None, folder: str) -> str:
    if smtp is None:
        return str(settings.outbox / folder)
    return ", ".join(relay.name for relay in smtp.relays) or f"{smtp.host}:{smtp.port}"


@contextmanager
def _senders(store: Store, issue: str) -> Iterator[None]:
    """SQLite: this sender alone (the send lock). PostgreSQL: any number, coordinated by leases."""
    if is_postgres(store):
        yield
        return
    with send_lock(store, issue):
        yield


def _warn_without_unsubscribe_link(issue: str, built: Built) -> None:
    for kind, body in (("HTML", built.html), ("text", built.text)):
        if UNSUBSCRIBE_URL not in body:
            log.warning("%s: the %s version has no unsubscribe link marker %s; readers will only "
                        "have the List-Unsubscribe header", issue, kind, UNSUBSCRIBE_URL)


def send_campaign(config: Config, issue: str, *, tag: str | None = None,
                  test_to: str | None = None, dry_run: bool = False, resend_unknown: bool = False,
                  retry_failed: bool = False, rate: float | None = None,
                  progress: Progress | None = None, resume: bool = False,
                  clock: Callable[[], float] = time.time,
                  sleep: Callable[[float], None] = time.sleep) -> SendResult:
    """Send newsletter ``issue`` (a built slug) to its audience, resuming any earlier run.

    ``test_to`` sends one "[TEST]" copy outside the ledger; ``dry_run`` renders every message
    and sends nothing; ``resend_unknown`` re-queues recipients whose delivery is unknown;
    ``retry_failed`` re-queues failed recipients still subscribed and not suppressed; ``rate``
    (messages/second) overrides smtp.rate. ``progress(done, total)`` is called as recipients
    finish. A campaign the server keeps deferring for mail.retry_window seconds is paused
    (``result.paused``); nobody fails for a transient error. ``resume`` is needed to restart a
    campaign its circuit-breaker paused. ``clock``/``sleep`` exist for tests and benchmarks.
    Example: ``send_campaign(load_config("."), "01-welcome", tag="vip")``.
    """
    settings, smtp = mail_settings(config), smtp_settings(config)
    built = load_built(config.out, issue)
    _warn_without_unsubscribe_link(issue, built)
    dkim = smtp.dkim if smtp else None
    check_dkim(dkim, settings.sender)
    key = secret_key()
    if test_to is not None:
        return _send_test(settings, smtp, built, dkim, key, test_to)
    renderer = Renderer(settings, built, dkim, key)
    with open_store(settings.store, fsync=settings.fsync_ledger) as store:
        if dry_run:
            return _dry_run(store, renderer, issue, tag, resend_unknown,
                            _destination(settings, smtp, issue))
        transport = open_transport(settings, smtp, issue)  # checks the password before locking
        with _senders(store, issue):
            breaker = Breaker.before_open(store, issue, settings, resume)
            ledger = Ledger.open(store, issue, built.subject, tag)
            breaker.attach(ledger.campaign_id)
            _report_stale(ledger, clock())
            result = SendResult(issue, "campaign", _destination(settings, smtp, issue))
            if resend_unknown:
                result.requeued_unknown = ledger.requeue_unknown()
            if retry_failed:
                result.requeued_failed = ledger.requeue_failed()
            pacer = Pacer(ledger, rate or (smtp.rate if smtp else None),
                          smtp.hourly_cap if smtp else None, clock, sleep, settings.lease)
            if isinstance(transport, RelayTransport):
                transport.acquire, transport.release = pacer.acquire, pacer.release
                transport.pace = pacer.relay
            keeper = nullcontext() if ledger.exclusive else LeaseKeeper(ledger, settings.lease)
            try:
                with transport, keeper:
                    _Run(ledger, transport, renderer, pacer, settings, result, progress,
                         clock, sleep, breaker).run()
            finally:
                ledger.release()
            ledger.finish_if_done()
            result.counts = ledger.counts()
            result.unknown = ledger.addresses("unknown")
            result.relays = ledger.relays()
    log.info("%s: %s", issue, ", ".join(f"{k} {v}" for k, v in result.counts.items() if v))
    return result


def _report_stale(ledger: Ledger, now: float) -> int:
    """Turn rows a dead sender left in ``sending`` into ``unknown``, and say so."""
    stale = ledger.stale_to_unknown(now)
    if stale:
        log.warning("%s: %d recipient(s) were being sent when a previous run stopped; "
                    "they are now 'unknown' (re-send with --resend-unknown)", ledger.issue, stale)
    return stale


class _Run:
    """One pass of the send loop over the ledger (memory stays flat: leased batches of CLAIM rows).

    Transient trouble never fails anyone: deferred recipients wait with a doubling backoff
    (capped at an hour), and when nothing has been accepted for mail.retry_window seconds the
    campaign pauses instead.
    """

    def __init__(self, ledger: Ledger, transport: Transport, renderer: Renderer,
                 pacer: Pacer, settings: MailSettings, result: SendResult,
                 progress: Progress | None, clock: Callable[[], float],
                 sleep: Callable[[float], None], breaker: Breaker | None = None) -> None:
        self.store, self.ledger = ledger.store, ledger
        self.transport, self.renderer = transport, renderer
        self.pacer, self.settings, self.result = pacer, settings, result
        self.progress, self.clock, self.sleep = progress, clock, sleep
        self.breaker = breaker
        counts = ledger.counts()
        self.total, self.done = counts["pending"] + counts["retry"], 0
        self.log = ProgressLog(ledger.issue, self.total, clock)
        self.progressed_at = clock()  # the last time a message was accepted (or run start)
        self.others, self.counted_at = 0, float("-inf")  # finished by other senders

    def advance(self, kind: str, subscriber_id: int) -> None:
        self.done += 1
        self.progressed_at = self.clock()
        self.log.count(kind, subscriber_id)
        if self.progress:
            self.progress(min(self.done + self.others, self.total), self.total)

    def run(self) -> None:
        if self.progress:
            self.progress(0, self.total)
        while self.sweep():
            due = self.ledger.next_retry_at()
            now = self.clock()
            # Several senders: wait while another one still holds rows; if it dies, its lease
            # runs out and this one takes them over (or reports its in-flight ones unknown).
            # A lease that ran out while this sweep was past its rows leaves them due now.
            busy = None if self.ledger.exclusive else self.ledger.others_busy(now)
            if not self.ledger.exclusive:
                _report_stale(self.ledger, now)
                if self.ledger.claimable(now):
                    continue
            if due is None and busy is None:
                self.log.line()
                return
            if busy is None and due is not None and (
                    due - self.progressed_at > self.settings.retry_window):
                self.pause_deferred()
                return
            wake = min(t for t in (due, busy) if t is not None)
            delay = min(wake - now, self.settings.lease / 3) if busy else wake - now
            if delay > 0:
                log.info("%s: waiting %.1f s before retrying", self.ledger.issue, delay)
                self.sleep(delay)
            if not self.ledger.exclusive:
                _report_stale(self.ledger, self.clock())

    def claim(self, after: int) -> list[Due]:
        """The next batch this sender leases; [] when done, or when another sender paused."""
        if not self.ledger.exclusive:
            state = self.store.campaign_pause(self.ledger.issue)
            if state is not None and state[0] == "paused":
                self.result.paused, self.result.paused_kind = state[1], state[2]
                return []
            self.count_others()
        return self.ledger.claim_batch(self.clock(), self.settings.lease, after)

    def count_others(self) -> None:
        """Progress covers the whole campaign: add what the other senders finished meanwhile."""
        now = self.clock()
        if now - self.counted_at < 2.0:
            return
        self.counted_at = now
        counts = self.ledger.counts()
        finished = self.total - counts["pending"] - counts["retry"] - counts["sending"]
        self.others = max(finished - self.done, 0)

    def pause_deferred(self) -> None:
        counts = self.ledger.counts()
        last = self.ledger.last_reply("retry")
        self.pause(f"{counts['retry']} recipient(s) deferred by temporary errors and nothing "
                   f"accepted for {self.settings.retry_window:.0f} s (last reply: {last}); nobody "
                   f"failed. Run `pressroom send {self.ledger.issue}` again to resume",
                   TRANSIENT)

    def sweep(self) -> bool:
        """Attempt every due recipient once; False when the campaign was paused.

        The next few messages are rendered in a helper thread while this one waits on the
        SMTP server (sockets and SQLite release the GIL), so building messages overlaps with
        sending them. Rendering has no side effects: the ledger is only touched here, in order.
        """
        after = 0
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="render") as pool:
            while rows := self.claim(after):
                ahead: deque = deque()
                pending = iter(rows)
                for row in islice(pending, PREFETCH):
                    ahead.append((row, pool.submit(self.prepare, row)))
                while ahead:
                    row, future = ahead.popleft()
                    following = next(pending, None)
                    if following is not None:
                        ahead.append((following, pool.submit(self.prepare, following)))
                    after = row.subscriber_id
                    if not self.attempt(row, future.result()):
                        return False
        return self.result.paused is None

    def prepare(self, row: Due) -> Outgoing | MailError | None:
        """Render one recipient's message (None when they are no longer subscribed)."""
        if row.subscriber_status != "subscribed" or row.suppressed:
            return None
        try:
            return self.renderer.render(row.subscriber_id, row.email, row.first_name, row.last_name)
        except MailError as exc:
            return exc

    def backoff(self, attempts: int) -> float:
        return min(self.settings.retry_backoff * 2 ** max(attempts - 1, 0), 3600.0)

    def attempt(self, row: Due, message: Outgoing | MailError | None) -> bool:
        ledger, sid = self.ledger, row.subscriber_id
        if message is None:
            ledger.skipped(sid, f"{row.suppressed or row.subscriber_status} since the snapshot")
            self.advance("skipped", sid)
            return True
        if isinstance(message, MailError):
            ledger.failed(sid, f"not sendable: {message.message}", row.attempts)
            self.result.failed.append((row.email, message.message))
            self.advance("failed", sid)
            return True
        outcome = self.deliver(row, message)
        if outcome is None:
            return False
        attempts, now, kind = row.attempts + 1, self.clock(), outcome.kind
        if kind == outcomes.SENT:
            ledger.sent(sid, message.message_id, outcome.reply, now, attempts, outcome.relay)
            self.result.sent_now += 1
        elif kind == outcomes.SKIPPED:
            log.info("%s: skipped %s: %s", ledger.issue, row.email, outcome.reply)
            if outcome.reply == TAKEN:
                return True  # the other sender reports it
        elif kind == outcomes.UNKNOWN:
            ledger.unknown(sid, message.message_id, outcome.reply, now, attempts, outcome.relay)
            log.warning("%s: delivery to %s unknown: %s", ledger.issue, row.email, outcome.reply)
        elif kind == outcomes.REJECTED:
            with self.store.transaction():
                ledger.failed(sid, outcome.reply, attempts)
                self.store.suppress(row.email, "rejected", f"smtp:{ledger.issue}", outcome.reply)
            self.result.failed.append((row.email, outcome.reply))
        elif kind == outcomes.RETRY:  # deferred, never failed: the window decides when to pause
            ledger.retry(sid, outcome.reply, attempts, now + self.backoff(attempts))
            self.log.count("deferred", sid)
            log.info("%s: %s deferred: %s", ledger.issue, row.email, outcome.reply)
            return True
        else:  # PAUSE: the message or the sender is at fault; suppress nobody
            ledger.restore(sid, row.status)
            self.pause(f"the server refused the message itself ({outcome.reply}); nobody was "
                       "suppressed. Fix the content or the sender setup (SPF, DKIM, account), "
                       f"then run `pressroom send {ledger.issue}` again to resume", REFUSED)
            return False
        self.advance("failed" if kind == outcomes.REJECTED else kind, sid)
        reason = self.breaker.check(kind == outcomes.REJECTED) if self.breaker else None
        if reason:  # the circuit-breaker: too many hard bounces or complaints lately
            self.pause(reason, BREAKER)
            return False
        return True

    def deliver(self, row: Due, message: Outgoing) -> outcomes.Outcome | None:
        """Hand one message to the transport, riding out connection failures with backoff
        until nothing has been accepted for the retry window (then pause: None)."""
        failures = 0
        while True:
            self.pacer.wait(row.subscriber_id)
            try:
                return self.transport.send(
                    self.settings.sender, message.recipient, message.data,
                    on_data=lambda: self.ledger.claim(row.subscriber_id),
                    label=f"{row.subscriber_id:06d}-{safe_label(row.email)}")
            except TransportError as exc:
                failures += 1
                delay = self.backoff(failures)
                if not exc.transient:
                    self.pause(exc.message, REFUSED)
                    return None
                if self.clock() + delay - self.progressed_at > self.settings.retry_window:
                    self.pause(f"{exc.message} (nothing accepted for "
                               f"{self.settings.retry_window:.0f} s; nobody failed)", TRANSIENT)
                    return None
                log.warning("%s; trying again in %.1f s", exc.message, delay)
                self.sleep(delay)

    def pause(self, reason: str, kind: str) -> None:
        self.ledger.pause(reason, kind)
        self.result.paused, self.result.paused_kind = reason, kind
        log.error("%s: campaign paused: %s", self.ledger.issue, reason)


def _send_test(settings: MailSettings, smtp: SmtpSettings | None, built: Built,
               dkim: DkimSettings | None, key: bytes, test_to: str) -> SendResult:
    """One "[TEST]" copy to ``test_to``, outside the ledger (personalised if it is a subscriber)."""
    address = normalise_address(test_to)
    with open_store(settings.store) as store:
        known = store.find(address)
    sid, first, last = (known.id, known.first_name, known.last_name) if known else (0, "", "")
    message = Renderer(settings, built, dkim, key, TEST_PREFIX).render(sid, address, first, last)
    result = SendResult(built.slug, "test", _destination(settings, smtp, built.slug))
    with open_transport(settings, smtp, built.slug) as transport:
        outcome = transport.send(settings.sender, message.recipient, message.data,
                                 on_data=lambda: None, label=f"test-{safe_label(address)}")
    if outcome.kind != outcomes.SENT:
        raise MailError(f"the test message to {address} was not accepted: {outcome.reply}")
    result.sent_now = 1
    return result


def _audience(store: Store, issue: str, tag: str | None, resend_unknown: bool) -> Iterator[Due]:
    """Who a real run would attempt now: the ledger's queue, or the snapshot it would take."""
    ledger = Ledger.find(store, issue)
    after = 0
    while True:
        if ledger is not None:
            rows = ledger.due(float("inf"), after, include_unknown=resend_unknown)
        else:
            rows = [Due(sid, email, first, last, "subscribed", None, "pending", 0)
                    for sid, email, first, last in store.audience(tag, after)]
        if not rows:
            return
        yield from rows
        after = rows[-1].subscriber_id


def _dry_run(store: Store, renderer: Renderer, issue: str, tag: str | None, resend_unknown: bool,
             destination: str) -> SendResult:
    result = SendResult(issue, "dry-run", destination)
    counts = dict.fromkeys(("pending", "skipped", "failed"), 0)
    for row in _audience(store, issue, tag, resend_unknown):
        if row.subscriber_status != "subscribed" or row.suppressed:
            counts["skipped"] += 1
            continue
        try:
            renderer.render(row.subscriber_id, row.email, row.first_name, row.last_name)
        except MailError as exc:
            counts["failed"] += 1
            result.failed.append((row.email, exc.message))
            continue
        counts["pending"] += 1
        result.rendered += 1
    result.counts = counts
    return result


def send_transactional(config: Config, to_addr: str, subject: str, html: str | None,
                       text: str) -> str:
    """Send one non-newsletter email now (e.g. a double-opt-in confirmation); return its Message-ID.

    No list headers and no ledger; with no SMTP configured the message goes to
    ``<out>/outbox/transactional/``. Example:
    ``send_transactional(config, "ann@example.com", "Please confirm", html, text)``.
    """
    settings, smtp = mail_settings(config), smtp_settings(config)
    dkim = smtp.dkim if smtp else None
    message = build_message(sender=settings.sender, sender_name=settings.sender_name,
                            reply_to=settings.reply_to, to=to_addr, subject=subject, text=text,
                            html=html, dkim_settings=dkim)
    with open_transport(settings, smtp, "transactional") as transport:
        label = f"{int(time.time() * 1000)}-{safe_label(message.recipient)}"
        outcome = transport.send(settings.sender, message.recipient, message.data,
                                 on_data=lambda: None, label=label)
    if outcome.kind != outcomes.SENT:
        raise MailError(f"the message to {message.recipient} was not accepted: {outcome.reply}")
    return message.message_id
