"""Subscribers (SQLite), the campaign ledger, SMTP sending, tokens and bounce processing."""

from pressroom.mail.campaign import SendResult, send_campaign, send_transactional
from pressroom.mail.cli import bounces, send, subscribers
from pressroom.mail.subscribers import confirm_subscriber, unsubscribe_by_token
from pressroom.mail.tokens import make_token, verify_token

commands = [subscribers, send, bounces]

__all__ = ["SendResult", "bounces", "commands", "confirm_subscriber", "make_token", "send",
           "send_campaign", "send_transactional", "subscribers", "unsubscribe_by_token",
           "verify_token"]
