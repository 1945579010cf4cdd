"""Signed subscriber tokens: HMAC-SHA256 over (version, subscriber id, purpose), base64url."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac

from pressroom.errors import MailError
from pressroom.mail.settings import secret_key

VERSION = 1
UNSUBSCRIBE = "unsubscribe"
CONFIRM = "confirm"
PURPOSES = (UNSUBSCRIBE, CONFIRM)
NOBODY = 0  # store ids start at 1: test copies and the doctor's probe carry tokens for id 0
_ID_BYTES = 8
_MAC_BYTES = 32


class TokenError(MailError):
    """Any bad token: one generic message, so a forger learns nothing about why."""

    def __init__(self) -> None:
        super().__init__("this link is not valid; it may have been copied incompletely. "
                         "Use the link from your most recent email")


def _mac(key: bytes, version: int, subscriber_id: int, purpose: str) -> bytes:
    message = f"{version}|{subscriber_id}|{purpose}".encode("ascii")
    return hmac.new(key, message, hashlib.sha256).digest()


def make_token(subscriber_id: int, purpose: str, key: bytes | None = None) -> str:
    """A URL-safe token proving ``purpose`` (unsubscribe or confirm) for one subscriber.

    ``key`` defaults to ``PRESSROOM_SECRET_KEY``. Example: ``make_token(42, "unsubscribe")``.
    """
    if purpose not in PURPOSES:
        raise ValueError(f"unknown token purpose {purpose!r}")
    if not 0 <= subscriber_id < 2 ** (8 * _ID_BYTES):
        raise ValueError(f"subscriber id out of range: {subscriber_id}")
    key = secret_key() if key is None else key
    raw = bytes([VERSION]) + subscriber_id.to_bytes(_ID_BYTES, "big")
    raw += _mac(key, VERSION, subscriber_id, purpose)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def verify_token(token: str, purpose: str, key: bytes | None = None) -> int:
    """Return the subscriber id a valid token names; raise TokenError for anything else."""
    key = secret_key() if key is None else key
    if not isinstance(token, str) or len(token) > 200:
        raise TokenError()
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        raise TokenError() from None
    # The decoder skips stray characters and ignores spare bits: accept only the canonical form.
    canonical = base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
    if canonical != token or len(raw) != 1 + _ID_BYTES + _MAC_BYTES or raw[0] != VERSION:
        raise TokenError()
    subscriber_id = int.from_bytes(raw[1:1 + _ID_BYTES], "big")
    expected = _mac(key, VERSION, subscriber_id, purpose)
    if not hmac.compare_digest(expected, raw[1 + _ID_BYTES:]):
        raise TokenError()
    return subscriber_id
