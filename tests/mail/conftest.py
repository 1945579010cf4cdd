"""Fixtures for the mail tests: one real aiosmtpd server per module, projects, a DKIM key."""

from __future__ import annotations

import base64
import subprocess

import pytest
from dnstest import LocalDns
from mailtest import SECRET, make_project, recording_server, smtp_section



@pytest.fixture(scope="module")
def smtp_server():
    """One real SMTP server on 127.0.0.1 per test module."""
    with recording_server() as controller:
        yield controller


@pytest.fixture
def server(smtp_server):
    """The module's server with a clean record and no faults."""
    smtp_server.recorder.reset()
    return smtp_server


@pytest.fixture(autouse=True)
def secret_key(monkeypatch):
    monkeypatch.setenv("PRESSROOM_SECRET_KEY", SECRET)
    monkeypatch.delenv("PRESSROOM_SMTP_PASSWORD", raising=False)


@pytest.fixture
def outbox_project(tmp_path):
    """A project with no smtp: section (the embedded outbox)."""
    return make_project(tmp_path)


@pytest.fixture
def smtp_project(tmp_path, server):
    """A project sending to the module's SMTP server."""
    return make_project(tmp_path, smtp_section(server))


@pytest.fixture(scope="session")
def dkim_key(tmp_path_factory):
    """A fresh RSA key (1024 bits keeps 1,000 signatures quick) and its DNS TXT record."""
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-out", str(key), "1024"], check=True,
                   capture_output=True)
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


@pytest.fixture(scope="module")
def dns():
    """A real authoritative DNS server on 127.0.0.1 (dnslib); tests load zones into it."""
    server = LocalDns()
    yield server
    server.close()
