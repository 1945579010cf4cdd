"""The doctor's live probes: relay TLS, the one-click unsubscribe endpoint, the store's rates."""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from pressroom.errors import MailError
from pressroom.mail.dns import DnsError, Lookup
from pressroom.mail.report import FAIL, PASS, WARN, Check
from pressroom.mail.settings import MailSettings, SmtpSettings, smtp_password
from pressroom.mail.smtp import SmtpTransport, TransportError
from pressroom.mail.store import open_store
from pressroom.mail.tokens import NOBODY, UNSUBSCRIBE, make_token

ONE_CLICK_BODY = b"List-Unsubscribe=One-Click"
RECENT_CAMPAIGNS = 3
# Per campaign: recipients handed over, and those later suppressed for a hard bounce or a
# complaint, unless a newer campaign reached them before the suppression (then it is that one's).
def tls_check(smtp: SmtpSettings | None, helo: str) -> Check:
    """Connect to the relay as a send would: STARTTLS or implicit TLS, then log in."""
    if smtp is None:
        return Check("relay TLS", WARN, "no smtp: section, so `send` writes to the outbox folder; "
                     "nothing is checked about a relay", fix="add smtp: (host, port, security)")
    where = f"{smtp.host}:{smtp.port}"
    if smtp.security == "none":
        return Check("relay TLS", WARN, f"smtp.security is none: mail and any password go to "
                     f"{where} unencrypted", fix="use security: starttls (587) or ssl (465) "
                     "unless the relay runs on this machine")
    try:
        transport = SmtpTransport(smtp, helo=helo, password=smtp_password(smtp))
        with transport:
            transport.connect()
            conn = transport.conn
            sock = getattr(conn, "sock", None)
            version = sock.version() if sock is not None and hasattr(sock, "version") else "TLS"
    except (TransportError, MailError) as exc:
        return Check("relay TLS", FAIL, exc.message)
    how = "STARTTLS" if smtp.security == "starttls" else "implicit TLS"
    login = f", login as {smtp.username} accepted" if smtp.username else ""
    return Check("relay TLS", PASS, f"{where} offers {how} ({version}){login}")


def _probe_url(settings: MailSettings, key: bytes, base_url: str | None) -> str:
    url = settings.unsubscribe_link(make_token(NOBODY, UNSUBSCRIBE, key))
    if base_url:
        base = urlsplit(base_url)
        parts = urlsplit(url)
        url = urlunsplit((base.scheme, base.netloc, base.path.rstrip("/") + parts.path,
                          parts.query, ""))
    return url


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect is itself the failure we report


def unsubscribe_check(settings: MailSettings, key: bytes, base_url: str | None = None,
                      timeout: float = 10.0) -> Check:
    """RFC 8058: a one-click POST to the List-Unsubscribe URL gets 200, not a redirect.

    The token names subscriber 0, which never exists, so nobody is unsubscribed.
    """
    url = _probe_url(settings, key, base_url)
    shown = url.split("?", 1)[0]
    request = urllib.request.Request(url, data=ONE_CLICK_BODY, method="POST", headers={
        "Content-Type": "application/x-www-form-urlencoded", "User-Agent": "pressroom-doctor"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as response:
            status = response.status
    except urllib.error.HTTPError as exc:
        status = exc.code
        exc.close()
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return Check("one-click unsubscribe", FAIL, f"POST {shown} failed: {reason}",
                     fix="run `pressroom serve` behind that URL (or set mail.unsubscribe_url)")
    if status == 200:
        return Check("one-click unsubscribe", PASS, f"POST {shown} (List-Unsubscribe=One-Click) "
                     "answered 200 without a redirect")
    verdict = "a redirect" if 300 <= status < 400 else "not 200"
    return Check("one-click unsubscribe", FAIL, f"POST {shown} (List-Unsubscribe=One-Click) "
                 f"answered {status}: {verdict}",
                 fix="RFC 8058 needs 200 to the POST itself; serve `pressroom serve` there "
                     "directly (no login page, no redirect to https or www)")


def mailto_check(lookup: Lookup, settings: MailSettings) -> Check:
    """The List-Unsubscribe mailto: what is advertised and whether its domain accepts mail."""
    address = settings.unsubscribe_mailto
    domain = address.rpartition("@")[2]
    try:
        mx = lookup.mx(domain)
    except DnsError as exc:
        return Check("unsubscribe mailto", FAIL, exc.message)
    if not mx:
        return Check("unsubscribe mailto", FAIL, f"List-Unsubscribe advertises mailto:{address} "
                     f"but {domain} has no MX record", fix=f"add an MX record for {domain} or "
                     "set mail.unsubscribe_mailto to a mailbox you read")
    hosts = ", ".join(f"{p} {h}" for p, h in mx)
    return Check("unsubscribe mailto", PASS, f"List-Unsubscribe advertises mailto:{address}; "
                 f"{domain} receives mail (MX {hosts}); unsubscribe each request within 2 days",
                 tuple(f"MX {p} {h}" for p, h in mx))


def rates_check(settings: MailSettings, max_bounce: float, max_complaint: float) -> Check:
    """Hard-bounce and complaint rates of the most recent campaigns, from the store.

    A suppression counts against the latest campaign that was sent to the address before it.
    """
    if isinstance(settings.store, Path) and not settings.store.exists():
        return Check("campaign rates", PASS, "no subscriber store yet: nothing sent")
    with open_store(settings.store) as store:
        rows = store.campaign_rates(RECENT_CAMPAIGNS)
    return _rates_verdict(rows, max_bounce, max_complaint)


def _rates_verdict(rows: list[tuple[str, int, int, int]], max_bounce: float,
                   max_complaint: float) -> Check:
    if not rows:
        return Check("campaign rates", PASS, "no campaigns sent yet")
    shown = tuple(f"{issue}: {sent} delivered, {b} hard bounces ({b / sent:.1%}), {c} complaints "
                  f"({c / sent:.2%})" for issue, sent, b, c in rows if sent)
    over = [(issue, sent, b, c) for issue, sent, b, c in rows
            if sent and (b / sent > max_bounce or c / sent > max_complaint)]
    if over:
        issue = over[0][0]
        return Check("campaign rates", FAIL, f"{issue} is over the limits (hard bounces "
                     f"{max_bounce:.0%}, complaints {max_complaint:.1%})", shown,
                     fix="clean the list (remove old or bought addresses, confirm sign-ups) "
                         "before the next campaign")
    return Check("campaign rates", PASS, f"the last {len(rows)} campaign(s) are under "
                 f"{max_bounce:.0%} hard bounces and {max_complaint:.1%} complaints", shown)
