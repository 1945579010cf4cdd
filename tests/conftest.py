"""Shared fixtures: each fixture project is built once per session, into a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from sitetest import Inbox, LiveServer

from projects import ROOT, build_project, copy_project, smtp_sink  # noqa: F401 (re-exported)

pytest_plugins = ["ci_skips"]  # CI=true: a skipped test fails

# Pinned (not defaulted): `make test` exports the last commit's time for builds.
os.environ["SOURCE_DATE_EPOCH"] = "1767225600"  # 2026-01-01


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


@pytest.fixture(scope="module")
def live():
    """The subscription service on a real WSGI server in a thread."""
    server = LiveServer()
    yield server
    server.close()
