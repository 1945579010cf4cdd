"""Per-recipient merge fields: newsletters are rendered once, then filled in per subscriber."""

from __future__ import annotations

import html

# Markers left in the built newsletter (HTML and text). Content can't produce them: Markdown
# and Jinja output never contain "{{ " followed by these names.
FIRST_NAME = "{{ subscriber.first_name }}"
UNSUBSCRIBE_URL = "{{ unsubscribe_url }}"
VIEW_URL = "{{ view_url }}"

MARKERS = (FIRST_NAME, UNSUBSCRIBE_URL, VIEW_URL)


def values(
    first_name: str | None, fallback: str, unsubscribe_url: str, view_url: str
) -> dict[str, str]:
    """The raw (unescaped) value of every marker for one recipient."""
    return _fields(first_name, fallback, unsubscribe_url, view_url)


def _fields(
    first_name: str | None, fallback: str, unsubscribe_url: str, view_url: str
) -> dict[str, str]:
    name = (first_name or "").strip() or fallback
    return {FIRST_NAME: name, UNSUBSCRIBE_URL: unsubscribe_url, VIEW_URL: view_url}


def personalise_html(template: str, *, first_name: str | None, fallback: str,
                     unsubscribe_url: str, view_url: str) -> str:
    """Fill the markers of a built HTML newsletter, HTML-escaping every value."""
    out = template
    for marker, value in _fields(first_name, fallback, unsubscribe_url, view_url).items():
        out = out.replace(marker, html.escape(value, quote=True))
    return out


def personalise_text(template: str, *, first_name: str | None, fallback: str,
                     unsubscribe_url: str, view_url: str) -> str:
    """Fill the markers of a built plain-text newsletter."""
    out = template
    for marker, value in _fields(first_name, fallback, unsubscribe_url, view_url).items():
        out = out.replace(marker, value)
    return out
