"""Find the machine's Chromium (never Playwright's own download) for previews and tests.

Looked up in this order: the ``PRESSROOM_CHROMIUM`` environment variable, then ``chromium``,
``chromium-browser`` and ``google-chrome`` on PATH.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pressroom.errors import RenderError

ENV = "PRESSROOM_CHROMIUM"
NAMES = ("chromium", "chromium-browser", "google-chrome")
# Headless, as root in containers too, and quiet: no GPU, no background network traffic.
CHROMIUM_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run")
INSTALL_HINT = ("install it (Debian/Ubuntu: sudo apt-get install chromium) or set "
                f"{ENV} to a Chromium or Chrome executable")


def find_chromium() -> Path | None:
    """The Chromium to use, or None when there is none.

    Example: ``find_chromium()`` -> ``Path("/usr/bin/chromium")`` on Debian.
    """
    explicit = os.environ.get(ENV)
    if explicit:
        path = Path(explicit)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    for name in NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def require_chromium() -> Path:
    """:func:`find_chromium`, or a RenderError that says what to install."""
    found = find_chromium()
    if found is not None:
        return found
    explicit = os.environ.get(ENV)
    if explicit:
        raise RenderError(f"{ENV}={explicit} is not an executable file; point it at Chromium "
                          f"or Chrome, or unset it to look for {', '.join(NAMES)} on PATH")
    raise RenderError(f"screenshots need Chromium and none was found ({', '.join(NAMES)} on "
                      f"PATH): {INSTALL_HINT}")
