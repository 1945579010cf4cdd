"""EPUBCheck's JVM kept between builds: where it listens, how long it stays, and how a build
talks to it (the Java side is java/EpubCheckDriver.java).

A build that finds no kept JVM starts one, detached from itself, which checks the build's
ebook and then stays ready on a Unix socket for ``PRESSROOM_EPUBCHECK_KEEP`` seconds (default
600; 0 stops it with the build). The next build sends its ebook there and gets the verdict in
well under a second instead of paying the JVM's start-up again.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO

from pressroom.errors import PressroomError

log = logging.getLogger(__name__)

KEEP_ENV = "PRESSROOM_EPUBCHECK_KEEP"
DEFAULT_KEEP = 600
STOP = "--pressroom-stop"  # the request that makes a kept JVM exit (the driver's STOP)
STOP_WAIT = 10.0  # seconds a kept JVM has to answer that request
_MAX_SOCKET_PATH = 100  # bytes: sockaddr_un holds 108 with its terminating NUL


def keep_seconds() -> int:
    """How long a started JVM stays ready after its build: ``PRESSROOM_EPUBCHECK_KEEP``."""
    raw = os.environ.get(KEEP_ENV, "").strip()
    if not raw:
        return DEFAULT_KEEP
    if not raw.isdigit():
        raise PressroomError(f"{KEEP_ENV}={raw!r} is not a number of seconds: set it to how "
                             "long EPUBCheck's JVM stays ready after a build (0: not at all)")
    return int(raw)


def socket_folder() -> Path | None:
    """The folder for this user's kept JVMs: ``$XDG_RUNTIME_DIR/pressroom``, else
    ``pressroom-UID`` in the temporary folder. None (with a warning) unless it is a real
    folder that this user owns and nobody else can open."""
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    folder = (Path(runtime) / "pressroom" if runtime
              else Path(tempfile.gettempdir()) / f"pressroom-{os.getuid()}")
    try:
        folder.mkdir(mode=0o700, exist_ok=True)
        info = folder.lstat()
    except OSError as exc:
        log.warning("EPUBCheck's JVM is not kept between builds: %s", exc)
        return None
    if (not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid()
            or info.st_mode & 0o077):
        log.warning("EPUBCheck's JVM is not kept between builds: %s must be a folder of your "
                    "own that only you can open (chmod 700)", folder)
        return None
    return folder


def socket_path(key: str) -> Path | None:
    """The socket of the kept JVM for ``key`` (driver, Java and EPUBCheck), or None."""
    folder = socket_folder()
    if folder is None:
        return None
    path = folder / f"epubcheck-{key}.sock"
    return path if len(os.fsencode(path)) <= _MAX_SOCKET_PATH else None


def request_bytes(args: list[str]) -> bytes:
    """The driver's request: one argument a line, then an empty line."""
    return "".join(f"{arg}\n" for arg in args).encode("utf-8") + b"\n"


def reply_status(line: bytes) -> int | None:
    """EPUBCheck's exit status from the driver's ``done STATUS`` line; None for anything else."""
    word, _, status = line.decode("utf-8", "replace").strip().partition(" ")
    return int(status) if word == "done" and status.lstrip("-").isdigit() else None


class KeptJvm:
    """One connection to a kept JVM: :meth:`ping` to see that it serves, :meth:`send` a check
    and :meth:`status` for its verdict."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._conn: socket.socket | None = None

    def _connect(self) -> socket.socket | None:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.settimeout(5)
            conn.connect(str(self.path))
        except OSError:
            conn.close()
            return None
        return conn

    def ping(self) -> bool:
        """Whether a JVM serves the socket (the empty request it answers by waiting on)."""
        conn = self._connect()
        if conn is None:
            return False
        with conn:
            try:
                conn.sendall(request_bytes([]))
            except OSError:
                return False
        return True

    def send(self, args: list[str]) -> bool:
        """Hand it one check; False when no JVM took it."""
        self._conn = self._connect()
        if self._conn is None:
            return False
        try:
            self._conn.sendall(request_bytes(args))
        except OSError:
            self.close()
            return False
        return True

    def status(self, timeout: float) -> int | None:
        """The sent check's exit status, or None when the JVM went away without one."""
        if self._conn is None:
            return None
        self._conn.settimeout(timeout)
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = self._conn.recv(64)
                if not chunk:
                    return None
                data += chunk
        except TimeoutError:
            raise PressroomError(f"EPUBCheck gave no verdict in {timeout:.0f} s; stop its JVM "
                                 "(pressroom stop-epubcheck) and build again") from None
        except OSError:
            return None
        finally:
            self.close()
        return reply_status(data)

    def stop(self) -> bool:
        """Ask the JVM to exit and wait (up to :data:`STOP_WAIT` s) until it has let go of us;
        False when none was serving. A JVM that takes the request but does not answer (hung,
        or stopped with SIGSTOP) is a PressroomError that says how to end it."""
        if not self.send([STOP]) or self._conn is None:
            return False
        try:
            self._conn.settimeout(STOP_WAIT)
            while self._conn.recv(64):
                pass
        except TimeoutError:
            raise PressroomError(f"EPUBCheck's JVM on {self.path} did not answer in "
                                 f"{STOP_WAIT:.0f} s; end it with: pkill -f {self.path}") from None
        except OSError:
            pass
        finally:
            self.close()
        return True

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class Detached:
    """A JVM started apart from this process (its own session, not our child), so that it can
    outlive the build and be kept: the build talks to it through its standard input and
    output, and can still kill it (through a pidfd, so never another process)."""

    def __init__(self, command: list[str]) -> None:
        # sh starts the JVM in the background with the pipes' ends and exits at once, so the JVM
        # is nobody's child here; fd 3 carries our pipe past sh's /dev/null for background jobs.
        launcher = subprocess.Popen(
            ["/bin/sh", "-c", 'exec 3<&0; "$@" <&3 3<&- & echo $!', "sh", *command],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            cwd="/", start_new_session=True)
        assert launcher.stdin is not None and launcher.stdout is not None
        self.stdin: IO[bytes] = launcher.stdin
        self.stdout: IO[bytes] = launcher.stdout
        pid_line = self.stdout.readline()
        launcher.wait()
        self.pid = int(pid_line)
        self._pidfd: int | None = os.pidfd_open(self.pid)

    @property
    def running(self) -> bool:
        """Whether the JVM is still running."""
        if self._pidfd is None:
            return False
        readable, _, _ = select.select([self._pidfd], [], [], 0)
        return not readable

    def send(self, args: list[str]) -> bool:
        """Write one check's request to its standard input and close it; False when it is
        gone."""
        if not self.running:
            return False
        try:
            self.stdin.write(request_bytes(args))
            self.stdin.close()
        except OSError:
            return False
        return True

    def status(self, timeout: float) -> int | None:
        """The check's exit status from its ``done STATUS`` line; None when it ended first."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise PressroomError(f"EPUBCheck gave no verdict in {timeout:.0f} s")
            readable, _, _ = select.select([self.stdout], [], [], left)
            if readable:
                return reply_status(self.stdout.readline())

    def kill(self) -> None:
        """Stop it now and wait until it has gone."""
        if self._pidfd is not None and self.running:
            signal.pidfd_send_signal(self._pidfd, signal.SIGKILL)
            select.select([self._pidfd], [], [], 10)
        self.release()

    def release(self) -> None:
        """Let go of it (it may carry on, to be kept): close our ends of its pipes."""
        for stream in (self.stdin, self.stdout):
            try:
                stream.close()
            except OSError:
                pass
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
