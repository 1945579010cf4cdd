"""Helpers for tests: the repo root, fixture projects, building them, and a local SMTP server."""

from __future__ import annotations

import contextlib
import shutil
import socket
import ssl
import subprocess
from pathlib import Path

from pressroom.build import build
from pressroom.config import load_config

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"


def copy_project(name: str, dest: Path) -> Path:
    """Copy a fixture project (or 'demo' for the repo's own content) to ``dest``."""
    src = ROOT if name == "demo" else FIXTURES / name
    shutil.copytree(src / "content", dest / "content")
    if (src / "themes").is_dir() and name != "demo":
        shutil.copytree(src / "themes", dest / "themes")
    if (src / "theme").is_dir():  # the project's theme overlay
        shutil.copytree(src / "theme", dest / "theme")
    return dest


def build_project(project: Path, **overrides) -> Path:
    """Build every format of ``project``; return its output folder."""
    config = load_config(project).with_overrides(**overrides)
    build(config)
    return config.out


# The PRESSROOM_SECRET_KEY the web and mail tests sign tokens with.
SECRET = "test-secret-key-0123456789abcdef"


@contextlib.contextmanager
def closed_port():
    """A port on 127.0.0.1 where nobody listens, for as long as the block runs: the socket is
    bound (so no other program can take the port) but never listens, so connecting is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


@contextlib.contextmanager
def smtp_sink(handler, **options):
    """A real SMTP server (aiosmtpd) on 127.0.0.1 passing messages to ``handler``; ``options``
    go to its Controller (TLS, authentication). It listens on a port the kernel picks (port 0),
    read back as ``controller.port``, so two servers can never race for one."""
    from aiosmtpd.controller import Controller

    class PortZeroController(Controller):
        def _trigger_server(self):
            if self.port == 0:  # the server is bound by now: learn the port before connecting
                self.port = self.server.sockets[0].getsockname()[1]
            super()._trigger_server()

    controller = PortZeroController(handler, hostname="127.0.0.1", port=0, **options)
    controller.start()
    try:
        yield controller
    finally:
        controller.stop()


def self_signed(folder: Path) -> tuple[ssl.SSLContext, Path, Path]:
    """A server TLS context with a fresh self-signed certificate for 127.0.0.1 (openssl), and
    the certificate and key files (clients trust it through SSL_CERT_FILE)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context, cert, key


def stop_kept_jvms(runtime: Path) -> None:
    """Stop every EPUBCheck JVM kept in ``runtime`` (another install's, such as the packaging
    test's, listens on a socket of its own there)."""
    from pressroom.keptjvm import KeptJvm

    for path in sorted((runtime / "pressroom").glob("*.sock")):
        KeptJvm(path).stop()
