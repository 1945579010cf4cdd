"""Build one outgoing email (EmailMessage, default policy), with list headers and optional DKIM."""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import secrets
from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, quote
from html import escape
from pathlib import Path
from typing import Callable

import dkim

from pressroom.errors import MailError, where
from pressroom.mail.addresses import check_header, domain_of, normalise_address
from pressroom.mail.settings import DkimSettings
from pressroom.mergefields import MARKERS
from pressroom.outputs import is_issue_name

log = logging.getLogger(__name__)

_MARKER = re.compile("(" + "|".join(re.escape(m) for m in MARKERS) + ")")

ONE_CLICK = "List-Unsubscribe=One-Click"
# RFC 8058 requires List-Unsubscribe and List-Unsubscribe-Post to be covered by the signature.
class _Registry(HeaderRegistry):
    """The default header registry, minus re-creating a header class for every header set."""

    def __init__(self) -> None:
        super().__init__()
        self._classes: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        if key not in self._classes:
            self._classes[key] = super().__getitem__(name)
        return self._classes[key]


# The default policy with a caching registry: same headers, a tenth less time per message.
POLICY = policy.default.clone(header_factory=_Registry())
# List-Unsubscribe is stored raw and emitted as written: the folder would RFC 2047-encode a long
# URL (it has no space to fold at), and receivers would no longer recognise the header.
WIRE = POLICY.clone(linesep="\r\n", refold_source="none")
SIGNED_HEADERS = (b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
                  b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type")


@dataclass(frozen=True)
class Built:
    """A built newsletter issue, as ``pressroom build`` left it in ``<out>/newsletters``."""

    slug: str
    subject: str
    preheader: str
    html: str
    text: str


@dataclass(frozen=True)
class Outgoing:
    """One finished message: its envelope recipient, Message-ID and wire bytes (CRLF)."""

    recipient: str
    message_id: str
    data: bytes


def load_built(out: Path, issue: str) -> Built:
    """Read ``<out>/newsletters/<issue>.{json,html,txt}``; a clear error when missing or broken."""
    if not is_issue_name(issue):
        raise MailError(f"{issue!r} is not an issue slug; give the file name of a built newsletter "
                        "without its extension, e.g. 01-welcome")
    folder = out / "newsletters"
    paths = {ext: folder / f"{issue}.{ext}" for ext in ("json", "html", "txt")}
    missing = [p for p in paths.values() if not p.is_file()]
    if missing:
        built = sorted(p.stem for p in folder.glob("*.json")) if folder.is_dir() else []
        hint = f"built issues: {', '.join(built)}" if built else "no newsletters are built yet"
        raise MailError(f"{where(missing[0])} not found; run `pressroom "
                        f"build` first and give the issue slug ({hint})")
    try:
        meta = json.loads(paths["json"].read_text(encoding="utf-8"))
        subject = meta["subject"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MailError(f"{where(paths['json'])}: not a built newsletter description ({exc}); "
                        "rebuild with `pressroom build`") from exc
    return Built(slug=issue, subject=check_header("subject", subject),
                 preheader=meta.get("preheader", ""),
                 html=paths["html"].read_text(encoding="utf-8"),
                 text=paths["txt"].read_text(encoding="utf-8"))


def _address(name: str | None, addr: str, what: str) -> Address:
    check_header(f"{what} name", name)
    addr = normalise_address(addr)
    try:
        return Address(display_name=name or "", addr_spec=addr)
    except (ValueError, IndexError, HeaderParseError) as exc:
        raise MailError(f"{addr!r} is not a valid email address ({what}): {exc}") from exc


def list_id_header(name: str, list_id: str) -> str:
    """``"Name" <list.id>`` (RFC 2919); the phrase is dropped when it is not plain ASCII."""
    check_header("list name", name)
    return f'"{quote(name)}" <{list_id}>' if name.isascii() else f"<{list_id}>"


class PreparedBody:
    """A body whose fixed parts are quoted-printable encoded once per campaign.

    Per recipient only the merge values are encoded, each spliced in between two soft line
    breaks ("=" at a line end, which decodes to nothing), so every encoded line stays within
    76 characters and the decoded text is exactly the personalised template.
    """

    def __init__(self, template: str, escape: Callable[[str], str] = lambda v: v) -> None:
        parts = _MARKER.split(template.replace("\r\n", "\n"))
        self.static = [_qp(p.encode("utf-8")) for p in parts[::2]]
        self.markers = parts[1::2]
        self.escape = escape

    def encode(self, values: dict[str, str]) -> bytes:
        """The CRLF quoted-printable body with ``values`` (marker -> raw value) filled in."""
        out = [self.static[0]]
        for marker, static in zip(self.markers, self.static[1:]):
            value = self.escape(values[marker]).encode("utf-8")
            out += [b"=\n", _qp(value), b"=\n", static]
        return _crlf(b"".join(out))


def _qp(data: bytes) -> bytes:
    """Quoted-printable (RFC 2045) with every line at most 75 characters, so the soft break
    ("=") spliced after a chunk still fits in 76; whitespace at a line or chunk end is encoded.
    (binascii.b2a_qp can reach 77 when it encodes a space at column 75.)"""
    return b"\n".join(_qp_line(line) for line in data.split(b"\n"))


def _qp_line(line: bytes) -> bytes:
    out: list[bytes] = []
    current = b""
    last = len(line) - 1
    for i, byte in enumerate(line):
        plain = 33 <= byte <= 126 and byte != 61 or (byte in (9, 32) and i != last)
        token = bytes([byte]) if plain else b"=%02X" % byte
        if len(current) + len(token) > 74:
            out.append(current + b"=")
            current = b""
        current += token
    return b"\n".join([*out, current])


class MessageTemplate:
    """Everything about a message that is the same for every recipient, checked and folded
    once (headers through EmailMessage and the default policy); ``build`` adds the rest."""

    def __init__(self, *, sender: str, sender_name: str, subject: str, text: str,
                 html: str | None = None, reply_to: str | None = None,
                 list_id: str | None = None, unsubscribe_mailto: str | None = None,
                 dkim_settings: DkimSettings | None = None) -> None:
        self.sender_domain = domain_of(sender)
        self.dkim_settings = dkim_settings
        self.unsubscribe_mailto = (check_header("unsubscribe address", unsubscribe_mailto)
                                   if unsubscribe_mailto else None)
        head = EmailMessage(policy=POLICY)
        head["From"] = _address(sender_name, sender, "sender")
        self.from_header = _fold(head)
        head = EmailMessage(policy=POLICY)
        if reply_to:
            head["Reply-To"] = _address(None, reply_to, "reply-to")
        check_header("subject", subject)
        if subject.isascii():
            head["Subject"] = subject
        else:
            # The default folder drops spaces between adjacent encoded words; Header does not.
            head.set_raw("Subject", Header(subject, "utf-8").encode(linesep="\n", maxlinelen=76))
        self.fixed = _fold(head)
        head = EmailMessage(policy=POLICY)
        if list_id:
            head["List-Id"] = list_id_header(sender_name, list_id)
        self.list_header = _fold(head)
        self.text = PreparedBody(text)
        self.html = (
            PreparedBody(html, lambda v: escape(v, quote=True)) if html is not None else None
        )

    def build(self, *, to: str, to_name: str = "", values: dict[str, str] | None = None,
              unsubscribe_https: str | None = None, date: _dt.datetime | None = None) -> Outgoing:
        """One message for ``to``: merge ``values`` filled in, unique Message-ID, signed."""
        msg = EmailMessage(policy=POLICY)
        recipient = _address(to_name, to, "recipient")
        msg["To"] = recipient
        msg["Date"] = format_datetime(date or _dt.datetime.now(_dt.timezone.utc))
        message_id = make_msgid(domain=self.sender_domain)
        msg["Message-ID"] = message_id
        lists = EmailMessage(policy=POLICY)
        if unsubscribe_https:
            check_header("unsubscribe URL", unsubscribe_https)
            targets = [f"<{unsubscribe_https}>"]
            if self.unsubscribe_mailto:
                targets.append(f"<mailto:{self.unsubscribe_mailto}?subject=unsubscribe>")
            if any(len(t) > 900 for t in targets):
                raise MailError("the unsubscribe URL is too long for an email header; shorten "
                                "mail.unsubscribe_url")
            lists.set_raw("List-Unsubscribe", ",\n ".join(targets))
            lists["List-Unsubscribe-Post"] = ONE_CLICK
        values = values or {}
        if self.html is None:
            mime = (b'MIME-Version: 1.0\r\nContent-Type: text/plain; charset="utf-8"\r\n'
                    b"Content-Transfer-Encoding: quoted-printable\r\n")
            body = self.text.encode(values)
        else:
            boundary = f"=_pressroom_{secrets.token_hex(12)}".encode()  # "=_" never occurs in QP
            mime = (b"MIME-Version: 1.0\r\nContent-Type: multipart/alternative;\r\n boundary=\""
                    + boundary + b'"\r\n')
            body = b"".join(
                b"--" + boundary + b"\r\nContent-Type: text/" + kind +
                b'; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n' +
                part.encode(values) + b"\r\n" for kind, part in ((b"plain", self.text),
                                                                  (b"html", self.html))
            ) + b"--" + boundary + b"--\r\n"
        head = (self.from_header + _fold(msg) + self.fixed + self.list_header + _fold(lists)
                + mime)
        data = head + b"\r\n" + body
        if self.dkim_settings is not None:
            data = sign(data, self.dkim_settings)
        return Outgoing(recipient=recipient.addr_spec, message_id=message_id, data=data)


def build_message(*, sender: str, sender_name: str, to: str, to_name: str = "", subject: str,
                  text: str, html: str | None = None, reply_to: str | None = None,
                  list_id: str | None = None, unsubscribe_https: str | None = None,
                  unsubscribe_mailto: str | None = None, dkim_settings: DkimSettings | None = None,
                  date: _dt.datetime | None = None) -> Outgoing:
    """Build, check and (with DKIM settings) sign one message.

    Refuses (MailError) any header value with CR/LF and any invalid address. Newsletters pass
    ``list_id`` and both unsubscribe targets and get List-Id, List-Unsubscribe and
    List-Unsubscribe-Post (RFC 8058); transactional mail leaves them out. Campaigns use
    MessageTemplate directly, preparing the shared parts once.
    """
    template = MessageTemplate(sender=sender, sender_name=sender_name, subject=subject, text=text,
                               html=html, reply_to=reply_to, list_id=list_id,
                               unsubscribe_mailto=unsubscribe_mailto if unsubscribe_https else None,
                               dkim_settings=dkim_settings)
    return template.build(to=to, to_name=to_name, unsubscribe_https=unsubscribe_https, date=date)


def _fold(msg: EmailMessage) -> bytes:
    """A message's headers as folded CRLF bytes (the default policy's folding)."""
    return b"".join(WIRE.fold_binary(name, value) for name, value in msg.raw_items())


def _crlf(encoded: bytes) -> bytes:
    if not encoded.endswith(b"\n"):
        encoded += b"\n"
    return encoded[:-1].replace(b"\n", b"\r\n")


def sign(data: bytes, settings: DkimSettings) -> bytes:
    """Prepend a DKIM-Signature (relaxed/relaxed, rsa-sha256) to a CRLF message."""
    try:
        signature = dkim.sign(data, settings.selector.encode("ascii"),
                              settings.domain.encode("ascii"), settings.key,
                              canonicalize=(b"relaxed", b"relaxed"),
                              include_headers=list(SIGNED_HEADERS))
    except (dkim.DKIMException, ValueError, UnicodeError) as exc:
        raise MailError(f"DKIM signing with {settings.key_file} failed: {exc}; check "
                        "smtp.dkim (domain, selector and an RSA private key file)") from exc
    return signature + data


def check_dkim(settings: DkimSettings | None, sender: str) -> None:
    """Sign a probe message once, so a broken key stops a campaign before the first send."""
    if settings is None:
        return
    sender_domain = domain_of(sender)
    if sender_domain != settings.domain and not sender_domain.endswith("." + settings.domain):
        log.warning("smtp.dkim.domain %s does not match the sender's domain %s: receivers will "
                    "not count the signature for DMARC", settings.domain, sender_domain)
    sign(b"From: probe@" + settings.domain.encode("ascii") + b"\r\n\r\nprobe\r\n", settings)
