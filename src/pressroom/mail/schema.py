"""The subscriber store's schema and its one migration history, for SQLite and PostgreSQL.

Versions are numbered from 1; each step has SQL for both engines. SQLite keeps the version in
``PRAGMA user_version`` (as stores made before PostgreSQL support do); PostgreSQL in a one-row
``schema_version`` table. PostgreSQL's history starts at 5 with the whole schema in one step
(steps 1-4 are empty there), so both engines share the version numbers from then on.
Migrations run under a lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock) and refuse
a schema newer than this code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from pressroom.config import Config
from pressroom.errors import MailError
from pressroom.mail.database import Database, Location, connect, is_url
from pressroom.mail.settings import mail_settings

log = logging.getLogger(__name__)

# Each entry moves the schema one version up; never edit a released entry, append a new one.
SQLITE_STEPS: tuple[tuple[str, ...], ...] = (
    (  # 1: subscribers, tags, suppression list, event log
        """CREATE TABLE subscribers (
            id INTEGER PRIMARY KEY,
            email TEXT NOT NULL,
            email_key TEXT NOT NULL UNIQUE,
            first_name TEXT NOT NULL DEFAULT '',
            last_name TEXT NOT NULL DEFAULT '',
            status TEXT NOT NULL CHECK (status IN
                ('pending', 'subscribed', 'unsubscribed', 'bounced', 'complained')),
            consent_source TEXT NOT NULL,
            consent_at TEXT NOT NULL,
            soft_bounces INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        "CREATE INDEX subscribers_status ON subscribers (status, id)",
        """CREATE TABLE subscriber_tags (
            subscriber_id INTEGER NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
            tag TEXT NOT NULL COLLATE NOCASE,
            PRIMARY KEY (subscriber_id, tag)) WITHOUT ROWID""",
        "CREATE INDEX subscriber_tags_tag ON subscriber_tags (tag, subscriber_id)",
        """CREATE TABLE suppressions (
            email_key TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            source TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL) WITHOUT ROWID""",
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            subscriber_id INTEGER,
            email TEXT NOT NULL DEFAULT '',
            kind TEXT NOT NULL,
            source TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '')""",
    ),
    (  # 2: campaign ledger, send lock, processed bounce reports
        """CREATE TABLE campaigns (
            id INTEGER PRIMARY KEY,
            issue TEXT NOT NULL UNIQUE,
            subject TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('sending', 'paused', 'done')),
            paused_reason TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        """CREATE TABLE campaign_audiences (
            campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
            tag TEXT NOT NULL COLLATE NOCASE,
            snapshot_at TEXT NOT NULL,
            PRIMARY KEY (campaign_id, tag)) WITHOUT ROWID""",
        """CREATE TABLE deliveries (
            campaign_id INTEGER NOT NULL REFERENCES campaigns (id),
            subscriber_id INTEGER NOT NULL REFERENCES subscribers (id),
            status TEXT NOT NULL CHECK (status IN
                ('pending', 'sending', 'sent', 'retry', 'failed', 'unknown', 'skipped')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            submitted_at REAL,
            message_id TEXT NOT NULL DEFAULT '',
            last_reply TEXT NOT NULL DEFAULT '',
            updated_at TEXT NOT NULL,
            PRIMARY KEY (campaign_id, subscriber_id)) WITHOUT ROWID""",
        "CREATE INDEX deliveries_status ON deliveries (campaign_id, status, subscriber_id)",
        """CREATE INDEX deliveries_submitted ON deliveries (submitted_at)
            WHERE submitted_at IS NOT NULL""",
        """CREATE TABLE send_lock (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            pid INTEGER NOT NULL,
            host TEXT NOT NULL,
            issue TEXT NOT NULL,
            started_at TEXT NOT NULL)""",
        """CREATE TABLE bounce_reports (
            report_id TEXT PRIMARY KEY,
            source TEXT NOT NULL,
            processed_at TEXT NOT NULL) WITHOUT ROWID""",
    ),
    # 3: was the web's rate_hits table; the web package now creates its own tables
    # (pressroom.web.guard.migrate). Stores already at 3 keep the table, which it reuses.
    (),
    (  # 4: why a campaign paused, distinct failed deliveries per address, the notice outbox
        # paused_kind says who paused it: 'transient' (the server kept deferring), 'message'
        # (a 5xx blaming the content or sender) or another module's breaker; paused_reason
        # (schema 2) holds the sentence shown to the user.
        "ALTER TABLE campaigns ADD COLUMN paused_kind TEXT NOT NULL DEFAULT ''",
        """CREATE TABLE failed_deliveries (
            email_key TEXT NOT NULL,
            delivery TEXT NOT NULL,
            kind TEXT NOT NULL,
            status TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (email_key, delivery)) WITHOUT ROWID""",
        """CREATE TABLE notices (
            id INTEGER PRIMARY KEY,
            recipient TEXT NOT NULL,
            message_id TEXT NOT NULL,
            data BLOB NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL NOT NULL DEFAULT 0,
            last_reply TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL)""",
        "CREATE INDEX notices_due ON notices (status, next_attempt_at)",
    ),
    (  # 5: the web's sign-up rate limits join the one history (stores at 3, or whose web app
        # ran, have the table already); events by subscriber for the history views
        "CREATE TABLE IF NOT EXISTS rate_hits (bucket TEXT NOT NULL, at REAL NOT NULL)",
        "CREATE INDEX IF NOT EXISTS rate_hits_bucket ON rate_hits (bucket, at)",
        "CREATE INDEX IF NOT EXISTS rate_hits_at ON rate_hits (at)",
        "CREATE INDEX events_subscriber ON events (subscriber_id, id)",
    ),
    (  # 6: several senders and relays: leases on claimed rows, global pacing, the relay used
        # lease_owner/lease_until: the sender that claimed a row and until when (renewed while
        # it lives); paced_at: the send slot handed out for the row (the hourly cap counts
        # these across senders); relay: host:port of the relay that accepted the message.
        "ALTER TABLE deliveries ADD COLUMN relay TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE deliveries ADD COLUMN lease_owner TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE deliveries ADD COLUMN lease_until REAL NOT NULL DEFAULT 0",
        "ALTER TABLE deliveries ADD COLUMN paced_at REAL",
        "CREATE INDEX deliveries_paced ON deliveries (paced_at) WHERE paced_at IS NOT NULL",
        # One row per pacing key ('global', 'relay:HOST:PORT'): the next free send slot.
        """CREATE TABLE send_pacing (
            key TEXT PRIMARY KEY,
            next_at REAL NOT NULL DEFAULT 0)""",
        # Connection slots of relays with a `connections` limit, leased by senders.
        """CREATE TABLE relay_slots (
            relay TEXT NOT NULL,
            slot INTEGER NOT NULL,
            owner TEXT NOT NULL,
            until REAL NOT NULL,
            PRIMARY KEY (relay, slot))""",
    ),
)


# PostgreSQL at schema 5, in one step: the same tables as SQLite steps 1-5. Differences: 64-bit
# identity ids, DOUBLE PRECISION times (PostgreSQL's REAL is 4 bytes), BYTEA, and tags unique
# case-insensitively through an index on lower(tag) (SQLite: COLLATE NOCASE).
POSTGRES_SCHEMA_5 = (
    """CREATE TABLE subscribers (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        email TEXT NOT NULL,
        email_key TEXT NOT NULL UNIQUE,
        first_name TEXT NOT NULL DEFAULT '',
        last_name TEXT NOT NULL DEFAULT '',
        status TEXT NOT NULL CHECK (status IN
            ('pending', 'subscribed', 'unsubscribed', 'bounced', 'complained')),
        consent_source TEXT NOT NULL,
        consent_at TEXT NOT NULL,
        soft_bounces INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    "CREATE INDEX subscribers_status ON subscribers (status, id)",
    """CREATE TABLE subscriber_tags (
        subscriber_id BIGINT NOT NULL REFERENCES subscribers (id) ON DELETE CASCADE,
        tag TEXT NOT NULL,
        PRIMARY KEY (subscriber_id, tag))""",
    "CREATE UNIQUE INDEX subscriber_tags_nocase ON subscriber_tags (subscriber_id, lower(tag))",
    "CREATE INDEX subscriber_tags_tag ON subscriber_tags (lower(tag), subscriber_id)",
    """CREATE TABLE suppressions (
        email_key TEXT PRIMARY KEY,
        reason TEXT NOT NULL,
        source TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL)""",
    """CREATE TABLE events (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        at TEXT NOT NULL,
        subscriber_id BIGINT,
        email TEXT NOT NULL DEFAULT '',
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        detail TEXT NOT NULL DEFAULT '')""",
    "CREATE INDEX events_subscriber ON events (subscriber_id, id)",
    """CREATE TABLE campaigns (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        issue TEXT NOT NULL UNIQUE,
        subject TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('sending', 'paused', 'done')),
        paused_reason TEXT NOT NULL DEFAULT '',
        paused_kind TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    """CREATE TABLE campaign_audiences (
        campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
        tag TEXT NOT NULL,
        snapshot_at TEXT NOT NULL,
        PRIMARY KEY (campaign_id, tag))""",
    """CREATE TABLE deliveries (
        campaign_id BIGINT NOT NULL REFERENCES campaigns (id),
        subscriber_id BIGINT NOT NULL REFERENCES subscribers (id),
        status TEXT NOT NULL CHECK (status IN
            ('pending', 'sending', 'sent', 'retry', 'failed', 'unknown', 'skipped')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0,
        submitted_at DOUBLE PRECISION,
        message_id TEXT NOT NULL DEFAULT '',
        last_reply TEXT NOT NULL DEFAULT '',
        updated_at TEXT NOT NULL,
        PRIMARY KEY (campaign_id, subscriber_id))""",
    "CREATE INDEX deliveries_status ON deliveries (campaign_id, status, subscriber_id)",
    """CREATE INDEX deliveries_submitted ON deliveries (submitted_at)
        WHERE submitted_at IS NOT NULL""",
    """CREATE TABLE send_lock (
        id INTEGER PRIMARY KEY CHECK (id = 1),
        pid INTEGER NOT NULL,
        host TEXT NOT NULL,
        issue TEXT NOT NULL,
        started_at TEXT NOT NULL)""",
    """CREATE TABLE bounce_reports (
        report_id TEXT PRIMARY KEY,
        source TEXT NOT NULL,
        processed_at TEXT NOT NULL)""",
    """CREATE TABLE failed_deliveries (
        email_key TEXT NOT NULL,
        delivery TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL,
        at TEXT NOT NULL,
        PRIMARY KEY (email_key, delivery))""",
    """CREATE TABLE notices (
        id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
        recipient TEXT NOT NULL,
        message_id TEXT NOT NULL,
        data BYTEA NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('queued', 'sending', 'sent', 'failed')),
        attempts INTEGER NOT NULL DEFAULT 0,
        next_attempt_at DOUBLE PRECISION NOT NULL DEFAULT 0,
        last_reply TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL)""",
    "CREATE INDEX notices_due ON notices (status, next_attempt_at)",
    "CREATE TABLE rate_hits (bucket TEXT NOT NULL, at DOUBLE PRECISION NOT NULL)",
    "CREATE INDEX rate_hits_bucket ON rate_hits (bucket, at)",
    "CREATE INDEX rate_hits_at ON rate_hits (at)",
)
POSTGRES_STEPS: tuple[tuple[str, ...], ...] = ((), (), (), (), POSTGRES_SCHEMA_5, (
    # 6: as SQLite's step 6 (times in DOUBLE PRECISION)
    "ALTER TABLE deliveries ADD COLUMN relay TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE deliveries ADD COLUMN lease_owner TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE deliveries ADD COLUMN lease_until DOUBLE PRECISION NOT NULL DEFAULT 0",
    "ALTER TABLE deliveries ADD COLUMN paced_at DOUBLE PRECISION",
    "CREATE INDEX deliveries_paced ON deliveries (paced_at) WHERE paced_at IS NOT NULL",
    """CREATE TABLE send_pacing (
        key TEXT PRIMARY KEY,
        next_at DOUBLE PRECISION NOT NULL DEFAULT 0)""",
    """CREATE TABLE relay_slots (
        relay TEXT NOT NULL,
        slot INTEGER NOT NULL,
        owner TEXT NOT NULL,
        until DOUBLE PRECISION NOT NULL,
        PRIMARY KEY (relay, slot))""",
))
# A later step appends to both tuples, with the same number.
SCHEMA_VERSION = len(SQLITE_STEPS)
assert len(POSTGRES_STEPS) == SCHEMA_VERSION

_PG_LOCK = 0x70726573_73726F6F  # "pressroo": the advisory lock every upgrade takes


def steps(db: Database) -> tuple[tuple[str, ...], ...]:
    """The migration steps for this database's engine, one per version."""
    return POSTGRES_STEPS if db.dialect == "postgresql" else SQLITE_STEPS


def read_version(db: Database) -> int:
    """The schema version of an open database (0: nothing created yet)."""
    if db.dialect == "sqlite":
        return int(db.execute("PRAGMA user_version").fetchone()[0])
    if db.execute("SELECT to_regclass('schema_version')").fetchone()[0] is None:
        return 0
    row = db.execute("SELECT version FROM schema_version").fetchone()
    return int(row[0]) if row else 0


def is_empty(db: Database) -> bool:
    """True for a database with no tables at all (a store about to be created)."""
    if db.dialect == "sqlite":
        return db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()[0] == 0
    return db.execute("SELECT COUNT(*) FROM pg_tables WHERE schemaname = current_schema()"
                      ).fetchone()[0] == 0


def _newer(db: Database, version: int) -> MailError:
    return MailError(f"{db.label} was written by a newer Pressroom (schema {version}; this "
                     f"version knows {SCHEMA_VERSION}); upgrade Pressroom to use it")


def check(db: Database) -> None:
    """Refuse a store whose schema is not this code's (older: run `pressroom db upgrade`)."""
    version = read_version(db)
    if version > SCHEMA_VERSION:
        raise _newer(db, version)
    if version < SCHEMA_VERSION:
        raise MailError(f"{db.label}: the subscriber store is at schema {version}, this "
                        f"Pressroom needs {SCHEMA_VERSION}; run `pressroom db upgrade` "
                        "(back the store up first)")


def _set_version(db: Database, version: int) -> None:
    if db.dialect == "sqlite":
        db.execute(f"PRAGMA user_version = {int(version)}")
    else:
        db.execute("DELETE FROM schema_version")
        db.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))


def migrate(db: Database) -> tuple[int, int]:
    """Bring an open database up to SCHEMA_VERSION under the migration lock; (from, to).

    SQLite commits each step on its own (BEGIN IMMEDIATE); PostgreSQL runs every step in one
    transaction holding an advisory lock, so concurrent upgrades wait and then find nothing to do.
    """
    start = read_version(db)
    if start > SCHEMA_VERSION:
        raise _newer(db, start)
    if db.dialect == "postgresql":
        with db.transaction():
            db.execute(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
            db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
            start = version = read_version(db)  # re-read under the lock
            if version > SCHEMA_VERSION:
                raise _newer(db, version)
            for number in range(version, SCHEMA_VERSION):
                for statement in POSTGRES_STEPS[number]:
                    db.execute(statement)
            _set_version(db, SCHEMA_VERSION)
        return start, SCHEMA_VERSION
    version = start
    while version < SCHEMA_VERSION:
        with db.transaction():
            version = read_version(db)  # re-read under the write lock
            if version >= SCHEMA_VERSION:
                break
            for statement in SQLITE_STEPS[version]:
                db.execute(statement)
            version += 1
            _set_version(db, version)
        log.info("%s: migrated the subscriber store to schema %d", db.label, version)
    return start, max(version, start)


@dataclass(frozen=True)
class Upgrade:
    """What `pressroom db upgrade` did: the store, and its schema before and after."""

    store: str
    before: int
    after: int


def upgrade(location: Location) -> Upgrade:
    """Create or upgrade the subscriber store at ``location`` to this code's schema.

    Safe to run again (then it changes nothing) and from several hosts at once; refuses a
    store written by a newer Pressroom. Example: ``upgrade("postgresql:///pressroom")``.
    """
    db = connect(location)
    try:
        before, after = migrate(db)
        return Upgrade(db.label, before, after)
    finally:
        db.close()


def status(location: Location) -> Upgrade:
    """The store's schema version and this code's (``before``, ``after``), changing nothing
    (a SQLite file that does not exist yet is at 0 and stays absent).

    Example: ``status(Path(".pressroom/subscribers.sqlite3")).before``.
    """
    if not is_url(location) and not Path(location).exists():
        return Upgrade(str(location), 0, SCHEMA_VERSION)
    db = connect(location)
    try:
        return Upgrade(db.label, read_version(db), SCHEMA_VERSION)
    finally:
        db.close()


def upgrade_store(config: Config) -> Upgrade:
    """`pressroom db upgrade`: create or upgrade the project's ``mail.store``.

    Example: ``upgrade_store(load_config(".")).after``.
    """
    return upgrade(mail_settings(config).store)


def store_status(config: Config) -> Upgrade:
    """`pressroom db status`: the project's store schema and this code's, changing nothing.

    Example: ``store_status(load_config(".")).before``.
    """
    return status(mail_settings(config).store)
