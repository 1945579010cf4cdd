"""The store's schema history and `pressroom db`: upgrading a real schema-4 SQLite store in place,
refusing newer schemas, PostgreSQL needing `db upgrade` first, and clear connection errors."""

from __future__ import annotations

import sqlite3
from concurrent.futures import ThreadPoolExecutor

import pytest
from click.testing import CliRunner
from mailtest import closed_port, config_of, make_project

from pressroom.cli import cli as main
from pressroom.errors import ConfigError, MailError
from pressroom.mail.database import connect
from pressroom.mail.schema import SCHEMA_VERSION, SQLITE_STEPS, upgrade
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import open_store


def db(*args: str, project):
    return CliRunner().invoke(main, ["db", *args, "--project", str(project)])


def schema_4_store(path) -> None:
    """A store as Pressroom wrote it before PostgreSQL support: SQLite steps 1-4, one reader."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = sqlite3.connect(path)
    for number, step in enumerate(SQLITE_STEPS[:4], start=1):
        for statement in step:
            raw.execute(statement)
        raw.execute(f"PRAGMA user_version = {number}")
    raw.execute("INSERT INTO subscribers (email, email_key, status, consent_source, consent_at, "
                "created_at, updated_at) VALUES ('old@example.com', 'old@example.com', "
                "'subscribed', 'legacy', 'then', 'then', 'then')")
    raw.execute("INSERT INTO subscriber_tags (subscriber_id, tag) VALUES (1, 'VIP')")
    raw.commit()
    raw.close()


def test_db_upgrade_brings_a_schema_4_sqlite_store_up_in_place(outbox_project):
    path = mail_settings(config_of(outbox_project)).store
    schema_4_store(path)
    with pytest.raises(MailError) as caught:
        open_store(path)
    assert caught.value.message == (
        f"{path}: the subscriber store is at schema 4, this Pressroom needs {SCHEMA_VERSION}; "
        "run `pressroom db upgrade` (back the store up first)")

    status = db("status", project=outbox_project)
    assert status.exit_code == 1 and "Traceback" not in status.output
    assert status.output == (f"Error: {path}: at schema 4, this Pressroom needs "
                             f"{SCHEMA_VERSION}; run `pressroom db upgrade`\n")
    result = db("upgrade", project=outbox_project)
    assert result.exit_code == 0, result.output
    assert result.output == f"{path}: upgraded from schema 4 to {SCHEMA_VERSION}\n"
    assert db("upgrade", project=outbox_project).output == (
        f"{path}: already at schema {SCHEMA_VERSION}\n")
    assert db("status", project=outbox_project).output == (
        f"{path}: at schema {SCHEMA_VERSION} (current)\n")
    with open_store(path) as store:
        old = store.find("old@example.com")
        assert (old.consent_source, old.tags) == ("legacy", ("VIP",))
        assert store.audience("vip") == [(old.id, "old@example.com", "", "")]
        store.db.execute("INSERT INTO rate_hits (bucket, at) VALUES ('ip:x', 1.0)")  # step 5


def test_a_store_whose_web_app_made_rate_hits_upgrades_too(outbox_project):
    # Before step 5 the web app created rate_hits itself: the step must accept the table.
    path = mail_settings(config_of(outbox_project)).store
    schema_4_store(path)
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE rate_hits (bucket TEXT NOT NULL, at REAL NOT NULL)")
    raw.execute("INSERT INTO rate_hits VALUES ('ip:y', 2.0)")
    raw.commit()
    raw.close()
    assert upgrade(path).after == SCHEMA_VERSION
    with open_store(path) as store:
        assert store.db.execute("SELECT bucket FROM rate_hits").fetchall() == [("ip:y",)]


@pytest.mark.usefixtures("backend")
def test_a_newer_schema_is_refused_by_open_and_by_upgrade(outbox_project, backend):
    location = mail_settings(config_of(outbox_project)).store
    with open_store(location) as store:
        if backend == "sqlite":
            store.db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        else:
            store.db.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
        label = store.db.label
    expected = (f"{label} was written by a newer Pressroom (schema {SCHEMA_VERSION + 1}; this "
                f"version knows {SCHEMA_VERSION}); upgrade Pressroom to use it")
    with pytest.raises(MailError) as caught:
        open_store(location)
    assert caught.value.message == expected
    result = db("upgrade", project=outbox_project)
    assert (result.exit_code, result.output) == (1, f"Error: {expected}\n")


def test_postgresql_needs_db_upgrade_first(tmp_path, pg_cluster):
    name = pg_cluster.fresh(migrated=False)
    url = pg_cluster.url(name)
    project = make_project(tmp_path, mail={"store": url})
    try:
        result = CliRunner().invoke(main, ["subscribers", "stats", "--project", str(project)])
        assert result.exit_code == 1 and "Traceback" not in result.output
        assert result.output == (
            f"Error: {url}: the subscriber store is at schema 0, this Pressroom needs "
            f"{SCHEMA_VERSION}; run `pressroom db upgrade` (back the store up first)\n")
        assert db("upgrade", project=project).output == (
            f"{url}: upgraded from schema 0 to {SCHEMA_VERSION}\n")
        assert db("upgrade", project=project).output == (
            f"{url}: already at schema {SCHEMA_VERSION}\n")
        stats = CliRunner().invoke(main, ["subscribers", "stats", "--project", str(project)])
        assert stats.exit_code == 0 and stats.output.startswith(f"store: {url}\n")
    finally:
        pg_cluster.drop(name)


def test_a_password_in_the_store_url_is_refused_with_file_and_line(tmp_path):
    project = make_project(tmp_path, mail={"store": "postgresql://ann:s3cret@db.example/news"})
    yaml_file = project / "content" / "publication.yaml"
    line = next(n for n, text in enumerate(yaml_file.read_text().splitlines(), start=1)
                if "store:" in text)
    with pytest.raises(ConfigError) as caught:
        mail_settings(config_of(project))
    assert str(caught.value) == (
        f"{yaml_file}:{line}: 'mail.store' must not contain a password (this file is shared "
        "and versioned): put it in PGPASSWORD or ~/.pgpass, which PostgreSQL's client library "
        "reads")
    assert "s3cret" not in str(caught.value)


def test_an_unreachable_postgresql_is_one_clear_error(tmp_path):
    with closed_port() as port:
        url = f"postgresql://pressroom@127.0.0.1:{port}/news?connect_timeout=2"
        project = make_project(tmp_path, mail={"store": url})
        result = CliRunner().invoke(main, ["subscribers", "stats", "--project", str(project)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.output.startswith(f"Error: {url}: cannot connect to the PostgreSQL subscriber "
                                    "store: ")
    assert result.output.endswith("; is the server running, and is mail.store's host and port "
                                  "right?\n")
    assert "Connection refused" in result.output


def test_a_missing_postgresql_database_says_to_create_it(pg_cluster):
    url = pg_cluster.url("no_such_database")
    with pytest.raises(MailError) as caught:
        connect(url)
    assert caught.value.message == (
        f"{url}: cannot connect to the PostgreSQL subscriber store: database "
        '"no_such_database" does not exist; create it (createdb) and run `pressroom db upgrade`')



def test_a_file_that_is_not_a_store_is_one_clear_error(tmp_path):
    path = tmp_path / "subscribers.sqlite3"
    path.write_bytes(b"this is not a database, just some text " * 200)
    with pytest.raises(MailError) as caught:
        open_store(path)
    assert caught.value.message == (f"{path}: cannot open the subscriber store (file is not a "
                                    "database); is it a Pressroom subscriber database?")


def test_concurrent_upgrades_of_one_postgresql_database_wait_for_each_other(pg_cluster):
    name = pg_cluster.fresh(migrated=False)
    url = pg_cluster.url(name)
    try:
        with ThreadPoolExecutor(max_workers=3) as pool:
            results = list(pool.map(lambda _: upgrade(url), range(3)))
        # One created the schema; the others waited on the advisory lock and found it done.
        assert sorted((r.before, r.after) for r in results) == [
            (0, SCHEMA_VERSION), (SCHEMA_VERSION, SCHEMA_VERSION), (SCHEMA_VERSION, SCHEMA_VERSION)]
        with open_store(url) as store:
            assert store.schema_version == SCHEMA_VERSION
    finally:
        pg_cluster.drop(name)
