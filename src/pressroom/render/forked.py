"""Bytes made in a forked process and handed back through a pipe: for CPU-bound work in a
library that keeps the GIL (resvg-py does), so it truly runs beside the caller on another core.
The child never outlives its handle: :meth:`Forked.close` kills and reaps it, and on Linux it
is killed when the process that started it dies."""

from __future__ import annotations

import os
import signal
import sys
import traceback
from typing import Callable

from pressroom.errors import PressroomError, RenderError

_OK, _ERROR = b"O", b"E"  # the first byte the child writes: its bytes follow, or a message


class Forked:
    """``make()`` running in a forked child; :meth:`result` waits for its bytes.

    ``what`` names the work in error messages (``"the cover image"``). A
    :class:`~pressroom.errors.PressroomError` in the child is raised here as a RenderError with
    the same message; anything else, or a child that dies, as a RenderError naming ``what``.

    Example::

        job = Forked(lambda: slow_png(), "the cover image")
        try:
            png = job.result()
        finally:
            job.close()
    """

    def __init__(self, make: Callable[[], bytes], what: str) -> None:
        self.what = what
        parent = os.getpid()
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(read)
            _child(make, write, parent, what)
        os.close(write)
        self.pid: int | None = pid
        self.fd: int | None = read

    def result(self) -> bytes:
        """The child's bytes (waits for them); its error as a RenderError."""
        if self.fd is None:
            raise RenderError(f"{self.what}: its process was already stopped")
        chunks = []
        while chunk := os.read(self.fd, 1 << 20):
            chunks.append(chunk)
        status = self._reap(kill=False)
        data = b"".join(chunks)
        if data[:1] == _OK:
            return data[1:]
        if data[:1] == _ERROR:
            raise RenderError(data[1:].decode("utf-8", "replace"))
        raise RenderError(f"{self.what}: its process ended without a result ({_ended(status)})")

    def close(self) -> None:
        """Stop the child if it is still running and reap it (no zombie); idempotent."""
        self._reap(kill=True)

    def _reap(self, kill: bool) -> int:
        status = 0
        if self.pid is not None:
            if kill:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:  # exited on its own, not reaped yet
                    pass
            _pid, status = os.waitpid(self.pid, 0)
            self.pid = None
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
        return status

    def __enter__(self) -> Forked:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _ended(status: int) -> str:
    if os.WIFSIGNALED(status):
        return f"killed by signal {os.WTERMSIG(status)}"
    return f"exit status {os.waitstatus_to_exitcode(status)}"


def _child(make: Callable[[], bytes], fd: int, parent: int, what: str) -> None:
    """Run ``make`` and write its tagged result to ``fd``; always ends with ``os._exit`` (the
    parent's ``finally`` blocks, atexit handlers and buffered output are not this process's)."""
    code = 1
    try:
        _die_with(parent)
        try:
            payload = _OK + make()
        except PressroomError as exc:
            payload = _ERROR + exc.message.encode("utf-8")
        except Exception as exc:  # a bug: the parent shows it, naming the work
            last = traceback.format_exception_only(exc)[-1].strip()
            payload = _ERROR + f"{what}: {last}".encode("utf-8")
        view = memoryview(payload)
        while view:
            view = view[os.write(fd, view):]
        code = 0
    finally:
        os._exit(code)


def _die_with(parent: int) -> None:
    """Ask Linux to kill this child when its parent dies (a killed build leaves no orphan)."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL)
    if os.getppid() != parent:  # the parent died before the request above
        os._exit(1)
