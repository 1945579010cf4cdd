"""The ``mail:`` and ``smtp:`` sections of publication.yaml, validated; secrets from the env."""

from __future__ import annotations

import os
import string
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping
from urllib.parse import urlsplit

from pressroom.config import Config
from pressroom.errors import ConfigError, ContentError, MailError
from pressroom.fields import Fields
from pressroom import outputs
from pressroom.mail.addresses import domain_of, normalise_address
from pressroom.mail.database import has_password, is_url

SECRET_ENV = "PRESSROOM_SECRET_KEY"
PASSWORD_ENV = "PRESSROOM_SMTP_PASSWORD"
SECURITY = ("starttls", "ssl", "none")
DEFAULT_PORTS = {"starttls": 587, "ssl": 465, "none": 25}
MIN_SECRET_LENGTH = 32  # bytes
_LIST_ID_CHARS = set(string.ascii_letters + string.digits + "!#$%&'*+/=?^_`{|}~-.")


@dataclass(frozen=True)
class MailSettings:
    """Where subscribers live and what every newsletter message links to."""

    store: Path | str  # a SQLite file, or a postgresql:// URL (no password: libpq reads PGPASSWORD)
    outbox: Path
    sender_name: str
    sender: str
    reply_to: str | None
    fallback_name: str
    list_id: str
    unsubscribe_url: str
    unsubscribe_mailto: str
    view_url: str
    soft_bounce_limit: int = 3
    # Transient failures (4xx, lost connections) are retried with a doubling backoff; when no
    # message has been accepted for retry_window seconds the campaign pauses (nobody fails).
    retry_window: float = 3600.0
    retry_backoff: float = 30.0
    # fsync the ledger before every DATA: survives a power cut, not only a crash; slower.
    fsync_ledger: bool = False
    # Circuit-breaker and doctor limits (Gmail/Yahoo: complaints must stay under 0.3%).
    max_hard_bounce_rate: float = 0.05
    max_complaint_rate: float = 0.003
    breaker_window: int = 500
    # Seconds a sender's claim on recipients lasts without renewal (renewed every third of it):
    # after a sender dies, others take its claimed rows and report its in-flight ones unknown.
    lease: float = 60.0

    @property
    def sender_domain(self) -> str:
        """The domain of the sender address (Message-IDs are made on it)."""
        return domain_of(self.sender)

    def unsubscribe_link(self, token: str) -> str:
        """The one-click HTTPS unsubscribe URL carrying ``token``."""
        sep = "&" if "?" in self.unsubscribe_url else "?"
        return f"{self.unsubscribe_url}{sep}t={token}"

    def view_link(self, issue: str) -> str:
        """The web version of one newsletter issue."""
        return f"{self.view_url}{issue}.html"


@dataclass(frozen=True)
class DkimSettings:
    """DKIM signing: the key is read once, when the settings are loaded."""

    domain: str
    selector: str
    key_file: Path
    key: bytes


@dataclass(frozen=True)
class Relay:
    """One SMTP relay: where it is, how to log in (password from ``password_env``), its limits.

    ``connections`` caps how many senders hold a connection to it at once (every host sharing
    the store counts); ``rate`` is its own messages per second across all senders.
    """

    host: str
    port: int
    security: str = "starttls"
    username: str | None = None
    timeout: float = 30.0
    password_env: str = PASSWORD_ENV
    connections: int | None = None
    rate: float | None = None

    @property
    def name(self) -> str:
        """host:port, as the ledger records the relay that accepted a message."""
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class SmtpSettings:
    """How to reach the SMTP server(s) (passwords come from the environment only).

    ``relays`` lists every relay in failover order; host, port, security, username and timeout
    are the first relay's (what `pressroom doctor` probes).
    """

    host: str
    port: int
    security: str = "starttls"
    username: str | None = None
    timeout: float = 30.0
    rate: float | None = None
    hourly_cap: int | None = None
    dkim: DkimSettings | None = None
    relays: tuple[Relay, ...] = ()
    password_env: str = PASSWORD_ENV


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _thaw(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return [_thaw(v) for v in value]
    return value


def _section(config: Config, name: str, raw: Mapping[str, Any] | None) -> Fields:
    return Fields(_thaw(raw or {}), dict(config.lines), config.path, name,
                  config.line_of(name) or 1)


@contextmanager
def _config_errors() -> Iterator[None]:
    """Report problems found by the shared field reader as ConfigErrors (same file:line text)."""
    try:
        yield
    except ConfigError:
        raise
    except ContentError as exc:
        raise ConfigError(exc.path, exc.line, exc.reason) from exc


def _https(f: Fields, key: str, default: str) -> str:
    value = f.text(key, False, default)
    if not value.startswith("https://") or not urlsplit(value).netloc:
        raise f.error(key, f"'{f._key(key)}' must be an https:// URL (RFC 8058 one-click "
                           f"unsubscribe needs HTTPS), got {value!r}")
    return value


def _host(url: str) -> str:
    host = (urlsplit(url).hostname or "").lower()
    return host[4:] if host.startswith("www.") else host


def _rate(f: Fields, key: str, default: float) -> float:
    value = float(f.number(key, False, default, minimum=0))
    if value >= 1:
        raise f.error(key, f"'mail.{key}' is a fraction (0.05 means 5%), got {value}")
    return value


def _store(f: Fields, config: Config) -> Path | str:
    value = f.text("store", False, ".pressroom/subscribers.sqlite3")
    if is_url(value):
        if has_password(value):
            raise f.error("store", "'mail.store' must not contain a password (this file is "
                                   "shared and versioned): put it in PGPASSWORD or ~/.pgpass, "
                                   "which PostgreSQL's client library reads")
        return value
    store = (config.project / value).resolve()
    if store.is_relative_to(config.out.resolve()):
        raise f.error("store", f"'mail.store' must be outside the output folder {config.out} "
                               "(a deleted build must never lose subscribers)")
    return store


def mail_settings(config: Config) -> MailSettings:
    """Validate the ``mail:`` section (every key optional) against the rest of the config."""
    with _config_errors():
        return _mail_settings(config)


def _mail_settings(config: Config) -> MailSettings:
    f = _section(config, "mail", config.mail)
    news = config.newsletter
    store = _store(f, config)
    sender_domain = domain_of(news.sender_address)
    list_id = f.text("list_id", False, f"{config.slug}.{_host(config.website)}")
    if "." not in list_id.strip(".") or not set(list_id) <= _LIST_ID_CHARS or ".." in list_id:
        raise f.error("list_id", f"'mail.list_id' must look like a domain name, e.g. "
                                 f"newsletter.example.com, got {list_id!r}")
    mailto = f.text("unsubscribe_mailto", False, f"unsubscribe@{sender_domain}")
    try:
        mailto = normalise_address(mailto)
    except MailError as exc:
        raise f.error("unsubscribe_mailto", f"'mail.unsubscribe_mailto': {exc.message}") from exc
    view_url = f.text("view_url", False, outputs.view_base_url(config))
    if not view_url.startswith(("https://", "http://")):
        raise f.error("view_url", f"'mail.view_url' must be a full URL, got {view_url!r}")
    settings = MailSettings(
        store=store, outbox=config.out / "outbox",
        sender_name=news.sender_name, sender=news.sender_address, reply_to=news.reply_to,
        fallback_name=news.fallback_name, list_id=list_id,
        unsubscribe_url=_https(f, "unsubscribe_url", outputs.unsubscribe_url(config)),
        unsubscribe_mailto=mailto,
        view_url=view_url if view_url.endswith("/") else view_url + "/",
        soft_bounce_limit=f.integer("soft_bounce_limit", False, 3, minimum=1),
        retry_window=float(f.number("retry_window", False, 3600.0, minimum=0)),
        retry_backoff=float(f.number("retry_backoff", False, 30.0, minimum=0)),
        fsync_ledger=f.boolean("fsync_ledger", False, False),
        max_hard_bounce_rate=_rate(f, "max_hard_bounce_rate", 0.05),
        max_complaint_rate=_rate(f, "max_complaint_rate", 0.003),
        breaker_window=f.integer("breaker_window", False, 500, minimum=10),
        lease=float(f.number("lease", False, 60.0, minimum=1)),
    )
    f.done()
    return settings


def smtp_settings(config: Config) -> SmtpSettings | None:
    """Validate the ``smtp:`` section; None means the embedded outbox (no SMTP configured)."""
    if config.smtp is None:
        return None
    with _config_errors():
        return _smtp_settings(config)


def _smtp_settings(config: Config) -> SmtpSettings:
    f = _section(config, "smtp", config.smtp)
    if isinstance(config.smtp, Mapping) and "relays" in config.smtp:
        for key in ("host", "port", "security", "username", "timeout", "password_env"):
            if key in config.smtp:
                raise f.error(key, f"'smtp.{key}' belongs to each entry of 'smtp.relays' when "
                                   "relays are listed; move it into the relays")
        entries = f.mappings("relays")
        relays = tuple(_relay(entry, rate_key=True) for entry in entries)
        names = [relay.name for relay in relays]
        for i, entry in enumerate(entries):
            entry.done()
            if names.index(names[i]) != i:
                raise entry.error("host", f"'smtp.relays' lists {names[i]} twice")
    else:
        relays = (_relay(f, rate_key=False),)
    first = relays[0]
    settings = SmtpSettings(
        host=first.host, port=first.port, security=first.security, username=first.username,
        timeout=first.timeout, password_env=first.password_env, relays=relays,
        rate=_positive_rate(f), hourly_cap=f.integer("hourly_cap", False, None, minimum=1),
        dkim=_dkim(config, f.mapping("dkim", False)),
    )
    f.done()
    return settings


def _positive_rate(f: Fields) -> float | None:
    rate = f.number("rate", False, None, minimum=0)
    if rate is not None and rate <= 0:
        raise f.error("rate", f"'{f._key('rate')}' must be more than 0 messages per second; "
                              "leave it out for no limit")
    return float(rate) if rate is not None else None


def _relay(f: Fields, rate_key: bool) -> Relay:
    """One relay: an entry of smtp.relays (with its own connections and rate), or smtp itself."""
    host = f.text("host")
    security = f.choice("security", SECURITY, False, "starttls")
    port = f.integer("port", False, DEFAULT_PORTS[security], minimum=1)
    if port > 65535:
        raise f.error("port", f"'{f._key('port')}' must be at most 65535, got {port}")
    env = f.text("password_env", False, PASSWORD_ENV)
    if not env.replace("_", "").isalnum() or not env.isascii() or env[0].isdigit():
        raise f.error("password_env", f"'{f._key('password_env')}' must name an environment "
                                      f"variable (letters, digits, _), got {env!r}")
    return Relay(host=host, port=port, security=security, username=f.text("username", False),
                 timeout=float(f.number("timeout", False, 30.0, minimum=1)), password_env=env,
                 connections=f.integer("connections", False, None, minimum=1),
                 rate=_positive_rate(f) if rate_key else None)


def _dkim(config: Config, f: Fields | None) -> DkimSettings | None:
    if f is None:
        return None
    domain, selector = f.text("domain").lower(), f.text("selector")
    key_file = config.project / f.text("key_file")
    try:
        key = key_file.read_bytes()
    except OSError as exc:
        raise f.error("key_file", f"cannot read the DKIM key {key_file}: {exc.strerror}; "
                                  "point 'smtp.dkim.key_file' at a PEM private key") from exc
    if b"PRIVATE KEY" not in key:
        raise f.error("key_file", f"{key_file} is not a PEM private key (expected a "
                                  "'-----BEGIN PRIVATE KEY-----' block)")
    f.done()
    return DkimSettings(domain=domain, selector=selector, key_file=key_file, key=key)


def secret_key() -> bytes:
    """The token key from ``PRESSROOM_SECRET_KEY``; a clear error when missing or weak."""
    value = os.environ.get(SECRET_ENV, "")
    if not value:
        raise MailError(f"{SECRET_ENV} is not set; unsubscribe links are signed with it. Set it to "
                        "a long random value (keep it the same between runs), e.g. "
                        "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    key = value.encode("utf-8")
    if len(key) < MIN_SECRET_LENGTH:
        raise MailError(f"{SECRET_ENV} is too short ({len(key)} bytes); use at least "
                        f"{MIN_SECRET_LENGTH} random characters, e.g. "
                        "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    if len(set(value)) == 1:
        raise MailError(f"{SECRET_ENV} is one character repeated, which anyone could guess; "
                        "use a random value, e.g. "
                        "python -c 'import secrets; print(secrets.token_urlsafe(32))'")
    return key


def smtp_password(settings: SmtpSettings | Relay) -> str | None:
    """A relay's password from its ``password_env`` (default ``PRESSROOM_SMTP_PASSWORD``;
    needed only with a username)."""
    if not settings.username:
        return None
    env = settings.password_env
    value = os.environ.get(env)
    if not value:
        where = ("smtp.username" if env == PASSWORD_ENV
                 else f"the username of relay {settings.host}:{settings.port}")
        raise MailError(f"{where} is set but {env} is not; export the SMTP password "
                        f"in {env} (it is never read from publication.yaml)")
    return value

