"""Process delivery status notifications (RFC 3464) from an mbox file or a Maildir folder."""

from __future__ import annotations

import hashlib
import logging
import mailbox
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser
from pathlib import Path
from typing import Iterator

from pressroom.config import Config
from pressroom.errors import MailError, where
from pressroom.mail.addresses import normalise_address
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import Store, now_iso, open_store

log = logging.getLogger(__name__)

_PARSER = BytesParser(policy=policy.compat32)


@dataclass
class BounceResult:
    """What ``bounces process`` found and did."""

    messages: int = 0
    reports: int = 0
    already_processed: int = 0
    not_reports: int = 0
    hard: int = 0
    soft: int = 0
    suppressed: int = 0


@dataclass(frozen=True)
class Bounce:
    """One failed or delayed recipient from a report."""

    recipient: str
    action: str
    status: str
    diagnostic: str

    @property
    def hard(self) -> bool:
        """A permanent failure: Action failed with a 5.x.x Status."""
        return self.action == "failed" and self.status.startswith("5")


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


def parse_report(msg: Message) -> list[Bounce] | None:
    """The bounces in a multipart/report; report-type=delivery-status message, or None."""
    if msg.get_content_type() != "multipart/report":
        return None
    status_part = next((p for p in msg.walk() if p.get_content_type() == "message/delivery-status"),
                       None)
    if status_part is None:
        return None
    blocks = status_part.get_payload()
    if not isinstance(blocks, list):
        return None
    bounces = []
    for block in blocks[1:]:  # the first block is per-message, the rest per-recipient
        if not isinstance(block, Message):
            continue
        recipient = _field(block, "Final-Recipient") or _field(block, "Original-Recipient")
        addr = recipient.split(";", 1)[-1].strip().strip("<>")
        action = _field(block, "Action").lower()
        if not addr or action not in ("failed", "delayed"):
            continue
        bounces.append(Bounce(addr, action, _field(block, "Status").split(" ")[0],
                              _field(block, "Diagnostic-Code")))
    return bounces


def _apply(store: Store, bounce: Bounce, limit: int, source: str, result: BounceResult) -> None:
    try:
        email = normalise_address(bounce.recipient)
    except MailError:
        log.warning("%s: skipping a bounce for an unreadable address %r", source, bounce.recipient)
        return
    detail = f"{bounce.status} {bounce.diagnostic}".strip()
    subscriber = store.find(email)
    if bounce.hard:
        result.hard += 1
        if not store.suppression(email):
            store.suppress(email, "hard_bounce", source, detail)
            result.suppressed += 1
        return
    result.soft += 1
    if subscriber is None:
        return
    store.db.execute("UPDATE subscribers SET soft_bounces = soft_bounces + 1, updated_at = ? "
                     "WHERE id = ?", (now_iso(), subscriber.id))
    store.event("soft_bounce", source, subscriber.id, "", detail)
    if subscriber.soft_bounces + 1 >= limit and not store.suppression(email):
        store.suppress(email, "soft_bounce_limit", source, f"{limit} soft bounces; last: {detail}")
        result.suppressed += 1


def process_bounces(config: Config, path: Path | str) -> BounceResult:
    """Read every report in an mbox or Maildir; suppress hard bounces, count soft ones.

    Reports already processed (by Message-ID, or content hash) are skipped, so running it
    twice on the same mailbox counts nothing twice. Example:
    ``process_bounces(config, "bounces.mbox")``.
    """
    settings = mail_settings(config)
    path = Path(path)
    result = BounceResult()
    source = f"bounces:{path.name}"
    with open_store(settings.store) as store, store.transaction():
        for raw in _messages(path):
            result.messages += 1
            msg = _PARSER.parsebytes(raw)
            bounces = parse_report(msg)
            if bounces is None:
                result.not_reports += 1
                continue
            report_id = (msg.get("Message-ID") or "").strip() or hashlib.sha256(raw).hexdigest()
            seen = store.db.execute(
                "INSERT OR IGNORE INTO bounce_reports (report_id, source, processed_at) "
                "VALUES (?, ?, ?)", (report_id, source, now_iso()))
            if seen.rowcount == 0:
                result.already_processed += 1
                continue
            result.reports += 1
            for bounce in bounces:
                _apply(store, bounce, settings.soft_bounce_limit, source, result)
    log.info("%s: %d reports, %d hard, %d soft, %d suppressed", path, result.reports, result.hard,
             result.soft, result.suppressed)
    return result
