"""Helpers for the site, subscription service and preview tests: a built project with its site,
a recording SMTP server, the Flask app on a real WSGI server in a thread."""

from __future__ import annotations

import email
import shutil
import threading
import time
from dataclasses import dataclass, field, replace
from email import policy
from email.message import EmailMessage
from pathlib import Path
from types import MappingProxyType

import stores

from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

from pressroom.config import Config, load_config
from pressroom.mail.settings import mail_settings
from pressroom.mail.store import open_store
from projects import SECRET, closed_port  # noqa: F401  (re-exported for the web tests)

ORIGIN_OK = "http://localhost"  # what Flask's test client calls itself


class BufferedClient(FlaskClient):
    """A test client that reads each response whole and closes it (file responses included)."""

    def open(self, *args, **kwargs):
        kwargs.setdefault("buffered", True)
        return super().open(*args, **kwargs)


def client_of(app: Flask) -> BufferedClient:
    app.test_client_class = BufferedClient
    return app.test_client()


def site_project(built_out: Path, dest: Path) -> Config:
    """A writable copy of a built fixture project (content + output, site included)."""
    project = dest / "project"
    shutil.copytree(built_out.parent / "content", project / "content")
    shutil.copytree(built_out, project / "output")
    return load_config(project)


def with_mail(config: Config, store: Path, smtp_port: int | None = None) -> Config:
    """``config`` with its own subscriber store and, optionally, an SMTP server on 127.0.0.1."""
    smtp = None if smtp_port is None else MappingProxyType(
        {"host": "127.0.0.1", "port": smtp_port, "security": "none", "timeout": 5})
    return replace(config, mail=MappingProxyType({"store": stores.location(store),
                                                  "retry_backoff": 0.01}),
                   smtp=smtp)


def subscriber(config: Config, address: str):
    """The stored subscriber (or None), read directly from the store."""
    with open_store(mail_settings(config).store) as store:
        return store.find(address)


def events(config: Config, address: str) -> list[tuple[str, str, str, str]]:
    """(at, kind, source, detail) for one address, oldest first."""
    with open_store(mail_settings(config).store) as store:
        found = store.find(address)
        return store.events(found.id) if found else []


@dataclass
class Inbox:
    """An aiosmtpd handler keeping every message it accepts."""

    messages: list[tuple[list[str], bytes]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        """Forget every message (each test starts with an empty inbox)."""
        with self.lock:
            self.messages.clear()

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), envelope.original_content))
        return "250 2.0.0 OK queued"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [email.message_from_bytes(data, policy=policy.default)
                    for rcpts, data in self.messages if address in rcpts]

    def wait_for(self, address: str, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.to(address)
            if len(found) >= count:
                return found
            time.sleep(0.05)
        raise AssertionError(f"{count} message(s) to {address} did not arrive in {timeout} s")


def text_part(message: EmailMessage) -> str:
    return message.get_body(preferencelist=("plain",)).get_content()


class LiveServer:
    """A real threaded WSGI server on 127.0.0.1 whose app can be swapped between tests."""

    def __init__(self) -> None:
        self.app = None
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def preview_project(site_config: Config, dest: Path) -> Config:
    """A writable copy of a built project for the live preview (no outbox or page cache)."""
    project = dest / "project"
    shutil.copytree(site_config.project / "content", project / "content")
    shutil.copytree(site_config.out, project / "output",
                    ignore=shutil.ignore_patterns("outbox", ".preview-cache"))
    return load_config(project)
