"""Shared fixtures: each fixture project is built once per session, into a temporary folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import stores
from sitetest import Inbox, LiveServer

from projects import ROOT, build_project, copy_project, smtp_sink  # noqa: F401 (re-exported)
from projects import stop_kept_jvms

pytest_plugins = ["ci_skips"]  # CI=true: a skipped test fails

# Pinned (not defaulted): `make test` exports the last commit's time for builds.
os.environ["SOURCE_DATE_EPOCH"] = "1767225600"  # 2026-01-01


@pytest.fixture(scope="session", autouse=True)
def one_epubcheck():
    """One EPUBCheck JVM for the session, started at its start and kept (in a socket folder of
    the session's own) for every check; stopped at the end. Tests of how JVMs start and are
    kept set their own folder or PRESSROOM_EPUBCHECK_KEEP."""
    from pressroom.epubcheck import PendingCheck, epubcheck_jar

    folder = tempfile.mkdtemp(prefix="pr-run-")  # short: a socket's path is at most 108 bytes
    saved = {name: os.environ.get(name)
             for name in ("XDG_RUNTIME_DIR", "PRESSROOM_EPUBCHECK_KEEP")}
    os.environ.update(XDG_RUNTIME_DIR=folder, PRESSROOM_EPUBCHECK_KEEP="3600")
    if epubcheck_jar() is not None and shutil.which("java"):
        PendingCheck().close()  # starts it now, in the background: let go, it warms up and stays
    yield
    stop_kept_jvms(Path(folder))
    for name, value in saved.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def demo_out(tmp_path_factory) -> Path:
    """The clinic's real content, built once: the output folder."""
    project = copy_project("demo", tmp_path_factory.mktemp("demo"))
    return build_project(project)


@pytest.fixture(scope="session")
def minimal_out(tmp_path_factory) -> Path:
    """The tiny fixture project, built once: the output folder."""
    project = copy_project("minimal", tmp_path_factory.mktemp("minimal"))
    return build_project(project)


@pytest.fixture
def project(tmp_path) -> Path:
    """A fresh, writable copy of the minimal fixture project for tests that edit content."""
    return copy_project("minimal", tmp_path / "proj")


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium (Debian's, through Playwright) for the whole session: every
    browser test opens its own contexts in it (Playwright's sync API allows one per thread)."""
    from pressroom.web.screenshots import chromium

    with chromium() as started:
        yield started


# Servers for the web tests: one of each per test module.

@pytest.fixture(scope="module")
def smtp():
    """A real SMTP server on 127.0.0.1 whose messages land in ``smtp.inbox``."""
    inbox = Inbox()
    with smtp_sink(inbox) as controller:
        controller.inbox = inbox
        yield controller


@pytest.fixture(autouse=True)
def _empty_inbox(request):
    """Each test sees only its own messages (a test runs once per store backend)."""
    if "smtp" in request.fixturenames:  # the module's server (some tests name a parameter so)
        inbox = getattr(request.getfixturevalue("smtp"), "inbox", None)
        if inbox is not None:
            inbox.clear()


@pytest.fixture(scope="module")
def live():
    """The subscription service on a real WSGI server in a thread."""
    server = LiveServer()
    yield server
    server.close()


# The store backends: a test (or module, through usefixtures) that takes ``backend`` runs once on
# SQLite and once on PostgreSQL; marked ``sqlite_only``, only on SQLite.

BACKENDS = ("sqlite", "postgresql")


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        only = metafunc.definition.get_closest_marker("sqlite_only")
        metafunc.parametrize("backend", BACKENDS[:1] if only else BACKENDS, indirect=True)


@pytest.fixture(scope="session")
def pg_cluster():
    """One private PostgreSQL cluster for the whole session (started on first use)."""
    cluster = stores.Cluster()
    yield cluster
    cluster.close()


@pytest.fixture
def backend(request):
    """"sqlite", or "postgresql" with a fresh migrated database in ``stores.CURRENT`` (which
    the project helpers write into ``mail.store``)."""
    if request.param == "sqlite":
        yield "sqlite"
        return
    cluster = request.getfixturevalue("pg_cluster")
    name = cluster.fresh()
    stores.CURRENT = cluster.url(name)
    try:
        yield "postgresql"
    finally:
        from pressroom.mail.outbox import stop_notice_senders

        stop_notice_senders(stores.CURRENT)  # its background sender must not outlive the test
        stores.CURRENT = None
        cluster.drop(name)
