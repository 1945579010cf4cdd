"""Subscribers (SQLite), the campaign ledger, SMTP sending, tokens and bounce processing.

Names are imported on first use (PEP 562), so `pressroom --help` does not load the sending
stack (DKIM, DNS, email) just to list the commands. The Click commands live in
``pressroom.mail.cli`` (``bounces`` and ``subscribers`` here would clash with the submodules).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "SendResult": "pressroom.mail.campaign", "send_campaign": "pressroom.mail.campaign",
    "send_transactional": "pressroom.mail.campaign",
    "enqueue_notice": "pressroom.mail.outbox", "flush_outbox": "pressroom.mail.outbox",
    "confirm_subscriber": "pressroom.mail.subscribers",
    "unsubscribe_by_token": "pressroom.mail.subscribers",
    "make_token": "pressroom.mail.tokens", "verify_token": "pressroom.mail.tokens",
}

__all__ = [*sorted(_EXPORTS), "commands"]


def __getattr__(name: str):
    if name == "commands":
        cli = importlib.import_module("pressroom.mail.cli")
        return [cli.subscribers, cli.send, cli.bounces, cli.outbox, cli.doctor, cli.db]
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'pressroom.mail' has no attribute {name!r}")
