"""Guards for the subscription service's forms: same-origin checks and signed form tokens
(CSRF), and per-IP / per-address rate limits kept in the subscriber store."""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Mapping

from werkzeug.datastructures import Headers
from urllib.parse import urlsplit

from itsdangerous import BadSignature, TimestampSigner

from pressroom.mail.store import Store

@dataclass(frozen=True)
class Limit:
    """At most ``count`` attempts per ``seconds`` for one key of ``scope`` ("ip" or "address")."""

    scope: str
    count: int
    seconds: float


# A household or an office shares one address; ten sign-ups an hour is generous for people and
# far too slow for a bot. Three confirmation emails a day is plenty for anyone's own inbox and
# stops the form being used to mail-bomb someone else's.
DEFAULT_LIMITS = (Limit("ip", 10, 3600.0), Limit("address", 3, 86400.0))


def same_origin(headers: Headers | Mapping[str, str], host: str, allowed: set[str]) -> bool:
    """True when a browser form POST came from one of our own pages.

    Browsers send ``Origin`` with every form POST (``Referer`` is the fallback for old ones);
    a request carrying neither, or coming from another site, is refused. ``host`` is the
    request's Host; ``allowed`` holds other hosts (``host[:port]``) that serve our pages.
    """
    if headers.get("Sec-Fetch-Site", "") == "cross-site":
        return False
    origin = headers.get("Origin")
    if origin == "null":  # sandboxed frames, file: pages, some redirects: never ours
        return False
    source = origin or headers.get("Referer")
    if not source:
        return False
    netloc = urlsplit(source).netloc.lower()
    return bool(netloc) and (netloc == host.lower() or netloc in allowed)


class FormSigner:
    """Signed, expiring hidden-field tokens binding a form to the page the service rendered
    (itsdangerous's TimestampSigner, keyed per purpose)."""

    def __init__(self, key: bytes, max_age: int = 86400) -> None:
        self._key = key
        self.max_age = max_age

    def _signer(self, purpose: str) -> TimestampSigner:
        return TimestampSigner(self._key, salt=f"pressroom form token: {purpose}",
                               digest_method=hashlib.sha256)

    @staticmethod
    def _about(value: str) -> str:
        # The form already carries the value; the token carries only a short digest of it.
        return hashlib.sha256(value.encode("utf-8")).hexdigest()[:16]

    def make(self, purpose: str, value: str) -> str:
        """A token for a form about ``value`` (e.g. the confirmation token it carries)."""
        return self._signer(purpose).sign(self._about(value)).decode("ascii")

    def check(self, token: str, purpose: str, value: str) -> bool:
        """True for a token this signer made for ``purpose``/``value`` that has not expired."""
        try:
            about = self._signer(purpose).unsign(token or "", max_age=self.max_age)
        except BadSignature:  # altered, forged, expired (SignatureExpired) or malformed
            return False
        return hmac.compare_digest(about, self._about(value).encode("ascii"))


class RateLimiter:
    """Sliding-window limits stored in the store's ``rate_hits`` table, shared by every worker
    and host using the store.

    Keys are kept only as keyed hashes (no addresses or IPs in clear) and rows older than the
    longest window are deleted as new ones arrive. Refused attempts are not recorded, so a
    flood does not lock a key out for longer than the window.
    """

    def __init__(self, key: bytes, limits: tuple[Limit, ...] = DEFAULT_LIMITS) -> None:
        self._key = hmac.new(key, b"pressroom rate limits", hashlib.sha256).digest()
        self.limits = {limit.scope: limit for limit in limits}
        self._longest = max((limit.seconds for limit in limits), default=0.0)

    def bucket(self, scope: str, value: str) -> str:
        """The stored key for ``value`` in ``scope``."""
        digest = hmac.new(self._key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:32]
        return f"{scope}:{digest}"

    def take(self, store: Store, scope: str, value: str, now: float | None = None) -> bool:
        """Record one attempt and return True, or return False when the limit is reached."""
        limit = self.limits.get(scope)
        if limit is None:
            return True
        now = time.time() if now is None else now
        bucket = self.bucket(scope, value)
        with store.relaxed_sync(), store.transaction() as db:
            db.lock(f"rate limit {bucket}")  # PostgreSQL: count and insert as one step
            db.execute("DELETE FROM rate_hits WHERE at < ?", (now - self._longest,))
            used = db.execute("SELECT COUNT(*) FROM rate_hits WHERE bucket = ? AND at > ?",
                              (bucket, now - limit.seconds)).fetchone()[0]
            if used >= limit.count:
                return False
            db.execute("INSERT INTO rate_hits (bucket, at) VALUES (?, ?)", (bucket, now))
        return True
