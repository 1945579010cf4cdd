"""A URL fetcher for WeasyPrint that only reads files inside the project and ``data:`` URIs."""

from __future__ import annotations

import logging
import mimetypes
from pathlib import Path
from urllib.parse import unquote, urlsplit

log = logging.getLogger(__name__)


def make_fetcher(roots: list[Path], document: str):
    """A WeasyPrint URLFetcher confined to ``roots`` (resolved; no ``..`` or symlink escape).

    Anything else (other files, http, ftp, ...) stops the render with RefusedFetch.
    """
    from weasyprint.urls import FatalURLFetchingError, URLFetcher, URLFetcherResponse

    resolved_roots = [Path(r).resolve() for r in roots]

    class RefusedFetch(FatalURLFetchingError):
        """Raised (and caught by the PDF renderer) when a reference leaves the project."""

        def __init__(self, url: str, reason: str) -> None:
            super().__init__(f"{document}: refused to load '{url}': {reason}")
            self.url = url

    class ProjectFetcher(URLFetcher):
        refused = RefusedFetch

        def fetch(self, url, headers=None):
            scheme = urlsplit(url).scheme.lower()
            if scheme == "data":
                return super().fetch(url, headers)
            if scheme != "file":
                raise RefusedFetch(url, "only files inside the project can be used "
                                   "(no network access); copy it into content/images/")
            path = Path(unquote(urlsplit(url).path))
            try:
                real = path.resolve(strict=True)
            except (OSError, RuntimeError):
                raise RefusedFetch(url, "file not found") from None
            if not any(real.is_relative_to(root) for root in resolved_roots):
                raise RefusedFetch(url, "it is outside the project's content and theme folders")
            if not real.is_file():
                raise RefusedFetch(url, "not a file")
            kind = mimetypes.guess_type(real.name)[0] or "application/octet-stream"
            return URLFetcherResponse(real.as_uri(), real.read_bytes(), {"Content-Type": kind})

    return ProjectFetcher(timeout=5, allowed_protocols={"file", "data"}, allow_redirects=False,
                          fail_on_errors=True)
