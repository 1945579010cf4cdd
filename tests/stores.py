"""The two store backends for the tests: SQLite files, and a private PostgreSQL cluster.

One cluster per session (initdb once, as the ``postgres`` system user when the suite runs as
root, listening only on a Unix socket in its own temporary folder, fsync off); each test gets
a fresh database copied from a migrated template, dropped after the test. ``CURRENT`` holds the
running test's PostgreSQL URL (None: SQLite), which the project helpers put in ``mail.store``.
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

CURRENT: str | None = None
TEMPLATE = "pressroom_template"
USER = "pressroom"


def location(default: Path | str) -> str:
    """``mail.store`` for the running test: its PostgreSQL URL, or ``default`` (a file)."""
    return CURRENT if CURRENT is not None else str(default)


def pg_bin() -> Path:
    """The newest installed PostgreSQL's binaries (Debian keeps initdb off PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    assert initdb, "PostgreSQL is not installed: install Debian's postgresql (system-packages.txt)"
    return Path(initdb).parent


class Cluster:
    """A private PostgreSQL server on a Unix socket in a temporary folder."""

    def __init__(self) -> None:
        self.bin = pg_bin()
        self.root = Path(tempfile.mkdtemp(prefix="pressroom-pg-"))
        self.data = self.root / "data"
        self._as: list[str] = []
        if os.geteuid() == 0:  # initdb refuses root: run the server as Debian's postgres user
            shutil.chown(self.root, "postgres", "postgres")
            self._as = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "--auth=trust", f"--username={USER}",
                  "--encoding=UTF8", "--locale=C", "--no-sync")
        options = (f"-k {self.root} -c listen_addresses='' -c fsync=off "
                   "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run("pg_ctl", "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                  "-w", "start")
        self._numbers = itertools.count(1)
        self.admin_url = self.url("postgres")
        self.sql(f"CREATE DATABASE {TEMPLATE}")
        from pressroom.mail.schema import upgrade

        upgrade(self.url(TEMPLATE))

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([*self._as, str(self.bin / tool), *args], check=True,
                       capture_output=True, cwd=self.root)

    def url(self, database: str) -> str:
        """A URL for ``database`` over the cluster's socket."""
        return f"postgresql://{USER}@/{database}?host={self.root}"

    def sql(self, statement: str) -> None:
        """Run one statement as the cluster's superuser, outside any transaction."""
        import psycopg

        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(statement.encode("utf-8"))

    def fresh(self, migrated: bool = True) -> str:
        """A new empty database (at the current schema unless ``migrated`` is False)."""
        name = f"test_{next(self._numbers)}"
        template = f"TEMPLATE {TEMPLATE}" if migrated else "TEMPLATE template0"
        self.sql(f"CREATE DATABASE {name} {template} STRATEGY FILE_COPY")
        return name

    def drop(self, name: str) -> None:
        """Drop a test's database, ending any connection a background thread left open."""
        self.sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")

    def close(self) -> None:
        """Stop the server and remove its folder."""
        try:
            self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)
