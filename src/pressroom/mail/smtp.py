"""Deliver messages: over one reused SMTP connection, or into the embedded outbox folder.

This is the only module that opens sockets. Each delivery returns an Outcome that says what
the server's reply means for the recipient; the campaign module turns that into ledger states.
"""

from __future__ import annotations

import logging
import re
import smtplib
import ssl
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from pressroom.errors import MailError
from pressroom.mail.settings import Relay, SmtpSettings
from pressroom.output import write_atomic

log = logging.getLogger(__name__)

SENT = "sent"            # the server answered 250 to the end of DATA
RETRY = "retry"          # 4xx or a connection lost before the message was complete: try later
REJECTED = "rejected"    # 5xx blaming the recipient: failed, and the address is suppressed
PAUSE = "pause"          # 5xx blaming the sender or the message: stop, suppress nobody
UNKNOWN = "unknown"      # the message was complete but the reply never came: maybe delivered
SKIPPED = "skipped"      # on_data refused: the recipient left since the snapshot; nothing sent

_ENHANCED = re.compile(r"^([245])\.(\d{1,3})\.(\d{1,3})\b")
_EOL = re.compile(rb"\r\n|\r|\n")
_DOT = re.compile(rb"(?m)^\.")


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt means: ``kind`` is one of SENT/RETRY/REJECTED/PAUSE/UNKNOWN.

    ``relay`` names the relay that answered (host:port); ``connection`` says the failure was
    the connection's (lost, or a 421 "closing"), not a verdict on the message: another relay
    may take it.
    """

    kind: str
    reply: str = ""
    relay: str = ""
    connection: bool = False


class TransportError(MailError):
    """The server cannot be used at all (unreachable, TLS or login failure)."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


def _reply(code: int, resp: bytes | str) -> str:
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else str(resp)
    return f"{code} {' '.join(text.split())}".strip()


def classify(code: int, resp: bytes | str, stage: str) -> Outcome:
    """Turn a non-success reply at ``stage`` (MAIL, RCPT, DATA, END) into an Outcome.

    4xx is transient. A 5xx on RCPT (or at the end of DATA) with no enhanced code or a 5.1.x /
    5.2.x code blames the recipient. Anything else permanent (5.7.x policy, 5.6.x content, a
    rejected sender) blames the message or the sender: pausing beats suppressing the whole list.
    """
    reply = _reply(code, resp)
    if 400 <= code < 500 or code < 200:
        return Outcome(RETRY, reply)
    if 500 <= code < 600:
        match = _ENHANCED.match(reply[4:])
        recipient_class = match is None or match.group(2) in ("1", "2")
        if stage == "RCPT" and recipient_class:
            return Outcome(REJECTED, reply)
        if stage == "END" and match is not None and match.group(2) in ("1", "2"):
            return Outcome(REJECTED, reply)
        return Outcome(PAUSE, reply)
    return Outcome(RETRY, reply)


def wire_payload(data: bytes) -> bytes:
    """CRLF line ends, dot-stuffing and the terminating ``.`` line (RFC 5321 4.5.2)."""
    # Messages from build_message are already CRLF with no leading dots (QP bodies): the
    # counts are cheap C scans, the regular expressions are not.
    if data.count(b"\n") != data.count(b"\r\n") or data.count(b"\r") != data.count(b"\r\n"):
        data = _EOL.sub(b"\r\n", data)
    if data.startswith(b".") or b"\n." in data:
        data = _DOT.sub(b"..", data)
    if not data.endswith(b"\r\n"):
        data += b"\r\n"
    return data + b".\r\n"


class SmtpTransport:
    """One SMTP connection, opened lazily, reused for every message and reopened after a drop."""

    def __init__(self, settings: SmtpSettings | Relay, helo: str,
                 password: str | None = None) -> None:
        self.settings = settings
        self.helo = helo
        self.password = password
        self.conn: smtplib.SMTP | None = None

    def __enter__(self) -> "SmtpTransport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def where(self) -> str:
        """host:port, for messages."""
        return f"{self.settings.host}:{self.settings.port}"

    def _open(self) -> smtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context()
        conn: smtplib.SMTP
        if s.security == "ssl":
            conn = smtplib.SMTP_SSL(s.host, s.port, local_hostname=self.helo, timeout=s.timeout,
                                    context=context)
        else:
            conn = smtplib.SMTP(s.host, s.port, local_hostname=self.helo, timeout=s.timeout)
        try:
            conn.ehlo()
            if s.security == "starttls":
                if not conn.has_extn("starttls"):
                    raise TransportError(f"{self.where} does not offer STARTTLS; set smtp.security "
                                         "to ssl (port 465) or, for a local relay only, none",
                                         transient=False)
                conn.starttls(context=context)
                conn.ehlo()
            if s.username:
                conn.login(s.username, self.password or "")
        except BaseException:
            conn.close()
            raise
        return conn

    def connect(self) -> smtplib.SMTP:
        """Open, secure and log in (and return the connection); TransportError says whether
        trying again may help."""
        s = self.settings
        try:
            self.conn = self._open()
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(f"SMTP login as {s.username} at {self.where} failed "
                                 f"({_reply(exc.smtp_code, exc.smtp_error)}); check smtp.username "
                                 f"and {s.password_env}", transient=False) from exc
        except ssl.SSLCertVerificationError as exc:
            raise TransportError(f"the TLS certificate of {self.where} is not valid "
                                 f"({exc.verify_message}); check smtp.host",
                                 transient=False) from exc
        except smtplib.SMTPNotSupportedError as exc:
            raise TransportError(f"{self.where}: {exc}; remove smtp.username or use a server that "
                                 "supports login", transient=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"cannot reach the SMTP server {self.where} "
                                 f"({exc or type(exc).__name__}); check smtp.host and smtp.port, "
                                 "then run the command again to resume", transient=True) from exc
        log.info("connected to %s", self.where)
        return self.conn

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def close(self) -> None:
        """Say QUIT (politely, ignoring a dead connection) and close."""
        if self.conn is not None:
            try:
                self.conn.quit()
            except (smtplib.SMTPException, OSError):
                pass
            self._drop()

    def _abort(self, outcome: Outcome) -> Outcome:
        """End a failed transaction: RSET, or drop the connection if the server is closing."""
        closing = outcome.reply.startswith("421")
        if self.conn is not None:
            try:
                if closing:
                    raise smtplib.SMTPServerDisconnected("server is closing the connection")
                self.conn.rset()
            except (smtplib.SMTPException, OSError):
                self._drop()
        return replace(outcome, relay=self.where, connection=closing)

    def _lost(self, kind: str, reply: str) -> Outcome:
        self._drop()
        return Outcome(kind, reply, self.where, connection=kind == RETRY)

    def send(self, sender: str, recipient: str, data: bytes,
             on_data: Callable[[], str | None], label: str = "") -> Outcome:
        """Deliver one message to one recipient.

        ``on_data`` runs just before DATA; when it returns a reason, the transaction is reset
        and nothing is sent (Outcome SKIPPED with that reason).
        """
        for fresh in (self.conn is None, True):
            conn = self.conn if self.conn is not None else self.connect()
            try:
                code, resp = conn.mail(sender)
                break
            except (smtplib.SMTPServerDisconnected, OSError) as exc:
                self._drop()  # an idle connection the server closed: reconnect once
                if fresh:
                    return self._lost(RETRY, f"connection lost before MAIL FROM ({exc})")
        if code != 250:
            return self._abort(classify(code, resp, "MAIL"))
        try:
            code, resp = conn.rcpt(recipient)
            if code not in (250, 251):
                return self._abort(classify(code, resp, "RCPT"))
            refused = on_data()
            if refused is not None:
                return self._abort(Outcome(SKIPPED, refused))
            code, resp = conn.docmd("DATA")
            if code != 354:
                return self._abort(classify(code, resp, "DATA"))
            conn.send(wire_payload(data))
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            # Until the final "." has gone out the server cannot have accepted the message.
            return self._lost(RETRY, f"connection lost before the message was complete ({exc})")
        try:
            code, resp = conn.getreply()
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            return self._lost(UNKNOWN, f"connection lost after the message was sent, before the "
                                       f"server's reply ({exc})")
        if code == 250:
            return Outcome(SENT, _reply(code, resp), self.where)
        return self._abort(classify(code, resp, "END"))


class OutboxTransport:
    """The embedded default: each message becomes ``<folder>/<label>.eml``."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def __enter__(self) -> "OutboxTransport":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def where(self) -> str:
        """The outbox folder, for messages."""
        return str(self.folder)

    def close(self) -> None:
        """Nothing to close."""

    def send(self, sender: str, recipient: str, data: bytes,
             on_data: Callable[[], str | None], label: str = "") -> Outcome:
        """Write one message atomically (a crash leaves the whole file or none)."""
        refused = on_data()
        if refused is not None:
            return Outcome(SKIPPED, refused)
        path = self.folder / f"{label or 'message'}.eml"
        write_atomic(path, data)
        return Outcome(SENT, f"written to {path}")


def safe_label(text: str) -> str:
    """A file-name-safe form of an address or issue slug."""
    return re.sub(r"[^A-Za-z0-9@._+-]", "_", text)[:120]
