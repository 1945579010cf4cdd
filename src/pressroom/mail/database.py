"""One connection to the subscriber store's database, SQLite file or PostgreSQL server, behind one
small interface: ``execute`` with ``?`` placeholders, ``transaction()``, ``lock()``.

The store's SQL is written once in the dialect both engines share (``INSERT … ON CONFLICT``,
``RETURNING``, ``CASE``); the few statements that differ (the schema) are chosen by ``dialect``.
psycopg is imported only when a PostgreSQL store is opened.
"""

from __future__ import annotations

import functools
import hashlib
import re
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence
from urllib.parse import urlsplit, urlunsplit

from pressroom.errors import MailError

SCHEMES = ("postgresql://", "postgres://")

Location = Path | str  # a SQLite file, or a postgresql:// URL


def is_url(location: Location) -> bool:
    """True when ``location`` names a PostgreSQL server rather than a SQLite file."""
    return isinstance(location, str) and location.startswith(SCHEMES)


def has_password(url: str) -> bool:
    """True when a postgresql:// URL carries a password (in the user part or the query)."""
    parts = urlsplit(url)
    return parts.password is not None or bool(re.search(r"(^|&)password=", parts.query))


def redact(url: str) -> str:
    """The URL without any password, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        netloc = parts.netloc
    else:
        netloc = parts.netloc.rsplit("@", 1)[1]
        netloc = f"{parts.username}@{netloc}" if parts.username else netloc
    query = re.sub(r"(^|&)password=[^&]*", r"\1password=***", parts.query)
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


@functools.lru_cache(maxsize=512)
def _pg_sql(sql: str) -> str:
    # The store writes no literal '?' in its SQL; a literal '%' must be doubled for psycopg.
    return sql.replace("%", "%%").replace("?", "%s")


class Database:
    """An open connection; ``dialect`` is "sqlite" or "postgresql", ``label`` names it in
    messages (the file path, or the URL without a password)."""

    dialect: str
    label: str

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement with ``?`` placeholders; return its cursor (fetchone, fetchall,
        rowcount, iteration)."""
        raise NotImplementedError

    @property
    def in_transaction(self) -> bool:
        """True inside an open transaction."""
        raise NotImplementedError

    def transaction(self) -> Any:
        """A context manager for one write transaction (rolled back on any error)."""
        raise NotImplementedError

    def lock(self, name: str) -> None:
        """Serialise the rest of this transaction with every other holder of ``name``."""

    def relaxed(self) -> Any:
        """A context manager: commit without waiting for the disk, where the engine allows."""
        return _nothing()

    def close(self) -> None:
        """Close the connection."""
        raise NotImplementedError


@contextmanager
def _nothing() -> Iterator[None]:
    yield


class SqliteDatabase(Database):
    """A SQLite file in WAL mode; a write transaction is BEGIN IMMEDIATE (one writer at a time,
    so ``lock`` has nothing to add)."""

    dialect = "sqlite"

    def __init__(self, path: Path, fsync: bool) -> None:
        self.label = str(path)
        # WAL with synchronous=NORMAL: every commit survives a crash or kill of this process
        # (the case the campaign ledger must survive); FULL also waits for the disk, so a commit
        # survives a power cut too, at the cost of one flush per commit (mail.fsync_ledger).
        self.sync = "FULL" if fsync else "NORMAL"
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.raw = sqlite3.connect(path, isolation_level=None, timeout=10.0)
            self.raw.execute("PRAGMA journal_mode = WAL")
            self.raw.execute(f"PRAGMA synchronous = {self.sync}")
            self.raw.execute("PRAGMA foreign_keys = ON")
        except sqlite3.DatabaseError as exc:
            raise MailError(f"{path}: cannot open the subscriber store ({exc}); is it a "
                            "Pressroom subscriber database?") from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Run one statement (see :meth:`Database.execute`)."""
        return self.raw.execute(sql, params)

    @property
    def in_transaction(self) -> bool:
        """True inside an open transaction."""
        return self.raw.in_transaction

    @contextmanager
    def transaction(self) -> Iterator["SqliteDatabase"]:
        """BEGIN IMMEDIATE ... COMMIT, rolled back on any error."""
        self.raw.execute("BEGIN IMMEDIATE")
        try:
            yield self
        except BaseException:
            self.raw.execute("ROLLBACK")
            raise
        self.raw.execute("COMMIT")

    @contextmanager
    def relaxed(self) -> Iterator[None]:
        """synchronous=NORMAL for the writes inside (only for writes whose loss is harmless)."""
        self.raw.execute("PRAGMA synchronous = NORMAL")
        try:
            yield
        finally:
            self.raw.execute(f"PRAGMA synchronous = {self.sync}")

    def close(self) -> None:
        """Close the connection."""
        self.raw.close()


class PostgresDatabase(Database):
    """A psycopg 3 connection in autocommit mode; ``transaction()`` opens a real transaction
    (READ COMMITTED) and ``lock`` takes a transaction-scoped advisory lock."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        import psycopg

        self.label = redact(url)
        self._error = psycopg.OperationalError
        try:
            if "connect_timeout=" not in url:  # libpq waits forever by default
                url += ("&" if "?" in url else "?") + "connect_timeout=10"
            self.raw = psycopg.connect(url, autocommit=True, application_name="pressroom")
        except psycopg.Error as exc:
            raise MailError(f"{self.label}: cannot connect to the PostgreSQL subscriber store: "
                            f"{connect_hint(exc)}") from None

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Any:
        """Run one statement (see :meth:`Database.execute`)."""
        try:
            if params:
                return self.raw.execute(_pg_sql(sql), tuple(params))
            return self.raw.execute(sql)  # no params: sent as written (a literal % stays one)
        except self._error as exc:
            raise MailError(f"{self.label}: the PostgreSQL subscriber store failed: "
                            f"{first_line(exc)}") from None

    @property
    def in_transaction(self) -> bool:
        """True inside an open transaction."""
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    @contextmanager
    def transaction(self) -> Iterator["PostgresDatabase"]:
        """BEGIN ... COMMIT, rolled back on any error."""
        try:
            with self.raw.transaction():
                yield self
        except self._error as exc:
            raise MailError(f"{self.label}: the PostgreSQL subscriber store failed: "
                            f"{first_line(exc)}") from None

    def lock(self, name: str) -> None:
        """pg_advisory_xact_lock on a 64-bit hash of ``name`` (released at commit)."""
        key = int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "big",
                             signed=True)
        self.execute("SELECT pg_advisory_xact_lock(?)", (key,))

    def close(self) -> None:
        """Close the connection."""
        self.raw.close()


def first_line(exc: BaseException) -> str:
    """The first line of a driver's message (libpq adds hints and context on later lines)."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def connect_hint(exc: BaseException) -> str:
    """What went wrong connecting, and what to do about it."""
    text = str(exc)
    reason = first_line(exc)
    for line in text.splitlines():  # libpq: 'connection failed: <why>' per address tried
        if "FATAL:" in line or "failed:" in line:
            reason = line.split("FATAL:", 1)[-1].split("failed:", 1)[-1].strip() or reason
    if "does not exist" in text and "database" in text:
        return f"{reason}; create it (createdb) and run `pressroom db upgrade`"
    if "password" in text or "authentication" in text:
        return (f"{reason}; set the password in PGPASSWORD or ~/.pgpass (never in "
                "publication.yaml)")
    return f"{reason}; is the server running, and is mail.store's host and port right?"


def connect(location: Location, fsync: bool = False) -> Database:
    """Open ``location``: a postgresql:// URL, or a SQLite file (created if missing)."""
    if is_url(location):
        return PostgresDatabase(str(location))
    return SqliteDatabase(Path(location), fsync)
