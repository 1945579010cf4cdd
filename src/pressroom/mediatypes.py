"""The one content-type strategy: a file name's media type, for the EPUB manifest, the PDF
renderer's fetcher, the site server, the preview and the offline screenshots alike. Pure."""

from __future__ import annotations

import mimetypes
import posixpath

# Explicit for every type Pressroom writes or serves, so the answer never depends on the
# machine's /etc/mime.types. Flask adds "; charset=utf-8" to the text types it serves.
MEDIA_TYPES = {
    ".html": "text/html", ".xhtml": "application/xhtml+xml", ".css": "text/css",
    ".js": "text/javascript", ".txt": "text/plain", ".json": "application/json",
    ".xml": "application/xml", ".epub": "application/epub+zip", ".pdf": "application/pdf",
    ".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
    ".svg": "image/svg+xml", ".ico": "image/x-icon", ".woff": "font/woff",
    ".woff2": "font/woff2", ".otf": "font/otf", ".ttf": "font/ttf",
}
UNKNOWN = "application/octet-stream"


def media_type(name: str) -> str:
    """The media type of a file or URL path by its suffix (case-insensitive).

    >>> media_type("images/cheek-lift.SVG")
    'image/svg+xml'
    >>> media_type("notes.unknown-suffix")
    'application/octet-stream'
    """
    suffix = posixpath.splitext(name.lower())[1]
    return MEDIA_TYPES.get(suffix) or mimetypes.guess_type(name)[0] or UNKNOWN
