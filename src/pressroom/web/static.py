"""The one safe way the web apps serve files of a built site: confined to its folder, no hidden
files, folders answered by their index.html, ETags and conditional requests. Shared by the
subscription service (the whole site) and the live preview (its /site/ view)."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from flask import Response, send_file
from werkzeug.security import safe_join

from pressroom.mediatypes import media_type

INDEX = "index.html"


def find_file(root: Path, path: str) -> tuple[Path | None, bool]:
    """(the file ``path`` names inside ``root`` or None, whether ``path`` named a folder).

    ``..``, absolute paths and hidden parts (``.git/``, ``.pressroom-cache.json``) name nothing;
    a folder stands for its index.html.
    """
    if any(part.startswith(".") for part in path.split("/")):
        return None, False
    full = safe_join(str(root), path) if path else str(root)
    target = Path(full) if full else None
    folder = target is not None and target.is_dir()
    if target is not None and folder:
        target = target / INDEX
    return (target if target is not None and target.is_file() else None), folder


def file_response(target: Path, max_age: int = 3600) -> Response:
    """``target`` as a response: its media type, a content ETag for conditional requests,
    ``max_age`` seconds of caching (HTML is always revalidated), and the ebook and PDFs
    offered under their own names (the ebook as a download)."""
    suffix = target.suffix.lower()
    download = suffix in (".epub", ".pdf")
    # Read whole (the site's files are small): a streamed file handle is left open when a
    # client hangs up mid-response under the development server.
    data = target.read_bytes()
    response = send_file(io.BytesIO(data), mimetype=media_type(target.name), conditional=True,
                         etag=hashlib.sha256(data).hexdigest()[:32],
                         last_modified=target.stat().st_mtime,
                         max_age=0 if suffix == ".html" else max_age,
                         as_attachment=suffix == ".epub",
                         download_name=target.name if download else None)
    if suffix == ".html":
        response.headers["Cache-Control"] = "no-cache"
    return response
