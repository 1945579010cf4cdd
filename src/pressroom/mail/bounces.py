"""Process a bounce mailbox (mbox or Maildir): RFC 3464 delivery status notifications,
RFC 5965 feedback (complaint) reports, and requests sent to the List-Unsubscribe mailto.

Classification follows RFC 3463's status codes: only ``Action: failed`` is a bounce;
X.1.x (bad address, except 5.1.7/5.1.8, which blame our sender) and 5.2.1 (mailbox disabled)
are hard and suppress at once; 5.6.x (content) and 5.7.x (policy) blame the message, so they
are recorded and suppress nobody; anything else failed (5.2.2 mailbox full, routing, 4.x.x
after the remote server's own retries) is soft and suppresses after mail.soft_bounce_limit
distinct failed deliveries. ``delayed``, ``relayed``, ``delivered`` and ``expanded`` are
reports about mail still on its way or arrived, never bounces.
"""

from __future__ import annotations

import hashlib
import logging
import mailbox
import re
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from email.utils import getaddresses, parseaddr
from pathlib import Path

from pressroom.config import Config
from pressroom.errors import MailError, where
from pressroom.mail.addresses import address_key, normalise_address
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import Store, open_store

log = logging.getLogger(__name__)

_PARSER = BytesParser(policy=policy.compat32)
_STATUS = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
HARD, SOFT, POLICY = "hard", "soft", "policy"
_RECIPIENT_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")


@dataclass
class BounceResult:
    """What ``bounces process`` found and did."""

    messages: int = 0
    reports: int = 0
    already_processed: int = 0
    not_reports: int = 0
    hard: int = 0
    soft: int = 0
    policy: int = 0
    not_bounces: int = 0
    complaints: int = 0
    unsubscribes: int = 0
    suppressed: int = 0


@dataclass(frozen=True)
class Bounce:
    """One per-recipient block of a delivery status notification."""

    recipient: str
    action: str
    status: str
    diagnostic: str

    @property
    def kind(self) -> str | None:
        """HARD, SOFT or POLICY for a failed delivery; None when it is not a bounce."""
        return classify(self.action, self.status)


def classify(action: str, status: str) -> str | None:
    """RFC 3464 Action + RFC 3463 Status -> HARD, SOFT, POLICY, or None (not a bounce)."""
    if action.lower() != "failed":
        return None
    match = _STATUS.match(status)
    if match is None:
        return SOFT
    klass, subject, detail = match.groups()
    if subject in ("6", "7") or (subject == "1" and detail in ("7", "8")):
        return POLICY  # content, policy, or our own sender address: never the reader's fault
    if klass == "5" and (subject == "1" or (subject, detail) == ("2", "1")):
        return HARD
    return SOFT


def _messages(path: Path) -> Iterator[bytes]:
    if path.is_dir():
        if not all((path / sub).is_dir() for sub in ("cur", "new", "tmp")):
            raise MailError(f"{where(path)} is a folder but not a Maildir (no cur/, new/ and "
                            "tmp/); give an mbox file or a Maildir")
        box: mailbox.Mailbox = mailbox.Maildir(path, factory=None, create=False)
    elif path.is_file():
        box = mailbox.mbox(path, factory=None, create=False)
    else:
        raise MailError(f"{where(path)} not found; give an mbox file or a Maildir folder")
    try:
        for key in box.iterkeys():
            yield box.get_bytes(key)
    finally:
        box.close()


def _field(block: Message, name: str) -> str:
    value = block.get(name, "")
    return " ".join(str(value).split())


def _parts(msg: Message) -> list[Message]:
    """The sub-messages of a multipart or message/* part (empty for anything else)."""
    payload = msg.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def _address(value: str) -> str:
    """The address of a typed field (``rfc822; a@b``) or a plain one (``<a@b>``)."""
    return value.split(";", 1)[-1].strip().strip("<>")


def _report_part(msg: Message, report_type: str, part_type: str) -> Message | None:
    if msg.get_content_type() != "multipart/report":
        return None
    param = msg.get_param("report-type")
    if not isinstance(param, str) or param.lower() != report_type:
        return None
    return next((p for p in msg.walk() if p.get_content_type() == part_type), None)


def _original_headers(msg: Message) -> Message | None:
    """The returned original message (or its headers) inside a report."""
    for part in msg.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822" and _parts(part):
            return _parts(part)[0]
        if kind == "text/rfc822-headers":
            raw = part.get_payload(decode=True)
            return _PARSER.parsebytes(raw if isinstance(raw, bytes) else b"", headersonly=True)
    return None


def parse_report(msg: Message) -> list[Bounce] | None:
    """The per-recipient blocks of a delivery status notification, or None for other mail."""
    status_part = _report_part(msg, "delivery-status", "message/delivery-status")
    if status_part is None or not _parts(status_part):
        return None
    bounces = []
    for block in _parts(status_part)[1:]:  # the first block is per-message
        addr = _address(_field(block, "Final-Recipient") or _field(block, "Original-Recipient"))
        if addr:
            bounces.append(Bounce(addr, _field(block, "Action").lower(),
                                  _field(block, "Status").split(" ")[0],
                                  _field(block, "Diagnostic-Code")))
    return bounces


def _delivery_id(msg: Message, report_id: str) -> str:
    """Which delivery a report is about: the returned Message-ID, else the envelope id."""
    original = _original_headers(msg)
    if original is not None and original.get("Message-ID"):
        return _field(original, "Message-ID")
    status_part = _report_part(msg, "delivery-status", "message/delivery-status")
    blocks = _parts(status_part) if status_part is not None else []
    if blocks and blocks[0].get("Original-Envelope-Id"):
        return _field(blocks[0], "Original-Envelope-Id")
    return report_id


def _readable(address: str, source: str) -> str | None:
    try:
        return normalise_address(address)
    except MailError:
        log.warning("%s: skipping an unreadable address %r", source, address)
        return None


def _apply_bounce(store: Store, bounce: Bounce, delivery: str, limit: int, source: str,
                  result: BounceResult) -> None:
    kind = bounce.kind
    if kind is None:
        result.not_bounces += 1
        return
    email = _readable(bounce.recipient, source)
    if email is None:
        return
    detail = f"{bounce.status} {bounce.diagnostic}".strip()
    first = store.failed_delivery(email, delivery, kind, bounce.status)
    setattr(result, kind, getattr(result, kind) + 1)
    subscriber = store.find(email)
    if kind == POLICY:
        if subscriber is not None and first:
            store.event("bounce_policy", source, subscriber.id, "", detail)
        return
    if kind == HARD:
        if not store.suppression(email):
            store.suppress(email, "hard_bounce", source, detail)
            result.suppressed += 1
        return
    if subscriber is None or not first:
        return  # the same failed delivery reported again counts once
    if store.add_soft_bounce(subscriber.id, source, detail) >= limit and \
            not store.suppression(email):
        store.suppress(email, "soft_bounce_limit", source, f"{limit} failed deliveries; last: "
                                                           f"{detail}")
        result.suppressed += 1


def _complaint(store: Store, msg: Message, source: str, result: BounceResult) -> None:
    """An RFC 5965 feedback report: the recipient complained; suppress them."""
    part = _report_part(msg, "feedback-report", "message/feedback-report")
    if part is None:
        return
    fields = (_parts(part) or [part])[0]
    feedback = _field(fields, "Feedback-Type").lower() or "abuse"
    original = _original_headers(msg)
    recipient = _address(_field(fields, "Original-Rcpt-To"))
    if not recipient and original is not None and original.get("Message-ID"):
        recipient = store.recipient_of(_field(original, "Message-ID")) or ""
    if not recipient and original is not None:
        recipient = parseaddr(_field(original, "To"))[1]
    email = _readable(recipient, source) if recipient else None
    if feedback == "not-spam" or email is None:
        return
    result.complaints += 1
    if store.suppression(email) != "complained":
        store.suppress(email, "complained", source, f"feedback report: {feedback}")
        result.suppressed += 1


def _to_mailto(msg: Message, mailto: str) -> bool:
    """True for a message addressed to the List-Unsubscribe mailto."""
    recipients = {address_key(a) for _n, a in getaddresses(
        [str(v) for h in _RECIPIENT_HEADERS for v in msg.get_all(h, [])])}
    return address_key(mailto) in recipients


def _unsubscribe_request(store: Store, msg: Message, source: str, result: BounceResult) -> None:
    """Mail to the List-Unsubscribe mailto (RFC 2369): unsubscribe its sender."""
    if _field(msg, "Auto-Submitted").lower() not in ("", "no"):
        return  # an auto-reply (RFC 3834) is not somebody asking to leave
    email = _readable(parseaddr(_field(msg, "From"))[1], source)
    if email is None:
        return
    result.unsubscribes += 1
    if not store.suppression(email):
        store.suppress(email, "unsubscribed", f"{source}:mailto")
        result.suppressed += 1


def process_bounces(config: Config, path: Path | str) -> BounceResult:
    """Read every message in an mbox or Maildir and act on it.

    Bounces are classified as the module docstring says, feedback reports suppress the
    complainer, and mail to mail.unsubscribe_mailto unsubscribes its sender. Messages already
    processed (by Message-ID, or content hash) are skipped, so running it twice on the same
    mailbox counts nothing twice. Example: ``process_bounces(config, "bounces.mbox")``.
    """
    settings = mail_settings(config)
    path = Path(path)
    result = BounceResult()
    source = f"bounces:{path.name}"
    with open_store(settings.store) as store, store.transaction():
        for raw in _messages(path):
            result.messages += 1
            msg = _PARSER.parsebytes(raw)
            report_id = _field(msg, "Message-ID") or hashlib.sha256(raw).hexdigest()
            bounces = parse_report(msg)
            feedback = _report_part(msg, "feedback-report", "message/feedback-report")
            mailto = bounces is None and feedback is None and _to_mailto(
                msg, settings.unsubscribe_mailto)
            if bounces is None and feedback is None and not mailto:
                result.not_reports += 1
                continue
            if not store.first_report(report_id, source):
                result.already_processed += 1
                continue
            result.reports += 1
            if bounces is not None:
                delivery = _delivery_id(msg, report_id)
                for bounce in bounces:
                    _apply_bounce(store, bounce, delivery, settings.soft_bounce_limit, source,
                                  result)
            elif feedback is not None:
                _complaint(store, msg, source, result)
            else:
                _unsubscribe_request(store, msg, source, result)
    log.info("%s: %d reports, %d hard, %d soft, %d policy, %d complaints, %d unsubscribes, "
             "%d suppressed", path, result.reports, result.hard, result.soft, result.policy,
             result.complaints, result.unsubscribes, result.suppressed)
    return result
