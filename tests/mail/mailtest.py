"""Helpers for the mail tests: a recording aiosmtpd handler with fault injection, tiny projects."""

from __future__ import annotations

import asyncio
import email
import shutil
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from pathlib import Path

import stores
import yaml

from pressroom.config import load_config
from projects import SECRET, closed_port, smtp_sink  # noqa: F401  (re-exported for the mail tests)

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Received:
    """One message the server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    @property
    def message(self) -> email.message.EmailMessage:
        return email.message_from_bytes(self.data, policy=policy.default)


@dataclass
class Recorder:
    """An aiosmtpd handler that records every message and can be told to misbehave."""

    messages: list[Received] = field(default_factory=list)
    data_count: int = 0
    close_with_421_at: int | None = None      # the Nth DATA gets 421 and the connection closes
    rcpt_replies: dict[str, list[str]] = field(default_factory=dict)  # address -> replies, in order
    drop_after_data: set[str] = field(default_factory=set)  # accept, then hang up before replying
    policy_reject: bool = False               # 554 5.7.1 at the end of DATA
    stall_after_data_at: int | None = None    # record the Nth message, then delay its reply
    connections: int = 0
    rcpt_hook: object = None                  # called with each RCPT address (server thread)
    rcpt_reply_fn: object = None              # address -> reply to give instead of 250, or None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.messages.clear()
            self.data_count = self.connections = 0
            self.close_with_421_at = None
            self.rcpt_replies.clear()
            self.drop_after_data.clear()
            self.policy_reject = False
            self.stall_after_data_at = None
            self.rcpt_hook = None
            self.rcpt_reply_fn = None

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def by_recipient(self) -> dict[str, int]:
        with self.lock:
            out: dict[str, int] = {}
            for m in self.messages:
                for rcpt in m.rcpt_tos:
                    out[rcpt] = out.get(rcpt, 0) + 1
            return out

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if self.rcpt_hook:
            self.rcpt_hook(address)
        if self.rcpt_reply_fn and (reply := self.rcpt_reply_fn(address)):
            return reply
        with self.lock:
            replies = self.rcpt_replies.get(address)
            reply = replies.pop(0) if replies else None
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.data_count += 1
            number = self.data_count
        if number == self.close_with_421_at:
            await server.push("421 4.3.2 Service shutting down, try again later")
            server.transport.close()
            await asyncio.sleep(30)  # cancelled when the connection is gone
        if self.policy_reject:
            return "554 5.7.1 Message rejected as spam by content filter"
        with self.lock:
            self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                          envelope.original_content))
        if number == self.stall_after_data_at:
            await asyncio.sleep(10)  # the client is killed meanwhile; cancelled on disconnect
        if set(envelope.rcpt_tos) & self.drop_after_data:
            server.transport.close()
            await asyncio.sleep(30)
        return "250 2.0.0 OK queued"


@contextmanager
def recording_server():
    """A real SMTP server on 127.0.0.1 whose messages ``controller.recorder`` keeps."""
    handler = Recorder()
    with smtp_sink(handler) as controller:
        controller.recorder = handler
        yield controller


def make_project(root: Path, smtp: dict | None = None, mail: dict | None = None) -> Path:
    """A project in ``root`` with the fixture newsletter built into output/newsletters."""
    project = root / "project"
    shutil.copytree(FIXTURES / "project", project)
    config = project / "content" / "publication.yaml"
    store = {"store": stores.CURRENT} if stores.CURRENT else {}
    # A short lease: on PostgreSQL a killed sender's rows wait for their lease to expire
    # (60 s by default) before a restarted sender reports them.
    sections = {"mail": {"retry_backoff": 0.01, "lease": 3, **store, **(mail or {})}}
    if smtp is not None:
        sections["smtp"] = smtp
    with config.open("a", encoding="utf-8") as fh:
        fh.write(yaml.safe_dump(sections, sort_keys=False, allow_unicode=True))
    shutil.copytree(FIXTURES / "newsletters", project / "output" / "newsletters")
    return project


def smtp_section(server, **extra) -> dict:
    return {"host": "127.0.0.1", "port": server.port, "security": "none", "timeout": 5, **extra}


def config_of(project: Path):
    return load_config(project)


def add_subscribers(project: Path, count: int, tag_every: int = 0) -> list[str]:
    """Import ``count`` subscribers from a generated CSV; return their addresses."""
    from pressroom.mail.importing import import_subscribers

    lines = ["email,first_name,last_name,tags"]
    addresses = []
    for i in range(count):
        addr = f"reader{i:05d}@example.com"
        addresses.append(addr)
        tags = "vip" if tag_every and i % tag_every == 0 else ""
        lines.append(f"{addr},Reader{i},Test,{tags}")
    csv_path = project / "generated.csv"
    csv_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_subscribers(load_config(project), csv_path)
    assert result.added == count and not result.problems
    return addresses


def ledger(project: Path, issue: str = "01-welcome") -> dict[str, tuple[str, int, str]]:
    """address -> (ledger status, attempts, last reply) for one campaign, read directly."""
    from pressroom.mail.database import connect
    from pressroom.mail.settings import mail_settings

    db = connect(mail_settings(load_config(project)).store)
    try:
        rows = db.execute(
            "SELECT s.email, d.status, d.attempts, d.last_reply FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id JOIN campaigns c ON c.id = d.campaign_id "
            "WHERE c.issue = ?", (issue,)).fetchall()
    finally:
        db.close()
    return {email: (status, attempts, reply) for email, status, attempts, reply in rows}


def subscriber_status(project: Path, email: str) -> tuple[str, str | None]:
    """(subscriber status, suppression reason or None)."""
    from pressroom.mail.settings import mail_settings
    from pressroom.mail.store import open_store

    with open_store(mail_settings(load_config(project)).store) as store:
        return store.find(email).status, store.suppression(email)
